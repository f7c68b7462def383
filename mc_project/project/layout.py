"""Creating a project's layout: directories, bare remotes, hooks (``init_project``)."""

import os
import shlex
import shutil

import git

from mc_project import resources
from mc_project.project import diskfull, files, settings, users

DIRS = ("project", "pillar", "build", "releases", "data", "snapshots", "archives", "bundles",
        "failed", "logs", "supervisor")
HOOKS = ("pre-receive",)


def hook_config(name, kind, salt_call):
    """The shell settings the hooks read (``corpus.conf`` in each bare repo).

    ``CORPUS_PYTHON`` (this Python, the one Salt and corpus run in) runs the deploy
    agent's client; ``CORPUS_SALT_CALL`` is its fallback and names the configuration."""
    import sys  # here, not at the top: the rest of this module does not need it

    return "".join("{}={}\n".format(k, shlex.quote(v)) for k, v in (
        ("CORPUS_PROJECT", name), ("CORPUS_KIND", kind), ("CORPUS_SALT_CALL", salt_call),
        ("CORPUS_PYTHON", sys.executable or "python3")))


def planned_changes(name, projects_root, salt_call):
    """What ``init_project`` would create or update, without doing it."""
    paths = settings.project_paths(projects_root, name)
    changes = {}
    for key in DIRS:
        if not os.path.isdir(paths[key]):
            changes[paths[key]] = "directory created"
    for kind in ("project", "pillar"):
        repo = paths["{}_git".format(kind)]
        if not os.path.isdir(os.path.join(repo, "objects")):
            changes[repo] = "bare repository created"
        for hook in HOOKS:
            dest = os.path.join(repo, "hooks", hook)
            if not _same_file(os.path.join(resources.hooks_dir(), hook), dest):
                changes[dest] = "hook installed"
        conf = os.path.join(repo, "corpus.conf")
        if files.read_text(conf) != hook_config(name, kind, salt_call):
            changes[conf] = "hook settings written"
    return changes


def init_project(name, projects_root, salt_call, branch="main", pillar=None):
    """Create (or repair) the layout of ``name``; returns what changed. Idempotent.

    As root it also creates the project's user (see ``users.py``); either way it sets
    the layout's modes and keeps a little disk space in reserve (``diskfull.py``)."""
    changes = planned_changes(name, projects_root, salt_call)
    paths = settings.project_paths(projects_root, name)
    for key in DIRS:
        os.makedirs(paths[key], exist_ok=True)
    for kind in ("project", "pillar"):
        repo_dir = paths["{}_git".format(kind)]
        if not os.path.isdir(os.path.join(repo_dir, "objects")):
            repo = git.Repo.init(repo_dir, bare=True)
            repo.git.symbolic_ref("HEAD", "refs/heads/" + branch)
        for hook in HOOKS:
            dest = os.path.join(repo_dir, "hooks", hook)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(resources.hooks_dir(), hook), dest)
            os.chmod(dest, 0o755)
        with open(os.path.join(repo_dir, "corpus.conf"), "w", encoding="utf-8") as fh:
            fh.write(hook_config(name, kind, salt_call))
    users.secure_layout(settings.build(name, projects_root, pillar=pillar))
    diskfull.ensure_reserve(paths["root"])
    return changes



def _same_file(src, dest):
    return files.read_text(src) is not None and files.read_text(src) == files.read_text(dest)
