"""A deploy killed with ``kill -9`` leaves nothing half-done that the next push trips on.

The ``slow`` test project holds its ``build`` or ``post_deploy`` phase while a gate file
exists, so the deploy can be killed at a known point: during the build (nothing live
changed yet) and right after the switch (``current`` already points at the new release
and the new app runs). The push fails; the next push recovers the interrupted deploy
(record marked 'interrupted', tree set aside, ``current`` and ``data/`` put back) and
goes live.
"""

import json
import os
import signal
import socket

import psutil
import pytest

from support.corpus import hold_push, sample_project
from support.git import head
from support.wait import process_ended, wait_for


def deploy_processes(name):
    """The salt-call processes deploying ``name`` (the outermost ones)."""
    found = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        # salt-call's own arguments, or the deploy agent's child ("corpus-agent: FUN NAME ...")
        words = " ".join(proc.info["cmdline"] or []).split()
        if "mc_project.deploy" in words and name in words and \
                "mc_project.project.agent_client" not in words:
            found[proc.info["pid"]] = proc
    return [p for p in found.values() if p.info["ppid"] not in found]


def kill_deploy(name):
    procs = deploy_processes(name)
    assert len(procs) == 1, "expected one deploy process, found {}".format(
        [p.info["cmdline"] for p in procs])
    pid = procs[0].info["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_ended(pid), timeout=30, what="the deploy process to die")
    return pid


def assert_consistent(corpus, name, src, version):
    """After recovery: one good live release of the pushed commit, no leftovers."""
    paths = corpus.paths(name)
    records = corpus.history(name)
    assert not [r for r in records if r["status"] == "running"], records
    last_ok = [r for r in records if r["status"] == "success"][-1]
    assert last_ok is records[-1] or records[-1]["status"] == "success"
    assert head(paths["project_git"], "refs/heads/main") == head(src) == last_ok["commit"]
    assert os.listdir(paths["build"]) == []
    assert not [d for d in os.listdir(paths["releases"]) if d.endswith(".partial")]
    # every release dir kept is a good release
    good = {r["id"] for r in records if r["kind"] == "deploy" and r["status"] == "success"}
    assert set(os.listdir(paths["releases"])) <= good
    if last_ok["mode"] != "editable":
        assert os.path.realpath(paths["current"]) == os.path.join(paths["releases"], last_ok["id"])
    status, body = corpus.get(name)
    assert status == 200 and json.loads(body)["version"] == str(version), body


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_kill_during_build_then_next_push_succeeds(corpus, tmp_path, env):
    name = "crash-build-{}".format(env)
    paths = corpus.init(name, env=env)
    src = corpus.source(sample_project("slow"), name=name)
    first = corpus.push(src, name)
    assert first.returncode == 0, first.stderr
    good = corpus.history(name)[-1]
    live_before = os.path.realpath(paths["current"])

    push, gate, killed_commit = hold_push(corpus, src, name, "build", 2, tmp_path)
    try:
        # While it runs, status names the holder of the deploy lock.
        running = corpus.history(name)[-1]
        assert running["status"] == "running" and running["commit"] == killed_commit
        status = corpus.salt("mc_project.status", name, check=True).local
        assert status["deploying"] is True
        holder = status["deploy_holder"]
        assert set(holder) >= {"pid", "host", "job_id", "started"}
        assert holder["job_id"] == running["job_id"] and holder["host"] == socket.gethostname()
        pid = kill_deploy(name)
        assert holder["pid"] == pid
        assert push.wait() != 0, push.output
    finally:
        os.unlink(gate)
        push.kill()
    assert "-----> build" in push.output

    # Nothing live changed; the branch stayed on the last good commit.
    assert os.path.realpath(paths["current"]) == live_before
    assert head(paths["project_git"], "refs/heads/main") == good["commit"]
    assert json.loads(corpus.get(name)[1])["version"] == "1"
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["deploying"] is False and status["interrupted"] == [running["id"]]

    corpus.commit(src, {"VERSION": "3\n", "PAUSE": None}, "v3")
    nxt = corpus.push(src, name)
    assert nxt.returncode == 0, nxt.stderr
    assert "recovering interrupted deploy {}".format(running["id"]) in nxt.stderr

    record = [r for r in corpus.history(name) if r["id"] == running["id"]][0]
    assert record["status"] == "interrupted" and record["ended"]
    assert os.path.isdir(os.path.join(paths["failed"], running["id"]))
    assert_consistent(corpus, name, src, 3)
    if env == "dev":  # editable: the checkout holds the new commit, not the killed one
        assert open(os.path.join(paths["project"], "VERSION")).read() == "3\n"
        assert not os.path.exists(os.path.join(paths["project"], "PAUSE"))


def test_kill_while_the_new_release_runs_beside_then_next_push_succeeds(corpus, tmp_path):
    """Killed in post_deploy: the new release runs in its own slot, its migration wrote
    data/, the old release still takes the traffic (and writes). The next push stops the
    new one and keeps data/ as it is, since the live app answered requests meanwhile."""
    name = "crash-switch"
    paths = corpus.init(name, env="staging")
    src = corpus.source(sample_project("slow"), name=name)
    assert corpus.push(src, name).returncode == 0
    good = corpus.history(name)[-1]
    good_release = os.path.join(paths["releases"], good["id"])
    with open(os.path.join(paths["data"], "state.txt"), "w") as fh:
        fh.write("before v2\n")

    push, gate, _ = hold_push(corpus, src, name, "post_deploy", 2, tmp_path)
    try:
        running = corpus.history(name)[-1]
        assert [(s["step"], s["state"]) for s in running["steps"]][-1] == ("start_new", "done")
        new_release = os.path.join(paths["releases"], running["id"])
        assert os.path.realpath(paths["current"]) == good_release
        assert json.loads(corpus.get(name)[1])["version"] == "1"  # the old one still serves
        with open(os.path.join(paths["data"], "state.txt"), "w") as fh:  # a migration wrote data
            fh.write("written by v2\n")
        kill_deploy(name)
        assert push.wait() != 0, push.output
    finally:
        os.unlink(gate)
        push.kill()
    assert "-----> post_deploy" in push.output
    assert head(paths["project_git"], "refs/heads/main") == good["commit"]
    assert json.loads(corpus.get(name)[1])["version"] == "1"
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["commit"] == good["commit"] and status["interrupted"] == [running["id"]]

    corpus.commit(src, {"VERSION": "3\n", "PAUSE": None}, "v3")
    nxt = corpus.push(src, name)
    assert nxt.returncode == 0, nxt.stderr
    assert "recovering interrupted deploy {}".format(running["id"]) in nxt.stderr
    assert "new release stopped" in nxt.stderr
    assert "no acknowledged write is discarded" in nxt.stderr

    record = [r for r in corpus.history(name) if r["id"] == running["id"]][0]
    assert record["status"] == "interrupted"
    assert not os.path.exists(new_release)
    assert os.path.isdir(os.path.join(paths["failed"], running["id"], "tree"))
    # data/ is kept: the live app answered requests after the snapshot
    assert open(os.path.join(paths["data"], "state.txt")).read() == "written by v2\n"
    assert os.path.isdir(good_release)
    assert_consistent(corpus, name, src, 3)
