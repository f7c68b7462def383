"""A call published again when its minion missed it (it says it started, or it says it does
not run it), with a fake master.

The real thing (a real master and a minion started after the publication) is
tests/integration/test_publish_again_on_start.py; here the master's bus is a list of
events, to check which publications are made and which answer is taken.
"""

import contextlib

import pytest

from mc_project.controller import runtime
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError

MINION = "shop.corpus.test"
STARTED = {"tag": "salt/minion/{}/start".format(MINION), "data": {"id": MINION}}


def ret(publication, value, retcode=0):
    """The return event of the ``publication``-th publication (its job id is known once made)."""
    def event(jids):
        return {"tag": "salt/job/{}/ret/{}".format(jids[publication - 1], MINION),
                "data": {"id": MINION, "jid": jids[publication - 1], "return": value, "retcode": retcode}}
    return event


class FakeMaster:
    """Publications made (``cmd_async``, each with the job id the caller chose) and the events
    the bus hands out, in order."""

    def __init__(self, events):
        self.events = list(events)
        self.published = []
        self.listened = []

    def cmd_async(self, minion, fun, arg, kwarg=None, timeout=None, jid=""):
        self.published.append((minion, fun, tuple(arg), kwarg, jid))
        return jid

    def add(self, prefix):
        self.listened.append(prefix)

    def get_event(self, wait=5, tag="", full=False):
        event = self.events.pop(0) if self.events else None
        return event([published[-1] for published in self.published]) if callable(event) else event


def controller(master):
    ctl = Controller.__new__(Controller)
    ctl.opts = {}
    ctl._given_client = master
    ctl.listening = lambda *prefixes: contextlib.nullcontext(master)
    return ctl


def test_a_publication_missed_while_the_minion_was_away_is_made_again_when_it_starts():
    master = FakeMaster([STARTED, ret(2, {"state": {"result": True}})])
    answer = controller(master).call(MINION, "state.apply", timeout=600, again=True)
    assert answer == {"state": {"result": True}}
    assert [fun for _minion, fun, _args, _kwarg, _jid in master.published] == ["state.apply", "state.apply"]
    # Each return was listened for before its publication, under a job id of its own.
    jids = [jid for *_, jid in master.published]
    assert len(set(jids)) == 2 and master.listened == ["salt/job/{}/ret/{}".format(jid, MINION) for jid in jids]


def test_the_answer_to_the_first_publication_counts_too():
    master = FakeMaster([{"tag": "salt/job/other/ret/elsewhere", "data": {}}, STARTED,
                         ret(1, "pong")])
    assert controller(master).call(MINION, "test.echo", "pong", timeout=600, again=True) == "pong"
    assert len(master.published) == 2


def test_a_minion_that_keeps_restarting_gets_three_publications_at_most():
    master = FakeMaster([STARTED] * 5 + [ret(3, True)])
    assert controller(master).call(MINION, "test.ping", timeout=600, again=True) is True
    assert len(master.published) == 3


def test_no_answer_within_the_timeout_is_one_sentence():
    with pytest.raises(CorpusError, match=r"^Minion shop\.corpus\.test did not answer state\.apply within 0\.01 s\.$"):
        controller(FakeMaster([])).call(MINION, "state.apply", timeout=0.01, again=True)


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr(runtime, "LOST_CHECK", 0)
    monkeypatch.setattr(runtime, "LATE_RETURN", 0)


def funs(master):
    return [fun for _minion, fun, _args, _kwarg, _jid in master.published]


def test_a_publication_the_minion_says_it_does_not_run_is_made_again(no_wait):
    master = FakeMaster([None, ret(2, {}), ret(3, "created")])  # nothing; find_job: not running; the answer
    assert controller(master).call(MINION, "mc_project.init_project", "shop", timeout=600, again=True) == "created"
    assert funs(master) == ["mc_project.init_project", "saltutil.find_job", "mc_project.init_project"]
    assert master.published[1][2] == (master.published[0][4],)  # asked about the job it was sent


def test_a_job_the_minion_still_runs_is_waited_for_not_published_again(no_wait):
    running = {"fun": "state.apply", "jid": "1"}
    master = FakeMaster([None, ret(2, running), ret(1, {"state": {"result": True}})])
    assert controller(master).call(MINION, "state.apply", timeout=600, again=True) == {"state": {"result": True}}
    assert funs(master).count("state.apply") == 1 and set(funs(master)[1:]) == {"saltutil.find_job"}
