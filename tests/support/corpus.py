"""The project engine as its integration tests drive it: real salt-call, real git push.

``Corpus(base, salt_local)`` gives one masterless Salt configuration and one projects
root under ``base``, and helpers to create projects, make source repositories from
``examples/`` (or ``tests/projects/``, see ``sample_project``) and push them.
``stop_all()`` shuts down every supervisord and deploy agent it started. For a fixture
that outlives one test, pass ``support.saltcall.local_salt`` instead of the
function-scoped ``salt_local`` fixture.
"""

import hashlib
import json
import os
import shutil

from mc_project.project import agent
from mc_project.project import settings as mc_settings
from mc_project.project import supervisor
from support import git as gitlib
from support.git import AsyncPush, git
from support.wait import wait_for
from support.web import http_get

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, "examples")
TEST_PROJECTS = os.path.join(REPO_ROOT, "tests", "projects")


def sample_project(name):
    """``tests/projects/NAME`` as ``Corpus.source`` takes it (relative to examples/)."""
    return os.path.relpath(os.path.join(TEST_PROJECTS, name), EXAMPLES)


class Corpus:
    """One test's corpus: a projects root, a salt-call, sources and pushes."""

    def __init__(self, base, salt_local, pillar=None):
        self.base = str(base)
        self.root = os.path.join(self.base, "projects")
        self._salt_local = salt_local
        self.pillar = pillar or {}
        self.run = salt_local(base_dir=os.path.join(self.base, "salt"), projects_root=self.root,
                              pillar={"makina-projects": self.pillar})
        self.projects = set()

    def set_pillar(self, name, value):
        """Salt pillar ``makina-projects:NAME`` (rewrites the local pillar)."""
        self.pillar[name] = value
        self.run = self._salt_local(base_dir=os.path.join(self.base, "salt"), projects_root=self.root,
                                    pillar={"makina-projects": self.pillar})

    def salt(self, *args, check=False):
        return self.run(*args, check=check)

    def init(self, name, **pillar):
        if pillar:
            self.set_pillar(name, pillar)
        self.projects.add(name)
        self.salt("mc_project.init_project", name, check=True)
        return self.paths(name)

    def paths(self, name):
        return mc_settings.project_paths(self.root, name)

    def settings(self, name):
        return self.salt("mc_project.settings", name, check=True).local

    def source(self, example, name=None, branch="main"):
        """A git work tree holding a copy of ``examples/<example>``, committed."""
        dest = os.path.join(self.base, "src", name or example)
        shutil.copytree(os.path.join(EXAMPLES, example), dest)
        git(dest, "init", "-q", "-b", branch)
        git(dest, "add", "-A")
        git(dest, "commit", "-qm", "initial")
        return dest

    def commit(self, src, files, message="change"):
        """Write ``files`` ({relpath: text or None to delete}) and commit; returns the sha."""
        return gitlib.commit_files(src, files, message)

    def push(self, src, name, refspec="HEAD:main", remote=None, kind="project", extra=()):
        """``git push`` to the project's bare repo; returns the CompletedProcess."""
        remote = remote or self.paths(name)["{}_git".format(kind)]
        return gitlib.push(src, remote, refspec, extra=extra)

    def port(self, name):
        return self.settings(name)["port"]

    def get(self, name, path="/"):
        return http_get(self.port(name), path)

    def history(self, name):
        path = self.paths(name)["history"]
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def stop_all(self):
        agent.stop(self.run.config_dir, self.root)
        for name in self.projects:
            sup = {"paths": self.paths(name)}
            if os.path.exists(supervisor.conf_path(sup)):
                supervisor.shutdown(sup)


def tree_digest(path, skip=()):
    """{relative path: sha256 of a file, 'link -> target' or 'dir'} of a tree."""
    out = {}
    if not os.path.isdir(path):
        return out
    for dirpath, dirnames, filenames in os.walk(path):
        rel_dir = os.path.relpath(dirpath, path)
        dirnames[:] = sorted(d for d in dirnames
                             if os.path.normpath(os.path.join(rel_dir, d)) not in skip)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in skip:
                continue
            if os.path.islink(full):
                out[rel] = "link -> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def project_state(paths):
    """Everything of a project a refused push or call must leave as it was: the
    whole tree (the deploy lock's owner note, logs, supervisor runtime files, git
    internals and the kept checkout, a cache of the last tree checked out, aside) plus
    the branches of both bare repositories."""
    state = tree_digest(paths["root"], skip={".deploy.lock", "logs", "supervisor", "git",
                                             "cache/checkout", "cache/checkout.index"})
    for kind in ("project_git", "pillar_git"):
        state[kind] = git(paths[kind], "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return state


def pillar_source(corpus, name, text):
    """A work tree for the project's private pillar holding ``init.sls``, committed."""
    src = os.path.join(corpus.base, "src", name + "-pillar")
    os.makedirs(src)
    git(src, "init", "-q", "-b", "main")
    corpus.commit(src, {"init.sls": text}, "settings")
    return src


def hold_push(corpus, src, name, phase, version, tmp_path):
    """Commit ``version`` of a ``sample_project("slow")`` source with a pause in ``phase``,
    push it without waiting, and return once the deploy is held there:
    ``(AsyncPush, gate file, commit)``. Removing the gate file lets the deploy go on."""
    gate = str(tmp_path / "gate-{}-{}".format(phase, version))
    open(gate, "w").close()
    commit = corpus.commit(src, {"VERSION": "{}\n".format(version), "PAUSE": "{}={}\n".format(phase, gate)},
                           "v{}".format(version))
    push = AsyncPush(src, corpus.paths(name)["project_git"])
    try:
        wait_for(lambda: os.path.exists(gate + ".reached") or push.proc.poll() is not None,
                 what="the deploy to reach its {} pause".format(phase))
        assert push.proc.poll() is None, "push ended before the pause:\n" + push.output
        wait_for(lambda: "-----> {}".format(phase) in push.output, timeout=60,
                 what="the {} phase's output".format(phase))
    except BaseException:
        os.unlink(gate)
        push.kill()
        raise
    return push, gate, commit
