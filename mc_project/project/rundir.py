"""Private directories for unix sockets and pid files.

A unix socket path is limited to 108 bytes, and a project under a long projects root
cannot keep its sockets beside its files. They then go to a short directory that only
the current user can enter: ``$XDG_RUNTIME_DIR/corpus``, else ``/run/corpus`` for
root, else ``/tmp/corpus-<uid>``, each with one sub-directory per key. A directory
that exists but is a symlink, belongs to someone else or is open to others is refused,
so another local user can never take a socket's place first.
"""

import hashlib
import os
import stat

from mc_project.errors import CorpusError

# AF_UNIX paths are limited to 108 bytes, NUL included; keep room for a file name.
MAX_DIR = 80


def _owned_private_dir(path):
    """Create ``path`` 0700 (parents as needed) and check nobody else can use it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise CorpusError("{} is not a private directory of uid {} (it must be a directory "
                          "with mode 0700 owned by this user); remove it and try again.".format(
                              path, os.geteuid()))
    return path


def base_dir():
    """The short, private base directory of this user's corpus sockets."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and len(xdg) < 40 and os.path.isdir(xdg):
        return _owned_private_dir(os.path.join(xdg, "corpus"))
    if os.geteuid() == 0:
        return _owned_private_dir("/run/corpus")
    return _owned_private_dir("/tmp/corpus-{}".format(os.geteuid()))


def socket_dir(preferred, key):
    """``preferred`` (made 0700) when its paths are short enough for a socket, else a
    private directory named after ``key`` under ``base_dir()``."""
    if len(preferred) <= MAX_DIR:
        return _owned_private_dir(preferred)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _owned_private_dir(os.path.join(base_dir(), digest))
