"""Keeping N releases, pushing the private pillar, and rolling back by hand.

* keep-N: with ``keep_releases: 2`` from Salt pillar only the last two good releases
  stay, a failed deploy never counts, and unchanged files of consecutive releases are
  hard links (one inode).
* A push of ``init.sls`` to ``git/pillar.git`` redeploys the live commit with the new
  settings; an invalid one is refused and changes nothing.
* ``mc_project.rollback NAME`` goes back one release; ``mc_project.rollback NAME ID
  data=True`` also restores ``data/`` as it was while that release was live and runs the
  project's rollback phase; ``mc_project.status`` and ``mc_project.releases`` say so.
"""

import json
import os

import pytest

from support.corpus import Corpus, pillar_source, project_state, sample_project, tree_digest
from support.git import head, ls_remote
from support.saltcall import local_salt
from support.web import get_json
from mc_project.project import settings as mc_settings

PHASEFAIL = sample_project("phasefail")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("pillar-rollback"), local_salt)
    yield c
    c.stop_all()


def answer(name):
    return get_json(mc_settings.default_port(name))


def push_version(corpus, src, name, version, files=None):
    commit = corpus.commit(src, dict({"VERSION": "{}\n".format(version)}, **(files or {})),
                           "v{}".format(version))
    proc = corpus.push(src, name)
    return commit, proc


def test_keep_last_two_good_releases_hard_linked(corpus):
    name = "keep2"
    paths = corpus.init(name, env="staging", keep_releases=2)
    src = corpus.source(PHASEFAIL, name=name)
    assert corpus.push(src, name).returncode == 0
    for version in (2, 3):
        assert push_version(corpus, src, name, version)[1].returncode == 0
    _, failed = push_version(corpus, src, name, 4, {".salt/FAIL_PHASE": "post_deploy\n"})
    assert failed.returncode != 0
    good_commit, proc = push_version(corpus, src, name, 5, {".salt/FAIL_PHASE": None})
    assert proc.returncode == 0, proc.stderr

    records = corpus.history(name)
    good = [r["id"] for r in records if r["status"] == "success"]
    bad = [r["id"] for r in records if r["status"] == "failed"]
    assert len(good) == 4 and len(bad) == 1
    assert sorted(os.listdir(paths["releases"])) == good[-2:]
    listed = corpus.salt("mc_project.releases", name, check=True).local
    assert [r["id"] for r in listed] == good[-2:]
    assert [r["live"] for r in listed] == [False, True]
    assert listed[-1]["commit"] == good_commit and listed[-1]["status"] == "success"
    assert all(r["mode"] == "cooking" and r["time"] for r in listed)
    assert os.listdir(paths["failed"]) == bad  # set aside, not among the releases
    # Only the kept releases' bundles and snapshots stay.
    kept_commits = {r["commit"] for r in records if r["id"] in good[-2:]}
    assert {f.split(".")[0] for f in os.listdir(paths["bundles"])} == kept_commits

    older, newer = (os.path.join(paths["releases"], rid) for rid in good[-2:])
    for unchanged in ("server.py", "Procfile", ".salt/phasefail.jinja"):
        assert os.stat(os.path.join(older, unchanged)).st_ino == \
            os.stat(os.path.join(newer, unchanged)).st_ino, unchanged
    assert os.stat(os.path.join(older, "VERSION")).st_ino != os.stat(os.path.join(newer, "VERSION")).st_ino
    assert answer(name)["version"] == "5"

    # Snapshots are copies: no inode shared with the live data/.
    live_inodes = {os.stat(os.path.join(paths["data"], f)).st_ino for f in os.listdir(paths["data"])}
    for snap in os.listdir(paths["snapshots"]):
        snap_data = os.path.join(paths["snapshots"], snap, "data")
        for f in os.listdir(snap_data):
            assert os.stat(os.path.join(snap_data, f)).st_ino not in live_inodes


def test_pillar_push_redeploys_with_new_settings_and_bad_yaml_is_refused(corpus):
    name = "pillar-app"
    paths = corpus.init(name)
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    assert answer(name)["greeting"] == "hello"
    before = corpus.history(name)[-1]

    psrc = pillar_source(corpus, name, "environment:\n  GREETING: bonjour\n")
    proc = corpus.push(psrc, name, kind="pillar")
    assert proc.returncode == 0, proc.stderr
    assert "pillar changed: redeploying" in proc.stderr
    assert answer(name)["greeting"] == "bonjour"
    record = corpus.history(name)[-1]
    assert record["status"] == "success" and record["id"] != before["id"]
    assert record["commit"] == before["commit"] and record["pillar_hash"] != before["pillar_hash"]
    assert open(os.path.join(paths["pillar"], "init.sls")).read() == "environment:\n  GREETING: bonjour\n"
    assert corpus.settings(name)["environment"]["GREETING"] == "bonjour"
    good_pillar = head(psrc)

    state = project_state(paths)
    history = corpus.history(name)
    corpus.commit(psrc, {"init.sls": "environment: [GREETING: salut\n"}, "broken settings")
    proc = corpus.push(psrc, name, kind="pillar")
    assert proc.returncode != 0
    assert "is not valid YAML" in proc.stderr and "Traceback" not in proc.stderr
    assert project_state(paths) == state
    assert corpus.history(name) == history
    assert ls_remote(paths["pillar_git"]) == good_pillar
    assert answer(name)["greeting"] == "bonjour"


def test_manual_rollback_with_and_without_data(corpus):
    name = "rollme"
    paths = corpus.init(name, env="staging")
    src = corpus.source(PHASEFAIL, name=name)
    commits, data = {}, {}
    assert corpus.push(src, name).returncode == 0
    commits[1], data[1] = ls_remote(paths["project_git"]), tree_digest(paths["data"])
    for version in (2, 3):
        commits[version], proc = push_version(corpus, src, name, version)
        assert proc.returncode == 0, proc.stderr
        data[version] = tree_digest(paths["data"])
    assert len(set(json.dumps(d, sort_keys=True) for d in data.values())) == 3
    ids = {r["commit"]: r["id"] for r in corpus.history(name) if r["status"] == "success"}

    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["release"] == ids[commits[3]] and status["commit"] == commits[3]
    assert status["deploying"] is False and status["live"] is True and status["since"]

    # Back one release: code only.
    res = corpus.salt("mc_project.rollback", name, check=True)
    assert res.local["to"] == ids[commits[2]] and res.local["status"] == "success"
    assert os.readlink(paths["current"]) == os.path.join("releases", ids[commits[2]])
    assert answer(name)["version"] == "2"
    assert tree_digest(paths["data"]) == data[3]
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["release"] == ids[commits[2]] and status["commit"] == commits[2]
    assert status["since"] == res.local["ended"] and status["deploying"] is False
    listed = corpus.salt("mc_project.releases", name, check=True).local
    assert [r["id"] for r in listed if r["live"]] == [ids[commits[2]]]
    assert len(listed) == 3

    # To the first release with its data: data/ as it was while v1 was live, rollback phase run.
    rollback_trace = os.path.join(paths["logs"], "phasefail-rollback.trace")
    res = corpus.salt("mc_project.rollback", name, ids[commits[1]], "data=True", check=True)
    assert res.local["to"] == ids[commits[1]] and res.local["data"] is True
    assert os.readlink(paths["current"]) == os.path.join("releases", ids[commits[1]])
    assert answer(name)["version"] == "1"
    assert tree_digest(paths["data"]) == data[1]
    last = open(rollback_trace).read().splitlines()[-1].split()
    assert last[0] == "rollback" and last[1] == commits[1] and last[-1] == "failed=None"
    # The data it replaced is kept aside.
    safety = os.path.join(paths["snapshots"], res.local["id"], "data")
    assert tree_digest(safety) == data[3]
    status = corpus.salt("mc_project.status", name, check=True).local
    assert status["release"] == ids[commits[1]] and status["commit"] == commits[1]
    assert [r["kind"] for r in corpus.history(name)[-2:]] == ["rollback", "rollback"]

    # A release that is not kept: one sentence, nothing changes.
    state = project_state(paths)
    res = corpus.salt("mc_project.rollback", name, "20000101T000000-deadbeef")
    assert res.returncode != 0
    assert "is not a kept good release" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert project_state(paths) == state

    # A push after the rollback deploys as usual.
    commits[4], proc = push_version(corpus, src, name, 4)
    assert proc.returncode == 0, proc.stderr
    assert answer(name)["version"] == "4"
    assert corpus.salt("mc_project.status", name, check=True).local["commit"] == commits[4]


def test_pillar_push_after_a_rollback_keeps_the_rolled_back_commit_live(corpus):
    name = "pillar-after-rollback"
    corpus.init(name, env="staging")
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    v1 = head(src)
    corpus.commit(src, {"VERSION": "2\n"}, "v2")
    assert corpus.push(src, name).returncode == 0
    assert answer(name)["version"] == "2"
    assert corpus.salt("mc_project.rollback", name).returncode == 0
    assert answer(name)["version"] == "1"

    psrc = pillar_source(corpus, name, "environment:\n  GREETING: hallo\n")
    proc = corpus.push(psrc, name, kind="pillar")
    assert proc.returncode == 0, proc.stderr
    assert "redeploying the live commit {}".format(v1[:12]) in proc.stderr
    seen = answer(name)
    assert seen["version"] == "1" and seen["greeting"] == "hallo"
    assert corpus.history(name)[-1]["commit"] == v1
