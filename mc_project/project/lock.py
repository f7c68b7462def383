"""One deploy at a time per project.

The lock is an ``flock`` on ``<root>/.deploy.lock``: the kernel drops it when its
owner dies (even by ``kill -9``), so a dead owner never blocks the next deploy. The
file also records who holds it (pid, host, job id, start time), so a deploy that
gives up waiting can name the holder.
"""

import contextlib
import fcntl
import json
import os
import socket
import time

from mc_project.errors import CorpusError


def read_holder(lock_path):
    """The owner record of the lock, or None when it is free."""
    if not os.path.exists(lock_path):
        return None
    with open(lock_path, "r+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                return json.loads(fh.read() or "{}")
            except ValueError:
                return {}
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def describe(holder):
    if not holder:
        return "another deploy"
    return "job {job_id} (pid {pid} on {host}, since {started})".format(
        job_id=holder.get("job_id", "?"), pid=holder.get("pid", "?"),
        host=holder.get("host", "?"), started=holder.get("started", "?"))


@contextlib.contextmanager
def deploy_lock(lock_path, job_id, timeout, on_wait=None):
    """Hold the project's deploy lock, waiting up to ``timeout`` seconds for it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_fd(fd)
                if time.monotonic() >= deadline:
                    raise CorpusError("Deploy refused: {} holds the deploy lock and did not "
                                      "release it within {}s.".format(describe(holder), timeout)) from None
                if on_wait and not told:
                    on_wait("waiting for the deploy lock held by {}".format(describe(holder)))
                    told = True
                time.sleep(0.2)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "job_id": job_id,
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        yield owner
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _read_fd(fd):
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        return {}
