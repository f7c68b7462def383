"""Bad input gets one clear sentence, a non-zero exit, no traceback, and changes nothing.

Bad project names for ``init_project`` and ``settings``; an unknown env or mode, or a
cyclic or unknown ``{var}``, in Salt pillar; a malformed ``PILLAR.sample`` (or one with
a bad reference) in a pushed commit; a malformed private pillar; a push to another
branch (accepted, not deployed); deleting the deploy branch; a push to a project whose
layout is missing. Every case runs against one live project and checks, after, that
its whole tree, its branches and its HTTP answer are what they were.
"""

import json
import os
import shutil

import pytest

from support.corpus import Corpus, project_state, sample_project, tree_digest
from support.git import git, ls_remote
from support.saltcall import local_salt
from support.web import http_get
from mc_project.project import settings as mc_settings

PHASEFAIL = sample_project("phasefail")
NAME = "badin"


def assert_one_sentence(output, expected):
    """The refusal says ``expected`` in one line and shows no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if expected in line]
    assert len(lines) == 1, output
    return lines[0]


class Live:
    """The live project every case must leave as it was."""

    def __init__(self, corpus):
        self.corpus = corpus
        self.pillar = {"env": "dev"}
        self.paths = corpus.init(NAME, **self.pillar)
        self.src = corpus.source(PHASEFAIL, name=NAME)
        proc = corpus.push(self.src, NAME)
        assert proc.returncode == 0, proc.stderr

    def answer(self):
        status, body = http_get(mc_settings.default_port(NAME))
        assert status == 200, body
        return json.loads(body)["version"]

    def state(self):
        return project_state(self.paths), self.corpus.history(NAME), self.answer()

    def reset_source(self):
        """Drop the source's commits the remote refused."""
        git(self.src, "reset", "-q", "--hard", ls_remote(self.paths["project_git"]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("bad-input"), local_salt)
    yield c
    c.stop_all()


@pytest.fixture(scope="module")
def live(corpus):
    return Live(corpus)


BAD_NAMES = {"slash": "a/b", "dotdot": "..", "space": "my app", "semicolon": "app;id",
             "subshell": "$(touch x)", "65-chars": "a" * 65}


@pytest.mark.parametrize("bad", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_bad_project_name(corpus, bad):
    os.makedirs(corpus.root, exist_ok=True)
    before = tree_digest(corpus.base, skip={"salt"})
    for fun in ("mc_project.init_project", "mc_project.settings"):
        res = corpus.salt(fun, bad)
        assert res.returncode != 0, res.stdout
        line = assert_one_sentence(res.stdout + res.stderr, "is invalid")
        assert line == "Error running '{}': Project name {!r} is invalid: use 1 to 64 letters, " \
                       "digits, '.', '_' or '-', starting with a letter or digit.".format(fun, bad)
    assert tree_digest(corpus.base, skip={"salt"}) == before
    assert not os.path.exists("x")


PILLAR_CASES = {
    "unknown-env": ({"env": "qa"}, "Unknown env 'qa': use one of dev, staging, prod."),
    "unknown-mode": ({"mode": "turbo"}, "Unknown mode 'turbo': use one of editable, cooking, final."),
    "cyclic-var": ({"data": {"a": "{data.b}", "b": "x{data.a}"}},
                   "Settings reference a value through a cycle: data.b -> data.a -> data.b."),
    "unknown-var": ({"data": {"a": "{data.nope}"}}, "Reference {data.nope} in data.a names no known setting."),
}


@pytest.mark.parametrize("case", list(PILLAR_CASES), ids=list(PILLAR_CASES))
def test_bad_salt_pillar_is_refused(corpus, live, case):
    layer, message = PILLAR_CASES[case]
    before = live.state()
    corpus.set_pillar(NAME, dict(live.pillar, **layer))
    try:
        res = corpus.salt("mc_project.settings", NAME)
        assert res.returncode != 0
        assert_one_sentence(res.stdout + res.stderr, message)
        corpus.commit(live.src, {"VERSION": "never\n"}, "not deployed")
        proc = corpus.push(live.src, NAME)
    finally:
        corpus.set_pillar(NAME, live.pillar)
        live.reset_source()
    assert proc.returncode != 0
    assert_one_sentence(proc.stderr, message)
    assert live.state() == before


SAMPLE_CASES = {
    "invalid-yaml": ("health: [path\n", "is not valid YAML at line"),
    "not-a-mapping": ("- health\n- data\n", "must be a YAML mapping, not a list."),
    "computed-key": ("paths:\n  data: /tmp\n", "PILLAR.sample sets 'paths', which corpus computes itself."),
    "cyclic-var": ("data:\n  a: '{data.b}'\n  b: '{data.a}'\n",
                   "Settings reference a value through a cycle: data.b -> data.a -> data.b."),
    "unknown-var": ("data:\n  a: '{nowhere}'\n", "Reference {nowhere} in data.a names no known setting."),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES), ids=list(SAMPLE_CASES))
def test_bad_pillar_sample_in_a_pushed_commit_is_refused(corpus, live, case):
    text, message = SAMPLE_CASES[case]
    before = live.state()
    commit = corpus.commit(live.src, {".salt/PILLAR.sample": text, "VERSION": "never\n"}, case)
    try:
        proc = corpus.push(live.src, NAME)
    finally:
        live.reset_source()
    assert proc.returncode != 0
    assert_one_sentence(proc.stderr, message)
    assert live.state() == before
    assert ls_remote(live.paths["project_git"]) != commit


PRIVATE_CASES = {
    "invalid-yaml": ("environment: {GREETING: [salut\n", "is not valid YAML at line"),
    "not-a-mapping": ("just a string\n", "must be a YAML mapping, not a str."),
    "computed-key": ("name: other\n", "Private pillar sets 'name', which corpus computes itself."),
    "unknown-mode": ("mode: turbo\n", "Unknown mode 'turbo': use one of editable, cooking, final."),
}


@pytest.mark.parametrize("case", list(PRIVATE_CASES), ids=list(PRIVATE_CASES))
def test_bad_private_pillar_push_is_refused(corpus, live, case):
    text, message = PRIVATE_CASES[case]
    src = os.path.join(corpus.base, "src", "pillar-" + case)
    os.makedirs(src)
    git(src, "init", "-q", "-b", "main")
    corpus.commit(src, {"init.sls": text}, case)
    before = live.state()
    proc = corpus.push(src, NAME, kind="pillar")
    assert proc.returncode != 0
    assert_one_sentence(proc.stderr, message)
    assert live.state() == before
    assert ls_remote(live.paths["pillar_git"]) is None


def test_push_to_another_branch_is_accepted_not_deployed(corpus, live):
    (state, history, version) = live.state()
    commit = corpus.commit(live.src, {"VERSION": "feature\n"}, "work in progress")
    try:
        proc = corpus.push(live.src, NAME, refspec="HEAD:feature")
    finally:
        live.reset_source()
    assert proc.returncode == 0, proc.stderr
    assert_one_sentence(proc.stderr, "refs/heads/feature accepted, not deployed: only main deploys badin")
    assert "Traceback" not in proc.stderr
    assert ls_remote(live.paths["project_git"], "refs/heads/feature") == commit
    after_state, after_history, after_version = live.state()
    # Only the new branch differs.
    assert after_state.pop("project_git") != state.pop("project_git")
    assert after_state == state and after_history == history and after_version == version
    git(live.src, "push", "-q", live.paths["project_git"], ":feature")  # not the deploy branch: allowed
    assert ls_remote(live.paths["project_git"], "refs/heads/feature") is None


def test_deleting_the_deploy_branch_is_refused(corpus, live):
    before = live.state()
    good = ls_remote(live.paths["project_git"])
    proc = corpus.push(live.src, NAME, refspec=":main")
    assert proc.returncode != 0
    assert_one_sentence(proc.stderr, "Deleting the deploy branch main is refused.")
    assert ls_remote(live.paths["project_git"]) == good
    assert live.state() == before


def test_push_to_a_project_whose_layout_is_missing_is_refused(corpus, live):
    shutil.rmtree(live.paths["releases"])
    try:
        before = live.state()
        corpus.commit(live.src, {"VERSION": "never\n"}, "not deployed")
        proc = corpus.push(live.src, NAME)
        live.reset_source()
        assert proc.returncode != 0
        assert_one_sentence(proc.stderr, "Project layout under {} is missing (releases): run "
                                         "mc_project.init_project first.".format(live.paths["root"]))
        assert live.state() == before
    finally:
        corpus.salt("mc_project.init_project", NAME, check=True)  # repairs the layout
    # Repaired, the project deploys again.
    commit = corpus.commit(live.src, {"VERSION": "2\n"}, "v2")
    proc = corpus.push(live.src, NAME)
    assert proc.returncode == 0, proc.stderr
    assert live.answer() == "2" and ls_remote(live.paths["project_git"]) == commit
