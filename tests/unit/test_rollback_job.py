"""The ``rollback`` job: its plan, its one step ``project:rollback`` and the undo that
makes the release live before live again, over a fake project minion.

The real minion's rollback (start beside, check, move traffic) is the engine's, tested
in tests/integration/test_pillar_and_rollback.py; the page and CLI following the job
over a real LXC node are in tests/integration/web/flow and tests/integration/controller.
"""

import pytest
from sqlalchemy import select

from mc_project.controller import operations, steps
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Environment, Job, Project


class ProjectMinion:
    """An environment's minion holding one project: its kept releases, in the order they
    were deployed, which one is live, and the calls made to it."""

    def __init__(self, releases, live, mode="cooking"):
        self.releases = releases  # [(id, status)], deploy order
        self.live, self.mode = live, mode
        self.calls = []
        self.fail_rollback = None

    def __call__(self, minion, fun, *args, **kwargs):
        self.calls.append((fun,) + args)
        if fun == "mc_project.status":
            return {"name": args[0], "mode": self.mode, "live": True,
                    "release": None if self.mode == "editable" else self.live}
        if fun == "mc_project.releases":
            return [{"id": rid, "status": status, "live": rid == self.live} for rid, status in self.releases]
        if fun == "mc_project.rollback":
            if self.fail_rollback:
                raise CorpusError("mc_project.rollback on {} failed: {}".format(minion, self.fail_rollback))
            self.live = args[1]
            return {"id": "rollback-20261201T000000", "kind": "rollback", "to": args[1], "result": True}
        raise AssertionError(fun)

    def rollbacks(self):
        return [call[2] for call in self.calls if call[0] == "mc_project.rollback"]


RELEASES = [("20261201T100000-b", "success"), ("20261201T090000-a", "success"), ("20261201T110000-x", "failed"),
            ("20261201T120000-c", "success")]


@pytest.fixture
def minion(ctl, monkeypatch):
    found = ProjectMinion(RELEASES, "20261201T120000-c")
    monkeypatch.setattr(Controller, "call", lambda self, minion_id, fun, *args, **kwargs: found(
        minion_id, fun, *args, **kwargs))
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    db.init(ctl.url)
    with db.session(ctl.url) as sess:
        env = Environment(name="shop", env_type="staging", status="active", minion_id="shop.corpus.test",
                          project="shop", domains=["shop.corpus.test"])
        env.projects = [Project(name="shop"), Project(name="api")]
        sess.add(env)
    yield found
    db.dispose()


def job_count(ctl):
    with db.session(ctl.url) as sess:
        return len(sess.scalars(select(Job.id)).all())


def test_the_plan_is_one_step_with_an_undo(ctl):
    assert operations.ROLLBACK == ("project:rollback",)
    do, undo = steps.registry(ctl)["project:rollback"]
    assert do is not None and undo is not None


def test_the_default_is_the_good_release_deployed_before_the_live_one(ctl, minion):
    result = operations.rollback(ctl, "shop", "shop")
    assert result["result"], result
    # Deploy order (a came after b), not id order; the failed release is skipped.
    assert (result["release"], result["previous"]) == ("20261201T090000-a", "20261201T120000-c")
    assert minion.rollbacks() == ["20261201T090000-a"] and minion.live == "20261201T090000-a"
    state = ctl.jobs().status(result["job"])
    assert (state["kind"], state["target"], state["status"]) == ("rollback", "shop", "success")
    assert state["clipboard"]["live_before"] == "20261201T120000-c"
    assert "shop rolled back from 20261201T120000-c to 20261201T090000-a" in state["steps"][0]["log"]


def test_undo_makes_the_release_live_before_live_again(ctl, minion):
    result = operations.rollback(ctl, "shop", "shop", "20261201T100000-b")
    assert minion.live == "20261201T100000-b"
    undone = ctl.jobs().undo(result["job"])
    assert undone["status"] == "undone" and undone["steps"][0]["status"] == "undone"
    assert minion.rollbacks() == ["20261201T100000-b", "20261201T120000-c"] and minion.live == "20261201T120000-c"


def test_a_failed_rollback_is_one_sentence_and_leaves_the_live_release(ctl, minion):
    minion.fail_rollback = "Rollback to 20261201T090000-a refused: its health check failed. The live release is " \
                           "unchanged."
    result = operations.rollback(ctl, "shop", "shop")
    assert not result["result"] and result["status"] == "failed"
    assert "project:rollback" in result["comment"] and "its health check failed" in result["comment"]
    # The step's own undo saw the release before still live: no second rollback.
    assert minion.rollbacks() == ["20261201T090000-a"] and minion.live == "20261201T120000-c"


def test_a_resumed_rollback_whose_switch_was_done_does_not_switch_again(ctl, minion):
    clipboard = operations.rollback_request(ctl, "shop", "shop")
    manager = ctl.jobs()
    job_id = manager.create("rollback", "shop", operations.ROLLBACK, clipboard)
    minion.live = clipboard["release"]  # the minion switched, then the controller died
    state = manager.run(job_id)
    assert state["status"] == "success" and minion.rollbacks() == []
    assert "is live already" in state["steps"][0]["log"]
    assert state["clipboard"]["live_before"] == "20261201T120000-c"  # from the request: undo still works
    manager.undo(job_id)
    assert minion.live == "20261201T120000-c"


@pytest.mark.parametrize("name, project, release, mode, words", [
    ("shop", "shop", "nope", "cooking", "Release nope is not a kept good release of shop; kept: "
                                        "20261201T100000-b, 20261201T090000-a, 20261201T120000-c."),
    ("shop", "shop", "20261201T110000-x", "cooking", "Release 20261201T110000-x is not a kept good release"),
    ("shop", "shop", "20261201T120000-c", "cooking", "Release 20261201T120000-c of shop is already live."),
    ("shop", "shop", None, "editable", "shop runs in editable mode, which keeps no releases"),
    ("shop", "web", None, "cooking", "Environment shop has no project web."),
    ("nowhere", "shop", None, "cooking", "No environment named nowhere."),
])
def test_refusals_are_one_sentence_before_any_job(ctl, minion, name, project, release, mode, words):
    minion.mode = mode
    with pytest.raises(CorpusError) as refused:
        operations.rollback(ctl, name, project, release)
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert job_count(ctl) == 0 and minion.rollbacks() == []


def test_nothing_older_than_the_live_release_is_refused(ctl, minion):
    minion.live = "20261201T100000-b"
    with pytest.raises(CorpusError, match=r"No kept release of shop is older than the live one"):
        operations.rollback(ctl, "shop", "shop")
    assert job_count(ctl) == 0


def test_an_environment_that_is_not_active_is_refused(ctl, minion):
    with db.session(ctl.url) as sess:
        sess.scalar(select(Environment)).status = "destroying"
    with pytest.raises(CorpusError, match="Environment shop is destroying, not active."):
        operations.rollback(ctl, "shop", "shop")
    assert minion.calls == []
