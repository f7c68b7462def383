"""Concurrent pushes to one project: one deploy at a time, nothing corrupt.

Five clones each push a different commit on top of the same base at the same time.
Only one of them can win (they all claim the same old commit); the others wait for the
deploy lock and are then refused because the branch moved, or are rejected by git
itself when the branch had already moved before they started. Afterwards the remote
branch, the live release, the history and the app all agree.

With a small ``lock_timeout`` a push that waits too long is refused with a message
naming the lock holder (pid, host, job id).
"""

import json
import os
import re
import socket

from support.corpus import hold_push, sample_project
from support.git import AsyncPush, git, head

PUSHERS = 5


def clone(corpus, name, n):
    dest = os.path.join(corpus.base, "clones", "{}-{}".format(name, n))
    git(corpus.base, "clone", "-q", corpus.paths(name)["project_git"], dest)
    return dest


def test_five_concurrent_pushes_one_wins_nothing_corrupt(corpus):
    name = "busy"
    paths = corpus.init(name, env="staging")
    src = corpus.source(sample_project("slow"), name=name)
    assert corpus.push(src, name).returncode == 0
    base = head(src)

    clones, commits = [], {}
    for n in range(PUSHERS):
        dest = clone(corpus, name, n)
        clones.append(dest)
        commits[n] = corpus.commit(dest, {"VERSION": "{}\n".format(10 + n)}, "version {}".format(10 + n))
    pushes = [AsyncPush(dest, paths["project_git"]) for dest in clones]
    codes = [p.wait(timeout=300) for p in pushes]

    winners = [n for n, code in enumerate(codes) if code == 0]
    assert len(winners) == 1, "\n\n".join(p.output for p in pushes)
    winner = winners[0]
    for n, push in enumerate(pushes):
        if n == winner:
            assert "is live" in push.output
            continue
        out = push.output
        # refused by the engine (branch moved / lock holder named) or by git (fetch first)
        assert ("moved to {}".format(commits[winner][:12]) in out
                or "holds the deploy lock" in out
                or re.search(r"\[rejected\].*(fetch first|non-fast-forward)", out)), out

    records = corpus.history(name)
    assert {r["status"] for r in records} <= {"success", "failed"}, records
    ok = [r for r in records if r["status"] == "success"]
    assert [r["commit"] for r in ok] == [base, commits[winner]]
    live_id = os.path.basename(os.path.realpath(paths["current"]))
    assert live_id == ok[-1]["id"]
    assert head(paths["project_git"], "refs/heads/main") == commits[winner]
    assert set(os.listdir(paths["releases"])) <= {r["id"] for r in ok}
    for record in records:
        if record["status"] == "failed":
            assert os.path.isdir(os.path.join(paths["failed"], record["id"]))
    assert os.listdir(paths["build"]) == []
    status, body = corpus.get(name)
    assert status == 200 and json.loads(body)["version"] == str(10 + winner)

    # A loser fetches, rebases its change on the winner's and pushes again: it goes live.
    loser = next(n for n in range(PUSHERS) if n != winner)
    git(clones[loser], "pull", "-q", "--rebase", "-X", "theirs", "origin", "main")
    again = corpus.push(clones[loser], name)
    assert again.returncode == 0, again.stderr
    assert head(paths["project_git"], "refs/heads/main") == head(clones[loser])
    assert json.loads(corpus.get(name)[1])["version"] == str(10 + loser)


def test_lock_timeout_refusal_names_the_holder(corpus, tmp_path):
    name = "locked"
    paths = corpus.init(name, env="staging", lock_timeout=2)
    src = corpus.source(sample_project("slow"), name=name)
    assert corpus.push(src, name).returncode == 0
    other = clone(corpus, name, "other")
    corpus.commit(other, {"VERSION": "99\n"}, "competing")

    holder_push, gate, held_commit = hold_push(corpus, src, name, "build", 2, tmp_path)
    try:
        holder = corpus.salt("mc_project.status", name, check=True).local["deploy_holder"]
        refused = corpus.push(other, name)
    finally:
        os.unlink(gate)
    assert holder_push.wait() == 0, holder_push.output

    assert refused.returncode != 0
    err = refused.stderr
    assert "holds the deploy lock and did not release it within 2s" in err, err
    assert "job {}".format(holder["job_id"]) in err
    assert "pid {}".format(holder["pid"]) in err
    assert "on {}".format(socket.gethostname()) in err
    # the refused push changed nothing: the held deploy went live, the branch is its commit
    assert head(paths["project_git"], "refs/heads/main") == held_commit
    assert json.loads(corpus.get(name)[1])["version"] == "2"
    assert [r["status"] for r in corpus.history(name)] == ["success", "success"]
