"""Jobs: steps in order, a shared clipboard, events, undo on failure, resume after a crash.

The steps here make and remove files in a "world" directory, so what a step did
(or left behind) can be checked from any process, including one killed with -9.
"""

import json
import multiprocessing
import os
import signal
import threading
import time

import pytest
from sqlalchemy import update

from mc_project import jobs
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Job

STEPS = ["node:pick", "ip:allocate", "lxc:clone", "pdns:add_records"]
FORK = multiprocessing.get_context("fork")


class World:
    """Things steps create (files) and the order of undos (a journal)."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.fail_at = None  # step name that raises
        self.block_at = None  # step name that hangs (to be killed)
        self.undo_fails_at = None

    def things(self):
        return sorted(name for name in os.listdir(self.root) if not name.startswith("."))

    def journal(self):
        path = os.path.join(self.root, ".journal")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as fh:
            return fh.read().split()

    def note(self, entry):
        with open(os.path.join(self.root, ".journal"), "a", encoding="utf-8") as fh:
            fh.write(entry + "\n")

    def registry(self):
        registry = {}
        for name in STEPS:
            jobs.register(name, self.make_do(name), self.make_undo(name), registry)
        return registry

    def make_do(self, name):
        thing = name.replace(":", "-")

        def do(ctx):
            self.note("do:" + name)
            # Each step sees what the previous ones left on the clipboard.
            assert ctx.clipboard["done"] == STEPS[:STEPS.index(name)], ctx.clipboard
            if name == self.block_at:
                open(os.path.join(self.root, ".blocked"), "w").close()
                time.sleep(120)
            if name == self.fail_at:
                raise CorpusError("{} refused".format(thing))
            open(os.path.join(self.root, thing), "w").close()
            ctx.undo_data["path"] = os.path.join(self.root, thing)
            ctx.clipboard["done"] = ctx.clipboard["done"] + [name]
            ctx.clipboard[thing] = True
            ctx.log("made " + thing)

        return do

    def make_undo(self, name):
        thing = name.replace(":", "-")

        def undo(ctx):
            self.note("undo:" + name)
            if name == self.undo_fails_at:
                raise OSError("cannot remove " + thing)
            path = os.path.join(self.root, thing)
            if os.path.exists(path):  # an interrupted step may not have made it
                os.unlink(path)
            ctx.log("removed " + thing)

        return undo


@pytest.fixture
def url(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    yield url
    db.dispose()


@pytest.fixture
def world(tmp_path):
    return World(str(tmp_path / "world"))


@pytest.fixture
def events():
    return []


@pytest.fixture
def manager(url, world, events):
    return jobs.Jobs(url, world.registry(), fire=lambda tag, data: events.append((tag, data)))


def start(manager):
    return manager.create("init_env", "web", STEPS, clipboard={"done": []})


def tags(events):
    return [tag for tag, _ in events]


def test_a_four_step_job_succeeds_passing_the_clipboard_along(manager, world, events):
    job_id = start(manager)
    state = manager.run(job_id)
    assert state["status"] == "success", state["message"]
    assert state["message"].startswith("Job {} (init_env web) succeeded: 4 steps in ".format(job_id))
    assert world.things() == ["ip-allocate", "lxc-clone", "node-pick", "pdns-add_records"]
    assert state["clipboard"]["done"] == STEPS
    assert [step["status"] for step in state["steps"]] == ["success"] * 4
    for step in state["steps"]:
        assert step["log"] == "made " + step["name"].replace(":", "-")
        assert step["started"] <= step["ended"] and step["seconds"] >= 0
    prefix = "corpus/job/{}/".format(job_id)
    assert tags(events) == [prefix + "pending", prefix + "running"] + [
        prefix + "step/{}/{}".format(index, status)
        for index in range(1, 5) for status in ("running", "success")] + [prefix + "success"]
    assert events[3][1] == {"job": job_id, "step": 1, "name": "node:pick", "status": "success"}
    # What status says later comes from the database, not from memory.
    assert jobs.Jobs(manager.url).status(job_id)["clipboard"]["done"] == STEPS


def test_the_clipboard_is_saved_after_every_step(url, manager, world):
    seen = []
    registry = dict(manager.registry)
    do_clone = registry["lxc:clone"][0]

    def clone_and_peek(ctx):
        seen.append(jobs.Jobs(url).status(ctx.job_id)["clipboard"])
        do_clone(ctx)

    registry["lxc:clone"] = (clone_and_peek, registry["lxc:clone"][1])
    peeking = jobs.Jobs(url, registry)
    peeking.run(start(peeking))
    assert seen == [{"done": ["node:pick", "ip:allocate"], "node-pick": True, "ip-allocate": True}]


@pytest.mark.parametrize("failing", STEPS)
def test_a_failing_step_undoes_the_previous_ones_in_reverse(manager, world, events, failing):
    world.fail_at = failing
    position = STEPS.index(failing) + 1
    job_id = start(manager)
    state = manager.run(job_id)
    assert state["status"] == "failed"
    thing = failing.replace(":", "-")
    assert state["message"] == "Job {} (init_env web) failed at step {}/4 {}: {} refused.".format(
        job_id, position, failing, thing)
    assert state["current_step"] == {"index": position, "name": failing, "status": "failed"}
    done_before = STEPS[:position - 1]
    assert world.journal() == (["do:" + name for name in STEPS[:position]]
                               + ["undo:" + name for name in reversed(done_before)])
    assert world.things() == []  # nothing left behind
    assert [step["status"] for step in state["steps"]] == (
        ["undone"] * (position - 1) + ["failed"] + ["pending"] * (4 - position))
    prefix = "corpus/job/{}/".format(job_id)
    assert tags(events)[-(position + 1):] == (
        [prefix + "step/{}/failed".format(position)]
        + [prefix + "step/{}/undone".format(index) for index in range(position - 1, 0, -1)]
        + [prefix + "failed"])
    # Nothing more to undo, and it cannot be resumed.
    with pytest.raises(CorpusError, match="were undone when it failed"):
        manager.undo(job_id)
    with pytest.raises(CorpusError, match="cannot be resumed"):
        manager.resume(job_id)


def test_an_unexpected_exception_is_one_sentence_with_the_traceback_in_the_log(url, manager, world):
    registry = dict(manager.registry)
    registry["ip:allocate"] = (lambda ctx: {}["pool"], None)
    state = jobs.Jobs(url, registry).submit("init_env", "web", STEPS, {"done": []})
    assert state["error"] == "failed at step 2/4 ip:allocate: KeyError: 'pool'"
    assert "Traceback" in state["steps"][1]["log"]
    assert world.things() == []


def test_a_failing_undo_is_reported_and_can_be_retried(manager, world):
    world.fail_at = "lxc:clone"
    world.undo_fails_at = "node:pick"
    job_id = start(manager)
    state = manager.run(job_id)
    assert state["status"] == "failed"
    assert state["message"] == (
        "Job {} (init_env web) failed at step 3/4 lxc:clone: lxc-clone refused; the undo failed too: "
        "step 1/4 node:pick: OSError: cannot remove node-pick.".format(job_id))
    assert [step["status"] for step in state["steps"]] == ["undo_failed", "undone", "failed", "pending"]
    assert world.things() == ["node-pick"]
    world.undo_fails_at = None
    state = manager.undo(job_id)
    assert state["status"] == "undone", state["message"]
    assert world.things() == []


def test_undo_of_a_succeeded_job_takes_every_step_back(manager, world, events):
    job_id = start(manager)
    manager.run(job_id)
    del events[:]
    state = manager.undo(job_id)
    assert state["status"] == "undone"
    assert state["message"] == "Job {} (init_env web) was undone: 4 of its steps taken back.".format(job_id)
    assert world.things() == []
    assert world.journal()[-4:] == ["undo:" + name for name in reversed(STEPS)]
    prefix = "corpus/job/{}/".format(job_id)
    assert tags(events) == [prefix + "running"] + [
        prefix + "step/{}/undone".format(index) for index in (4, 3, 2, 1)] + [prefix + "undone"]
    with pytest.raises(CorpusError, match="cannot be undone"):
        manager.undo(job_id)


def test_refusals_say_why(manager, world):
    with pytest.raises(CorpusError, match=r"Unknown job step nft:map_port; known steps: .*lxc:clone"):
        manager.create("init_env", "web", ["node:pick", "nft:map_port"])
    with pytest.raises(CorpusError, match="No job 42 in the inventory"):
        manager.status(42)
    with pytest.raises(CorpusError, match="'abc' is not a job id"):
        manager.status("abc")
    job_id = start(manager)
    assert manager.status(job_id)["message"] == \
        "Job {} (init_env web) is pending: 4 steps, none started.".format(job_id)
    manager.run(job_id)
    with pytest.raises(CorpusError, match="succeeded: 4 steps in .* It can only be run while pending"):
        manager.run(job_id)
    with pytest.raises(CorpusError, match="cannot be resumed"):
        manager.resume(job_id)


def test_a_clipboard_value_that_is_not_json_fails_the_step(url, manager, world):
    registry = dict(manager.registry)
    registry["lxc:clone"] = (lambda ctx: ctx.clipboard.update(handle=object()), None)
    state = jobs.Jobs(url, registry).submit("init_env", "web", STEPS, {"done": []})
    assert state["status"] == "failed"
    assert "step 3/4 lxc:clone: the clipboard must hold JSON values only" in state["message"]
    assert world.things() == []


def test_a_broken_event_bus_does_not_break_the_job(url, world, caplog, monkeypatch):
    def fire(tag, data):
        raise ConnectionError("no master")

    # Keep the warnings to this test (Salt's own handlers would print them at exit).
    monkeypatch.setattr(jobs.log, "propagate", False)
    monkeypatch.setattr(jobs.log, "handlers", [caplog.handler])
    state = jobs.Jobs(url, world.registry(), fire=fire).submit("init_env", "web", STEPS, {"done": []})
    assert state["status"] == "success"
    assert "Could not fire event corpus/job/1/success" in caplog.text


def test_status_for_target_lists_its_jobs_newest_first(manager, world):
    first = start(manager)
    manager.run(first)
    second = start(manager)
    manager.create("init_env", "other", ["node:pick"], {"done": []})
    found = manager.status_for_target("web")
    assert [state["id"] for state in found] == [second, first]
    assert [state["status"] for state in found] == ["pending", "success"]
    assert manager.status_for_target("nobody") == []


# --------------------------------------------------------------------------- crashes


def run_in_child(url, root, job_id, block_at=None, action="run"):
    """Body of a child process: run (or resume) a job with the world's steps."""
    world = World(root)
    world.block_at = block_at
    manager = jobs.Jobs(url, world.registry())
    try:
        getattr(manager, action)(job_id)
    except CorpusError as exc:
        with open(os.path.join(root, ".refused-{}".format(os.getpid())), "w", encoding="utf-8") as fh:
            fh.write(str(exc))


def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "timed out waiting for " + path
        time.sleep(0.05)


@pytest.fixture
def killed_at_clone(url, world, manager):
    """A job whose process was killed with -9 during step 3 (lxc:clone)."""
    job_id = start(manager)
    child = FORK.Process(target=run_in_child, args=(url, world.root, job_id, "lxc:clone"))
    child.start()
    try:
        wait_for(os.path.join(world.root, ".blocked"))
        running = manager.status(job_id)
        assert running["status"] == "running"
        assert running["message"] == "Job {} (init_env web) is running step 3/4 lxc:clone (pid {} on {}).".format(
            job_id, child.pid, running["owner"]["host"])
        # The owner is alive: nobody else may take the job.
        with pytest.raises(CorpusError, match=r"is running step 3/4 lxc:clone .*only one process runs a job"):
            manager.resume(job_id)
        with pytest.raises(CorpusError, match="only one process runs a job"):
            manager.undo(job_id)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    os.unlink(os.path.join(world.root, ".blocked"))
    return job_id, child.pid


def test_a_killed_job_shows_as_interrupted(manager, world, events, killed_at_clone):
    job_id, pid = killed_at_clone
    state = manager.status(job_id)
    assert state["status"] == "interrupted"
    assert state["message"] == (
        "Job {} (init_env web) was interrupted at step 3/4 lxc:clone: its process (pid {} on {}) "
        "is gone; resume or undo it.".format(job_id, pid, state["owner"]["host"]))
    assert [step["status"] for step in state["steps"]] == ["success", "success", "interrupted", "pending"]
    assert tags(events)[-1] == "corpus/job/{}/interrupted".format(job_id)
    assert manager.status_for_target("web")[0]["status"] == "interrupted"


def test_resume_continues_from_the_first_unfinished_step(manager, world, killed_at_clone):
    job_id, _ = killed_at_clone
    state = manager.resume(job_id)
    assert state["status"] == "success", state["message"]
    assert world.journal() == ["do:node:pick", "do:ip:allocate", "do:lxc:clone",
                               "do:lxc:clone", "do:pdns:add_records"]
    assert state["clipboard"]["done"] == STEPS
    assert len(world.things()) == 4


def test_undo_takes_back_the_done_steps_and_the_cut_off_one(manager, world, killed_at_clone):
    job_id, _ = killed_at_clone
    state = manager.undo(job_id)
    assert state["status"] == "undone", state["message"]
    assert world.journal()[3:] == ["undo:lxc:clone", "undo:ip:allocate", "undo:node:pick"]
    assert [step["status"] for step in state["steps"]] == ["undone", "undone", "undone", "pending"]
    assert world.things() == []


def test_a_reused_pid_does_not_keep_a_job_running(url, manager):
    job_id = start(manager)
    with db.session(url) as sess:  # as if this pid had been given to us after its owner died
        sess.execute(update(Job).where(Job.id == job_id).values(
            status="running", owner_pid=os.getpid(), owner_host=jobs.this_owner()["owner_host"],
            owner_started=jobs.this_owner()["owner_started"] - 3600))
    assert manager.status(job_id)["status"] == "interrupted"


def test_only_one_of_several_processes_runs_a_job(url, manager, world):
    job_id = start(manager)
    children = [FORK.Process(target=run_in_child, args=(url, world.root, job_id)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert world.journal() == ["do:" + name for name in STEPS]  # ran once
    refusals = [name for name in os.listdir(world.root) if name.startswith(".refused-")]
    assert len(refusals) == 3
    for name in refusals:
        with open(os.path.join(world.root, name), encoding="utf-8") as fh:
            text = fh.read()
        assert "only one process runs a job" in text or "It can only be run while pending" in text \
            or "already being run by another process" in text, text
    assert manager.status(job_id)["status"] == "success"


def test_status_is_json_ready(manager, world):
    job_id = start(manager)
    manager.run(job_id)
    json.dumps(manager.status(job_id))


# --------------------------------------------------------------------------- steps run together

PLAN = ("env:register", ("lxc:clone", "nft:map_port"), "salt:highstate")


class Together:
    """Steps of ``PLAN``: the two of the group wait for each other (so they must run at the
    same time), each adds its own clipboard key; the last one checks it sees both."""

    def __init__(self, root):
        self.world = World(root)
        self.barrier = threading.Barrier(2, timeout=10)
        self.fail_at = None
        self.block_at = None

    def registry(self):
        registry = {}
        for name in jobs.flatten(PLAN):
            jobs.register(name, self.make_do(name), self.make_undo(name), registry)
        return registry

    def make_do(self, name):
        def do(ctx):
            self.world.note("do:" + name)
            if name in PLAN[1]:
                self.barrier.wait()
                if name == self.block_at:
                    open(os.path.join(self.world.root, ".blocked"), "w").close()
                    time.sleep(120)
                if name == self.fail_at:
                    raise CorpusError("{} refused".format(name))
                time.sleep(0.2 if name == "nft:map_port" else 0)  # the other one ends first
            if name == "salt:highstate":
                assert ctx.clipboard["lxc:clone"] and ctx.clipboard["nft:map_port"], ctx.clipboard
            ctx.clipboard[name] = True
            ctx.clipboard["env_name"] = "web"  # the same value from both: no conflict

        return do

    def make_undo(self, name):
        def undo(ctx):
            self.world.note("undo:" + name)

        return undo


def together_manager(url, together, events=None):
    return jobs.Jobs(url, together.registry(), plans={"init_env": PLAN},
                     fire=None if events is None else lambda tag, data: events.append((tag, data)))


def test_a_group_of_steps_runs_at_the_same_time_and_their_clipboards_merge(url, tmp_path):
    together = Together(str(tmp_path / "world"))
    events = []
    manager = together_manager(url, together, events)
    state = manager.submit("init_env", "web", PLAN, {"done": []})
    assert state["status"] == "success", state["message"]
    assert [step["name"] for step in state["steps"]] == jobs.flatten(PLAN)
    assert state["clipboard"] == {"done": [], "env_name": "web", "env:register": True, "lxc:clone": True,
                                  "nft:map_port": True, "salt:highstate": True}
    assert jobs.Jobs(url).status(state["id"])["clipboard"] == state["clipboard"]
    # (The two steps of the group wait for each other: run one after the other, they fail.)
    assert [tag.rsplit("/", 1)[1] for tag, _ in events if "/step/4/" in tag] == ["running", "success"]


def test_when_a_step_of_a_group_fails_the_other_finishes_then_both_are_undone(url, tmp_path):
    together = Together(str(tmp_path / "world"))
    together.fail_at = "lxc:clone"
    manager = together_manager(url, together)
    state = manager.submit("init_env", "web", PLAN, {"done": []})
    assert state["status"] == "failed"
    assert state["message"].endswith("failed at step 2/4 lxc:clone: lxc:clone refused.")
    assert [step["status"] for step in state["steps"]] == ["undone", "failed", "undone", "pending"]
    journal = together.world.journal()
    assert journal[-2:] == ["undo:nft:map_port", "undo:env:register"]
    assert "do:salt:highstate" not in journal


def test_a_job_killed_inside_a_group_resumes_only_what_did_not_finish(url, tmp_path):
    root = str(tmp_path / "world")

    def child_body():
        together = Together(root)
        together.block_at = "lxc:clone"
        together_manager(url, together).run(job_id)

    together = Together(root)
    manager = together_manager(url, together)
    job_id = manager.create("init_env", "web", PLAN, {"done": []})
    child = FORK.Process(target=child_body)
    child.start()
    try:
        wait_for(os.path.join(root, ".blocked"))
        deadline = time.monotonic() + 10
        while manager.status(job_id)["steps"][2]["status"] != "success":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    interrupted = manager.status(job_id)
    assert [step["status"] for step in interrupted["steps"]] == ["success", "interrupted", "success", "pending"]
    # What the finished step of the group added was saved with its success.
    assert interrupted["clipboard"]["nft:map_port"] is True
    together.barrier = threading.Barrier(1)  # resumed, the cut-off step runs alone
    state = manager.resume(job_id)
    assert state["status"] == "success", state["message"]
    assert together.world.journal().count("do:nft:map_port") == 1
    assert together.world.journal().count("do:lxc:clone") == 2


def test_a_job_whose_steps_are_not_its_kinds_plan_runs_them_one_at_a_time(url, tmp_path):
    together = Together(str(tmp_path / "world"))
    together.barrier = threading.Barrier(1)  # alone: no partner to wait for
    manager = together_manager(url, together)
    older = ["env:register", "nft:map_port", "lxc:clone", "salt:highstate"]  # another version's order
    state = manager.submit("init_env", "web", older, {"done": []})
    assert state["status"] == "success", state["message"]
    assert together.world.journal() == ["do:" + name for name in older]
