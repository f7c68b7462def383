"""A failure in each phase, in each mode where the phase runs, changes nothing live.

One ``phasefail`` project per mode is deployed once and reused by every phase's test
(module scope: a push costs seconds). Each test pushes a commit whose phase fails, and
checks what a user sees: ``git push`` exits non-zero, the remote branch still names the
good commit, the app still answers the good version over HTTP, ``current`` points where
it did, ``data/`` is byte for byte what it was (also when ``post_deploy`` and
``post_install`` had written into it), the history has the failed record and its phase,
the failed tree and its log are set aside, the project's rollback phase ran, and the
failed release is not among the releases. Then a fixed push deploys.

dev and staging fail through a committed ``.salt/FAIL_PHASE``; prod (final mode) runs the
bundle a staging project built, so its failure comes from Salt pillar
(``data.fail_phase``) and the fix is the same commit pushed again without it.
"""

import json
import os

import pytest

from support.corpus import Corpus, sample_project, tree_digest
from support.git import ls_remote
from support.saltcall import local_salt
from support.web import http_get
from mc_project.project import recipe
from mc_project.project import settings as mc_settings

PHASEFAIL = sample_project("phasefail")
MODE_OF = {"dev": "editable", "staging": "cooking", "prod": "final"}
CASES = [(env, phase) for env in ("dev", "staging", "prod") for phase in recipe.PHASES
         if recipe.runs(MODE_OF[env], phase)]


class Target:
    """One deployed phasefail project of one env, shared by the tests of that env."""

    def __init__(self, corpus, env):
        self.corpus, self.env = corpus, env
        self.name = "pf-fail-{}".format(env)
        self.feed = "pf-fail-feed" if env == "prod" else None
        self.version = 1
        self.pillar = {"env": env}
        if self.feed:
            corpus.init(self.feed, env="staging")
            self.pillar["bundle"] = {"source": corpus.paths(self.feed)["bundles"]}
        self.paths = corpus.init(self.name, **self.pillar)
        self.src = corpus.source(PHASEFAIL, name=self.name)
        self.port = mc_settings.default_port(self.name)
        self.deploy_ok()

    def set_fail(self, phase):
        data = {"fail_phase": phase} if phase else {}
        self.corpus.set_pillar(self.name, dict(self.pillar, data=data))

    def push(self):
        return self.corpus.push(self.src, self.name)

    def deploy_ok(self):
        """Push the source's head (through the staging feed first in final mode)."""
        if self.feed:
            fed = self.corpus.push(self.src, self.feed)
            assert fed.returncode == 0, fed.stderr
        proc = self.push()
        assert proc.returncode == 0, proc.stderr
        return proc

    def next_version(self):
        self.version += 1
        return str(self.version)

    def answer(self):
        status, body = http_get(self.port)
        assert status == 200, body
        return json.loads(body)["version"]

    def state(self):
        """What a failed deploy must leave exactly as it was."""
        return {
            "branch": ls_remote(self.paths["project_git"]),
            "current": os.readlink(self.paths["current"]),
            "data": tree_digest(self.paths["data"]),
            "project": tree_digest(self.paths["project"]),
            "releases": sorted(os.listdir(self.paths["releases"])),
            "version": self.answer(),
        }


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    corpus = Corpus(tmp_path_factory.mktemp("phase-failures"), local_salt)
    made = {}

    def get(env):
        if env not in made:
            made[env] = Target(corpus, env)
        return made[env]

    yield get
    corpus.stop_all()


def last_line(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()[-1]


@pytest.mark.parametrize("env,phase", CASES, ids=["{}-{}".format(e, p) for e, p in CASES])
def test_failure_in_phase_changes_nothing_live(targets, env, phase):
    t = targets(env)
    corpus, paths, mode = t.corpus, t.paths, MODE_OF[env]
    t.set_fail(None)
    before = t.state()
    assert before["data"], "the good deploys wrote into data/"
    version = t.next_version()

    if env == "prod":
        commit = corpus.commit(t.src, {"VERSION": version + "\n"}, "v" + version)
        fed = corpus.push(t.src, t.feed)
        assert fed.returncode == 0, fed.stderr
        t.set_fail(phase)
    else:
        commit = corpus.commit(t.src, {".salt/FAIL_PHASE": phase + "\n", "VERSION": version + "\n"},
                               "v{} fails in {}".format(version, phase))
    proc = t.push()

    # The pusher is told, in one sentence, and the push is refused.
    assert proc.returncode != 0, proc.stderr
    assert "failed in phase {} and was rolled back".format(phase) in proc.stderr
    assert "remote: -----> rollback (after {} failed)".format(phase) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pre-receive hook declined" in proc.stderr

    # Nothing live moved.
    after = t.state()
    assert after == before
    assert ls_remote(paths["project_git"]) != commit

    # The failure is on record, set aside with its log, and its rollback phase ran.
    record = corpus.history(t.name)[-1]
    assert record["kind"] == "deploy" and record["commit"] == commit
    assert record["status"] == "failed" and record["failed_phase"] == phase
    assert [e["result"] for e in record["phases"] if e["phase"] == phase] == [False]
    failed = os.path.join(paths["failed"], record["id"])
    log = open(os.path.join(failed, "deploy.log"), encoding="utf-8").read()
    assert "phasefail: {} fails on purpose".format(phase) in log
    assert open(os.path.join(failed, "tree", "VERSION"), encoding="utf-8").read().strip() == version
    assert last_line(os.path.join(paths["logs"], "phasefail-rollback.trace")) == \
        "rollback {} {} failed={}".format(commit, record["id"], phase)
    if phase in ("post_deploy", "post_install"):
        # It had written into data/ before failing; data/ was put back.
        assert "[ok] {}-{}-data".format(t.name, phase) in log
        assert "data/ restored from its snapshot" in log
    assert not os.path.exists(os.path.join(paths["build"], record["id"]))
    assert not os.path.exists(os.path.join(paths["snapshots"], record["id"]))

    # The failed release does not count.
    assert record["id"] not in os.listdir(paths["releases"])
    if mode == "editable":
        assert os.listdir(paths["releases"]) == []
    else:
        listed = corpus.salt("mc_project.releases", t.name, check=True).local
        assert [r["id"] for r in listed] == before["releases"]
        assert [r["id"] for r in listed if r["live"]] == [os.path.basename(before["current"])]
    if mode == "cooking":
        assert not [f for f in os.listdir(paths["bundles"]) if f.startswith(commit)]

    # A fixed push deploys.
    if env == "prod":
        t.set_fail(None)
        fixed = commit
    else:
        version = t.next_version()
        fixed = corpus.commit(t.src, {".salt/FAIL_PHASE": None, "VERSION": version + "\n"},
                              "v{} fixed".format(version))
    proc = t.push()
    assert proc.returncode == 0, proc.stderr
    assert ls_remote(paths["project_git"]) == fixed
    assert t.answer() == version
    good = corpus.history(t.name)[-1]
    assert good["status"] == "success" and good["commit"] == fixed
    if mode != "editable":
        assert os.readlink(paths["current"]) == os.path.join("releases", good["id"])


def test_failing_rollback_phase_still_restores_live_and_data(targets):
    """The project's own rollback phase failing too is reported; corpus's own
    restoration (current, data/, the checkout, the app) still happens."""
    t = targets("dev")
    t.set_fail(None)
    before = t.state()
    version = t.next_version()
    commit = t.corpus.commit(t.src, {".salt/FAIL_PHASE": "post_install rollback\n",
                                     "VERSION": version + "\n"}, "fails, and so does its rollback")
    proc = t.push()
    assert proc.returncode != 0
    assert "rollback phase failed too" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert t.state() == before
    record = t.corpus.history(t.name)[-1]
    assert record["commit"] == commit and record["failed_phase"] == "post_install"
    assert any("rollback phase failed too" in note for note in record["rollback"])
    t.corpus.commit(t.src, {".salt/FAIL_PHASE": None}, "fixed")
    assert t.push().returncode == 0
    assert t.answer() == version
