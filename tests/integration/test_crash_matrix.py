"""A deploy or a rollback killed with SIGKILL at any step boundary loses nothing.

``CORPUS_KILL_AT`` makes the deploy kill itself at a named point (failpoints.py).
After each kill: the push has failed, the app answers, writes it acknowledged after
the kill survive ``mc_project.recover``, and afterwards the branch, ``status`` and the
version served all agree on the last good commit, with nothing left running.
"""

import json
import os
import subprocess
import sys

import pytest

from support.git import GIT_ENV, head

STEPS_COOKING = ("snapshot_data", "make_release", "pack_bundle", "start_new", "move_traffic")
DEPLOY_POINTS = (
    ["phase:" + p for p in ("backup", "configure", "build", "bundle", "deploy", "post_deploy",
                            "post_install")]
    + ["{}:{}".format(when, step) for step in STEPS_COOKING for when in ("before", "after")]
    + ["commit", "before:retire_old", "after:retire_old"]
)
EDITABLE_POINTS = ["before:sync_checkout", "after:sync_checkout", "after:start_new",
                   "after:move_traffic", "commit"]
ROLLBACK_POINTS = ["before:start_new", "after:start_new", "before:move_traffic",
                   "after:move_traffic", "commit", "before:retire_old"]


def visits(corpus, name):
    status, body = corpus.get(name)
    assert status == 200, body
    return json.loads(body)


def push_killed_at(corpus, src, name, point):
    env = dict(os.environ, CORPUS_KILL_AT=point, **GIT_ENV)
    return subprocess.run(["git", "push", corpus.paths(name)["project_git"], "HEAD:main"], cwd=src,
                          env=env, capture_output=True, text=True, timeout=300)


def check_consistent(corpus, name, src_commit):
    paths = corpus.paths(name)
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["interrupted"] == [] and status["deploying"] is False, status
    assert status["commit"] == head(paths["project_git"], "refs/heads/main") == src_commit, status
    assert status["app"] == "RUNNING", status
    assert not [r for r in corpus.history(name) if r["status"] == "running"]
    assert os.listdir(paths["build"]) == []


@pytest.fixture(params=["staging"])
def live_project(corpus, request):
    name = "matrix"
    corpus.init(name, env=request.param)
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    return name, src


@pytest.mark.parametrize("live_project,point", [("staging", p) for p in DEPLOY_POINTS]
                         + [("dev", p) for p in EDITABLE_POINTS], indirect=["live_project"])
def test_deploy_killed_at(corpus, live_project, point):
    name, src = live_project
    good = head(src)
    corpus.commit(src, {"VERSION": "2\n"}, "v2")
    proc = push_killed_at(corpus, src, name, point)
    assert proc.returncode != 0, proc.stderr
    assert head(corpus.paths(name)["project_git"], "refs/heads/main") == good
    # The app keeps answering, and takes writes, before anything is recovered.
    seen = [visits(corpus, name) for _ in range(3)][-1]
    acknowledged = seen["visits"]

    result = corpus.salt("mc_project.recover", name)
    assert result.returncode == 0, result.stderr
    after = visits(corpus, name)
    assert after["version"] == "1", (point, after)
    assert after["visits"] > acknowledged, (point, acknowledged, after)  # no write lost
    check_consistent(corpus, name, good)

    # And the next push goes live.
    nxt = corpus.push(src, name)
    assert nxt.returncode == 0, nxt.stderr
    assert visits(corpus, name)["version"] == "2"
    check_consistent(corpus, name, head(src))


@pytest.mark.parametrize("point", ROLLBACK_POINTS)
def test_rollback_killed_at(corpus, live_project, point):
    name, src = live_project
    corpus.commit(src, {"VERSION": "2\n"}, "v2")
    assert corpus.push(src, name).returncode == 0
    env_kill = dict(os.environ, CORPUS_KILL_AT=point)
    proc = subprocess.run(corpus_salt_cmd(corpus, "mc_project.rollback", name), env=env_kill,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    acknowledged = [visits(corpus, name) for _ in range(3)][-1]["visits"]
    result = corpus.salt("mc_project.recover", name)
    assert result.returncode == 0, result.stderr
    after = visits(corpus, name)
    assert after["visits"] > acknowledged
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["interrupted"] == [] and status["app"] == "RUNNING"
    # Killed before its commit, the rollback did not happen; after it, it did.
    expected = "1" if point in ("commit", "before:retire_old") else "2"
    assert after["version"] == expected, (point, after)
    deployed = [r["commit"] for r in corpus.history(name) if r["kind"] == "deploy"]
    assert status["commit"] == deployed[-2 if expected == "1" else -1], status


def corpus_salt_cmd(corpus, *args):
    salt_call = os.path.join(os.path.dirname(sys.executable), "salt-call")
    return [salt_call, "-c", corpus.run.config_dir, "--local", "--out=json"] + list(args)
