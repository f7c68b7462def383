"""A publication a minion missed is made again: when it says it started, or when, asked,
it says it does not run the job.

A real salt-master and salt-minion (pytest-salt-factories). The controller publishes to
the minion (its key accepted) while it is stopped, as it may to a fresh container's minion
that reconnects; then the minion starts. The controller hears its start event on the master's bus
(``salt/minion/<id>/start``), publishes again, and gets the answer: it does not wait out
the call's timeout (600 s for a highstate) to find the first publication lost. And a
publication lost on the way to a running minion is found lost by ``saltutil.find_job``.
"""

import threading
import time
import uuid

import pytest
import salt.config

from mc_project.controller import runtime
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
            answers.append(ctl.call(minion.id, "test.echo", "back", timeout=TIMEOUT, again=True))
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


def test_a_publication_a_running_minion_never_got_is_made_again_once_it_says_it_runs_nothing(master, monkeypatch):
    minion = master.salt_minion_daemon("corpus-deaf-{}".format(uuid.uuid4().hex[:6]))
    ctl = Controller(salt.config.master_config(master.config_file))
    monkeypatch.setattr(runtime, "LOST_CHECK", 2)
    published = []
    publish = Controller._publish

    def first_one_lost(self, target, fun, args, kwargs, timeout, jid="", required=True):
        published.append(fun)
        if len(published) == 1:
            return jid  # as if the minion were not subscribed yet: it never hears of it
        return publish(self, target, fun, args, kwargs, timeout, jid=jid, required=required)

    monkeypatch.setattr(Controller, "_publish", first_one_lost)
    with minion.started():
        started = time.monotonic()
        assert ctl.call(minion.id, "test.echo", "heard", timeout=TIMEOUT, again=True) == "heard"
        assert time.monotonic() - started < 30
    assert published == ["test.echo", "saltutil.find_job", "test.echo"]
