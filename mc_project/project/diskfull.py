"""A full filesystem: recognise it, name it, and keep room to clean up after it.

A deploy that hits ENOSPC must still undo what it did and record that it failed,
which needs a little space. Each project keeps ``.space-reserve`` (1 MiB) in its
root; a deploy that finds the disk full deletes it first, so the undo and the record
fit, and the next successful deploy makes it again.
"""

import errno
import os

RESERVE = ".space-reserve"
RESERVE_BYTES = 1 << 20
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


def is_full(exc):
    """Does this error (or one it was raised from) say a filesystem is full?"""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if any(text in str(exc) for text in FULL_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def no_room(path):
    """Is the filesystem holding ``path`` (nearly) out of space? For tools that fail a
    write without saying why (git's "unable to write file")."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < RESERVE_BYTES


def mount_point(path):
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def sentence(root, doing):
    return ("The filesystem {} holding {} is full, so {} could not finish; everything was put "
            "back as it was: free some space and push again.".format(mount_point(root), root, doing))


def release_reserve(root):
    try:
        os.unlink(os.path.join(root, RESERVE))
    except OSError:
        pass


def ensure_reserve(root):
    """(Re)create the reserve; quietly skipped when there is no room for it."""
    path = os.path.join(root, RESERVE)
    if os.path.exists(path):
        return
    try:
        with open(path + ".tmp", "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(path + ".tmp", path)
    except OSError:
        release_reserve(root)
        try:
            os.unlink(path + ".tmp")
        except OSError:
            pass
