"""What the benchmarks share: a throwaway corpus (projects root + masterless Salt),
git sources, timed pushes, HTTP polling, medians and tables."""

import json
import os
import shutil
import socket
import stat
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, REPO_ROOT)

from mc_project import localsalt  # noqa: E402
from mc_project.project import agent, supervisor  # noqa: E402
from mc_project.project import settings as mc_settings  # noqa: E402

EXAMPLES = os.path.join(REPO_ROOT, "examples")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


class BenchError(Exception):
    pass


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def salt_call_path():
    here = os.path.join(os.path.dirname(sys.executable), "salt-call")
    return here if os.access(here, os.X_OK) else (shutil.which("salt-call") or "salt-call")


def git(cwd, *args, env=None):
    proc = subprocess.run(["git"] + list(args), cwd=cwd, env=env or dict(os.environ, **GIT_ENV),
                          capture_output=True, text=True)
    if proc.returncode:
        raise BenchError("git {} failed: {}{}".format(" ".join(args), proc.stdout, proc.stderr))
    return proc.stdout.strip()


def http_get(port, path="/", timeout=5):
    try:
        with urllib.request.urlopen("http://127.0.0.1:{}{}".format(port, path), timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return None, ""


def wait_http(port, needle, timeout=60, path="/"):
    """Poll until GET answers 200 with ``needle`` in the body; returns monotonic time."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = http_get(port, path)
        if status == 200 and needle in body:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError("127.0.0.1:{}{} did not answer {!r} within {}s (last: {} {!r})".format(
                port, path, needle, timeout, status, body[:200]))
        time.sleep(0.005)


class TimedPush:
    """A finished ``git push``: exit code, start/end and each stderr line with its arrival time."""

    def __init__(self, returncode, started, ended, lines):
        self.returncode = returncode
        self.started = started
        self.ended = ended
        self.lines = lines  # [(monotonic time, text)]

    @property
    def seconds(self):
        return self.ended - self.started

    def first(self, needle, after=None):
        """Arrival time of the first line holding ``needle`` (after time ``after``)."""
        for stamp, text in self.lines:
            if needle in text and (after is None or stamp >= after):
                return stamp
        return None

    def line_before(self, stamp):
        """Arrival time of the last line that came strictly before ``stamp``."""
        best = None
        for t, _ in self.lines:
            if t < stamp:
                best = t
        return best

    def text(self):
        return "\n".join(text for _, text in self.lines)


class Corpus:
    """A throwaway corpus under ``root``: masterless Salt config, projects, sources."""

    def __init__(self, root):
        self.root = root
        self.projects_root = os.path.join(root, "projects")
        self.salt_base = os.path.join(root, "salt")
        self.src_root = os.path.join(root, "src")
        self.tmp = os.path.join(root, "tmp")
        self.pillar = {}
        self.names = []
        self.conf_dir = None
        self.env = dict(os.environ, TMPDIR=self.tmp, **GIT_ENV)
        # salt-call and git run from the venv, like `make bench`.
        self.env["PATH"] = "{}:{}".format(os.path.dirname(sys.executable), self.env.get("PATH", ""))

    # -- setup / teardown -----------------------------------------------------------

    def clean_previous(self):
        """A run interrupted by kill -9 may have left apps and a deploy agent running:
        stop them, then wipe."""
        self.stop_agent(os.path.join(self.salt_base, "etc", "salt"))
        if os.path.isdir(self.projects_root):
            for name in os.listdir(self.projects_root):
                try:
                    paths = mc_settings.project_paths(self.projects_root, name)
                except Exception:
                    continue
                if os.path.exists(supervisor.conf_path({"paths": paths})):
                    supervisor.shutdown({"paths": paths})
        shutil.rmtree(self.root, ignore_errors=True)

    def setup(self, projects):
        """``projects``: {name: salt pillar makina-projects:NAME}."""
        self.clean_previous()
        for path in (self.projects_root, self.src_root, self.tmp):
            os.makedirs(path, exist_ok=True)
        self.pillar = dict(projects)
        self.conf_dir = localsalt.write_minion_config(
            self.salt_base, projects_root=self.projects_root,
            pillar={"makina-projects": self.pillar})
        # One salt-call per project, run side by side (each takes a second to start), once the
        # first has made the minion's cache: two salt-calls making it at once can race in Salt's
        # fileserver (FileExistsError).
        names = list(projects)
        self._init_projects(names[:1])
        self._init_projects(names[1:])

    def _init_projects(self, names):
        procs = {name: subprocess.Popen(self.salt_cmd("mc_project.init_project", name), env=self.env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name in names}
        for name, proc in procs.items():
            output = proc.communicate(timeout=600)[0]
            self.names.append(name)
            if proc.returncode:
                raise BenchError("salt-call mc_project.init_project {} exited {}: {}".format(
                    name, proc.returncode, output[-2000:]))

    def teardown(self, keep=False):
        errors = []
        for name in self.names:
            proc = self.salt("mc_project.stop", name, check=False)
            if proc.returncode:
                errors.append("mc_project.stop {}: {}".format(name, proc.stderr.strip()[-300:]))
            # Belt and braces: whatever happened above, no supervisord is left behind.
            paths = self.paths(name)
            if os.path.exists(supervisor.conf_path({"paths": paths})):
                supervisor.shutdown({"paths": paths})
        if self.conf_dir:
            self.stop_agent(self.conf_dir)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
        return errors

    def stop_agent(self, conf_dir):
        """Stop the deploy agent the pushes started (it would stop by itself, later)."""
        if os.path.isfile(os.path.join(conf_dir, "minion")) and os.path.isdir(self.projects_root):
            agent.stop(conf_dir, self.projects_root)

    # -- salt, git ------------------------------------------------------------------

    def salt_cmd(self, *args):
        return [salt_call_path(), "-c", self.conf_dir, "--local", "--out=json"] + [str(a) for a in args]

    def salt(self, *args, check=True):
        proc = subprocess.run(self.salt_cmd(*args), capture_output=True, text=True, env=self.env,
                              stdin=subprocess.DEVNULL, timeout=1800)
        if check and proc.returncode:
            raise BenchError("salt-call {} exited {}: {}{}".format(
                " ".join(map(str, args)), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return proc

    def timed_salt(self, *args):
        started = time.monotonic()
        self.salt(*args)
        return time.monotonic() - started

    def paths(self, name):
        return mc_settings.project_paths(self.projects_root, name)

    def history(self, name):
        with open(self.paths(name)["history"], encoding="utf-8") as fh:
            return json.load(fh)

    def source(self, name, example=None, files=None):
        """A committed git work tree: a copy of ``examples/<example>`` plus ``files``."""
        dest = os.path.join(self.src_root, name)
        if example:
            shutil.copytree(os.path.join(EXAMPLES, example), dest)
        os.makedirs(dest, exist_ok=True)
        git(dest, "init", "-q", "-b", "main")
        self.commit(dest, files or {}, "initial")
        return dest

    def commit(self, src, files, message="change"):
        for rel, content in files.items():
            path = os.path.join(src, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(path, mode) as fh:
                fh.write(content)
        git(src, "add", "-A")
        git(src, "commit", "-qm", message)
        return git(src, "rev-parse", "HEAD")

    def push(self, src, remote, refspec="HEAD:main", check=True, timeout=1800):
        """``git push`` with every stderr line timestamped as it arrives."""
        started = time.monotonic()
        proc = subprocess.Popen(["git", "push", "--progress", remote, refspec], cwd=src, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, bufsize=1)
        lines = []
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))
        proc.wait(timeout=timeout)
        result = TimedPush(proc.returncode, started, time.monotonic(), lines)
        if check and result.returncode:
            raise BenchError("git push to {} exited {}:\n{}".format(remote, result.returncode,
                                                                    result.text()[-3000:]))
        return result

    def push_project(self, src, name, **kwargs):
        return self.push(src, self.paths(name)["project_git"], **kwargs)


# --------------------------------------------------------------------------- disk

def unique_inode_bytes(top):
    """Sum of st_size of regular files under ``top``, each inode counted once."""
    seen = set()
    total = 0
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key in seen or not stat.S_ISREG(st.st_mode):
                continue
            seen.add(key)
            total += st.st_size
    return total


def du_bytes(*paths, apparent=True):
    """``du -sb`` (or ``du -sB1`` for allocated blocks) over ``paths`` in one run, so a
    hard-linked inode counts once; returns the grand total."""
    existing = [p for p in paths if os.path.exists(p)]
    if not existing:
        return 0
    cmd = ["du", "-sc", "-b" if apparent else "-B1"] + existing
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


# --------------------------------------------------------------------------- output

def fmt_seconds(value):
    if value is None:
        return "-"
    if value < 0.001:
        return "{:.1f} us".format(value * 1e6)
    if value < 1:
        return "{:.1f} ms".format(value * 1e3)
    return "{:.2f} s".format(value)


def fmt_bytes(value):
    if value is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(value) >= size:
            return "{:.1f} {}".format(value / size, unit)
    return "{} B".format(value)


def fmt_ratio(value):
    return "-" if value is None else "{:.2f}x".format(value)


def ratio(a, b):
    return a / b if a is not None and b else None


def table(headers, rows, out=print):
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
                         for i in range(len(row))).rstrip()

    out(line(cells[0]))
    out("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        out(line(row))
