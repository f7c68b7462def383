"""Running the node's tools (lxc-*, nft, haproxy, ip, e2fsprogs) with one-sentence errors."""

import contextlib
import fcntl
import os
import subprocess

from mc_project.common import messages
from mc_project.errors import CorpusError

# A node tool that hangs (a stuck lxc-stop, an unreachable mirror) must not hang its caller.
DEFAULT_TIMEOUT = 900


def run(args, what, input=None, check=True, timeout=DEFAULT_TIMEOUT, env=None, text=True):
    """Run ``args`` (a list, never a shell line) and return the CompletedProcess.

    ``what`` names the operation for the error sentence ("Starting container ct-1").
    ``input`` goes to stdin and is never part of a message, so secrets may pass there;
    with ``text=False`` it is bytes, and so are the outputs.
    """
    try:
        proc = subprocess.run(
            args,
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=text,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError:
        raise CorpusError("{} failed: {} is not installed on this node.".format(what, args[0])) from None
    except subprocess.TimeoutExpired:
        raise CorpusError("{} failed: {} took more than {} s.".format(what, args[0], timeout)) from None
    if check and proc.returncode:
        raise CorpusError(
            "{} failed: {}.".format(what, last_line(proc) or "exit status {}".format(proc.returncode))
        )
    return proc


def last_line(proc):
    """The last non-empty line of a finished process's stderr (else stdout), for a message."""
    return messages.last_line(proc.stderr) or messages.last_line(proc.stdout)


@contextlib.contextmanager
def file_lock(path):
    """An exclusive lock on ``path`` (created, with its directory) for the time of the block."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
