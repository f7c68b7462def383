"""A publication a minion missed while it was away is made again when it says it started.

A real salt-master and salt-minion (pytest-salt-factories). The controller publishes to
the minion (its key accepted) while it is stopped, as it may to a fresh container's minion
that reconnects; then the minion starts. The controller hears its start event on the master's bus
(``salt/minion/<id>/start``), publishes again, and gets the answer: it does not wait out
the call's timeout (600 s for a highstate) to find the first publication lost.
"""

import threading
import time
import uuid

import pytest
import salt.config

from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError

TIMEOUT = 300  # what a lost publication would be waited for; the test ends long before


@pytest.fixture(scope="module")
def master(salt_factories, tmp_path_factory):
    url = "sqlite:///{}".format(tmp_path_factory.mktemp("inventory") / "inventory.sqlite")
    factory = salt_factories.salt_master_daemon(
        "corpus-republish-{}".format(uuid.uuid4().hex[:6]),
        overrides={"corpus": {"db_url": url, "master_address": "127.0.0.1"}})
    with factory.started():
        yield factory


def test_a_missed_publication_is_made_again_when_the_minion_starts(master):
    minion = master.salt_minion_daemon("corpus-away-{}".format(uuid.uuid4().hex[:6]))
    with minion.started():
        pass  # its key is accepted now: it is a known minion, away for a while
    ctl = Controller(salt.config.master_config(master.config_file))
    answers, failures = [], []

    def call():
        try:
            answers.append(ctl.call(minion.id, "test.echo", "back", timeout=TIMEOUT, again_on_start=True))
        except CorpusError as exc:
            failures.append(str(exc))

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(3)  # published while nobody listens: the minion never sees it
    assert answers == [] and failures == []
    with minion.started():
        caller.join(TIMEOUT)
        assert not caller.is_alive(), "the call waited for its timeout"
    assert failures == [] and answers == ["back"]
