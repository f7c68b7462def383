"""Helpers for the project engine's integration tests: real salt-call, real git push.

``corpus`` gives one masterless Salt configuration and one projects root per test,
and helpers to create projects, make source repositories from ``examples/`` and push
them. Every supervisord a test started is shut down at teardown.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

from mc_project import localsalt
from mc_project.project import agent
from mc_project.project import settings as mc_settings
from mc_project.project import supervisor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, "examples")
GIT_ENV = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}


def git(cwd, *args, check=True):
    env = dict(os.environ, **GIT_ENV)
    proc = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError("git {} failed: {}{}".format(" ".join(args), proc.stdout, proc.stderr))
    return proc


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
        for rel, text in files.items():
            path = os.path.join(src, rel)
            if text is None:
                os.unlink(path)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        git(src, "add", "-A")
        git(src, "commit", "-qm", message)
        return head(src)

    def push(self, src, name, refspec="HEAD:main", remote=None, kind="project", extra=()):
        """``git push`` to the project's bare repo; returns the CompletedProcess."""
        remote = remote or self.paths(name)["{}_git".format(kind)]
        env = dict(os.environ, **GIT_ENV)
        return subprocess.run(["git", "push"] + list(extra) + [remote, refspec], cwd=src, env=env,
                              capture_output=True, text=True, timeout=600)

    def port(self, name):
        return self.settings(name)["port"]

    def get(self, name, path="/"):
        return http_get(self.port(name), path)

    def history(self, name):
        path = self.paths(name)["history"]
        return json.load(open(path)) if os.path.exists(path) else []

    def stop_all(self):
        agent.stop(self.run.config_dir, self.root)
        for name in self.projects:
            sup = {"paths": self.paths(name)}
            if os.path.exists(supervisor.conf_path(sup)):
                supervisor.shutdown(sup)


class SaltCall:
    """What one ``salt-call`` gave (like the ``salt_local`` fixture's results)."""

    def __init__(self, proc):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        try:
            self.data = json.loads(proc.stdout)
        except ValueError:
            self.data = None

    @property
    def local(self):
        return self.data.get("local") if isinstance(self.data, dict) else None


def local_salt(base_dir, projects_root=None, pillar=None, extra=None):
    """A masterless salt-call runner like the ``salt_local`` fixture's, for fixtures
    that outlive one test (``Corpus(base, local_salt)`` in a module-scoped fixture)."""
    config_dir = localsalt.write_minion_config(os.path.abspath(str(base_dir)), projects_root=projects_root,
                                               pillar=pillar, extra=extra)
    exe = os.path.join(os.path.dirname(sys.executable), "salt-call")

    def run(*args, check=False, timeout=600):
        cmd = [exe, "-c", config_dir, "--local", "--out=json"] + [str(a) for a in args]
        result = SaltCall(subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                         text=True, timeout=timeout))
        if check and result.returncode:
            raise AssertionError("{} exited {}:\n{}{}".format(" ".join(cmd), result.returncode,
                                                             result.stdout, result.stderr))
        return result

    run.config_dir = config_dir
    return run


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
    whole tree (the deploy lock's owner note, logs, supervisor runtime files and
    git internals aside) plus the branches of both bare repositories."""
    state = tree_digest(paths["root"], skip={".deploy.lock", "logs", "supervisor", "git"})
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


def ls_remote(repo, ref="refs/heads/main"):
    """The commit ``ref`` points to in ``repo`` as ``git ls-remote`` sees it, or None."""
    out = git(os.getcwd(), "ls-remote", repo, ref).stdout.split()
    return out[0] if out else None


def head(src, ref="HEAD"):
    return git(src, "rev-parse", ref).stdout.strip()


def http_get(port, path="/"):
    """(status, body) of a GET on 127.0.0.1:port, (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:{}{}".format(port, path), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)
