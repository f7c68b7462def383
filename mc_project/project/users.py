"""Who a project's processes run as, and who may read what in its layout.

When corpus runs as root, each project's app and front run as a system user of their
own (setting ``run_as``; by default ``app-<name>``), created by ``init_project``. That
user owns ``data/`` and nothing else: releases, the checkout, the configs and the
secrets stay root's. When corpus runs as a normal user (the demo, a developer's
laptop) everything stays that user's and nobody is switched to.

Modes (both cases): secrets and what may echo them (``git/``, ``pillar/``,
``supervisor/``, ``logs/``, ``snapshots/``, ``archives/``, ``build/``) are 0700;
``releases/`` and ``project/`` are 0755 with read-only files; ``data/`` is 0750.
"""

import hashlib
import os
import pwd
import subprocess

from mc_project.errors import CorpusError

PRIVATE = ("pillar", "supervisor", "logs", "snapshots", "archives", "build")
PUBLIC = ("releases", "project")


def is_root():
    return os.geteuid() == 0


def default_user(name):
    """``app-<name>`` as a valid system user name (lower case, at most 32 characters)."""
    clean = "".join(c if c.isalnum() or c in "_-" else "-" for c in name.lower())
    user = "app-" + clean
    if len(user) > 32:
        user = "{}-{}".format(user[:23], hashlib.sha256(name.encode()).hexdigest()[:8])
    return user


def run_as(cfg):
    """The user name the project's processes run as."""
    if not is_root():
        return pwd.getpwuid(os.geteuid()).pw_name
    return cfg.get("run_as") or default_user(cfg["name"])


def front_user(cfg):
    """The user haproxy drops to once it has bound the public port (None: stay as is)."""
    return run_as(cfg) if is_root() else None


def ensure_user(cfg):
    """Create the project user when corpus runs as root and it is missing; (uid, gid)."""
    name = run_as(cfg)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not is_root():
            raise CorpusError("User {} does not exist.".format(name)) from None
        proc = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             cfg["paths"]["data"], "--shell", "/usr/sbin/nologin", name],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode:
            raise CorpusError("Could not create the project user {}: {}".format(
                name, proc.stdout.strip()))
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def secure_layout(cfg):
    """Set the layout's modes (and, as root, ``data/``'s owner)."""
    paths = cfg["paths"]
    os.chmod(paths["root"], 0o755)
    os.chmod(os.path.dirname(paths["project_git"]), 0o700)
    for key in PRIVATE:
        os.chmod(paths[key], 0o700)
    for key in PUBLIC:
        os.chmod(paths[key], 0o755)
    os.chmod(paths["data"], 0o750)
    if is_root():
        uid, gid = ensure_user(cfg)
        os.chown(paths["data"], uid, gid)


def give_data(cfg):
    """As root: everything under ``data/`` belongs to the project user again (a
    migration run by a phase as root may have written files there)."""
    if not is_root():
        return
    uid, gid = ensure_user(cfg)
    for dirpath, dirnames, filenames in os.walk(cfg["paths"]["data"]):
        for entry in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            try:
                st = os.lstat(entry)
                if st.st_uid != uid or st.st_gid != gid:
                    os.lchown(entry, uid, gid)
            except FileNotFoundError:  # the live app renamed or removed it meanwhile
                continue
