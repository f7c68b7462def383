"""Writing and reading the engine's own small files."""

import os


def write_private(path, text, owner=None):
    """Write ``text`` to ``path`` atomically, mode 0600 (owned by ``owner`` uid when given):
    a crash leaves the old file or the new one, never half of one."""
    tmp = "{}.tmp-{}".format(path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if owner is not None:
            os.chown(tmp, owner, -1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path):
    """The text of ``path``, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None
