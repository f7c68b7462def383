"""Real git for tests: a fixed author, commits of given files, pushes (waited for or not)."""

import os
import signal
import subprocess
import threading
import time

from support.wait import WAIT

GIT_ENV = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
PUSH_TIMEOUT = 600


def git_env(**extra):
    return dict(os.environ, **GIT_ENV, **extra)


def git(cwd, *args, check=True):
    proc = subprocess.run(["git"] + list(args), cwd=cwd, env=git_env(), capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError("git {} failed: {}{}".format(" ".join(args), proc.stdout, proc.stderr))
    return proc


def head(src, ref="HEAD"):
    return git(src, "rev-parse", ref).stdout.strip()


def ls_remote(repo, ref="refs/heads/main"):
    """The commit ``ref`` points to in ``repo`` as ``git ls-remote`` sees it, or None."""
    out = git(os.getcwd(), "ls-remote", repo, ref).stdout.split()
    return out[0] if out else None


def commit_files(src, files, message="change"):
    """Write ``files`` ({relpath: text, or None to delete}) in ``src``, commit; the new sha."""
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


def push(src, remote, refspec="HEAD:main", extra=(), env=None, timeout=PUSH_TIMEOUT):
    """``git push [EXTRA] REMOTE REFSPEC`` from ``src``; the CompletedProcess (text output)."""
    return subprocess.run(["git", "push"] + list(extra) + [remote, refspec], cwd=src,
                          env=git_env(**(env or {})), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


class AsyncPush:
    """A ``git push`` in a session of its own, not waited for: each output line is kept
    with its arrival time (``lines``: ``(monotonic time, line)``), ``output`` joins them."""

    def __init__(self, src, remote, refspec="HEAD:main"):
        self.proc = subprocess.Popen(["git", "push", remote, refspec], cwd=src, env=git_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line))

    @property
    def output(self):
        return "".join(line for _, line in self.lines)

    def wait(self, timeout=WAIT):
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code

    def kill(self):
        """Kill the push and everything it started (its whole session's process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
