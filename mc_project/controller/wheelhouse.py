"""The wheelhouse: wheels of corpus and of everything it needs at run time.

Compute nodes and containers have no internet: the controller ships them this
directory and they ``pip install --no-index --find-links`` from it. Building
it downloads and builds salt and its dependencies (about a minute), so
``ensure_wheelhouse`` only rebuilds them when corpus's version or ``setup.py``
(the dependency list) or the Python that runs corpus changed; the corpus wheel
itself is rebuilt whenever the source tree changed. A stamp file records what
the wheels were built from.

The wheels are built for the controller's Python and platform: nodes and
containers must run the same Python minor version on the same architecture.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from mc_project import __version__, resources
from mc_project.errors import CorpusError

STAMP = ".corpus-wheelhouse.json"

# Test runs share one wheelhouse per machine instead of building one each.
CACHE_ENV = "CORPUS_WHEELHOUSE_CACHE"
DEFAULT_CACHE = "/var/cache/corpus/wheelhouse"

# What setup.py builds the corpus wheel from: the package, the loader
# directories (``_modules``...), the state tree and the hooks.
SOURCE_DIRS = ("mc_project", "salt", "hooks")
SKIPPED = ("__pycache__", "*.pyc", "*.pyo", "_data")

PIP_TIMEOUT = 1800


def shared_cache():
    """The machine's shared wheelhouse directory (tests and benchmarks use it)."""
    return os.environ.get(CACHE_ENV) or DEFAULT_CACHE


def _file_digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _source_dirs(root):
    return sorted(name for name in os.listdir(root)
                  if (name in SOURCE_DIRS or (name.startswith("_") and name[1:].isalpha()))
                  and os.path.isdir(os.path.join(root, name)))


def _source_digest(root):
    """A digest of every file the corpus wheel is built from."""
    digest = hashlib.sha256()
    ignored = shutil.ignore_patterns(*SKIPPED)
    paths = [os.path.join(root, "setup.py")]
    for top in _source_dirs(root):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            skipped = ignored(dirpath, dirnames + filenames)
            dirnames[:] = sorted(name for name in dirnames if name not in skipped)
            paths.extend(os.path.join(dirpath, name)
                         for name in sorted(filenames) if name not in skipped)
    for path in paths:
        digest.update(os.path.relpath(path, root).encode() + b"\0")
        digest.update(_file_digest(path).encode())
    return digest.hexdigest()


def wanted_stamp():
    """What a current wheelhouse was built from."""
    runtime = {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "platform": "{}-{}".format(sys.platform, platform.machine()),
    }
    if resources.FROM_SOURCE:
        setup_py = os.path.join(resources.SOURCE_ROOT, "setup.py")
        return dict(runtime, version=__version__, setup_py=_file_digest(setup_py),
                    source=_source_digest(resources.SOURCE_ROOT))
    # An installed corpus is its version: nothing else can differ.
    return dict(runtime, version=__version__, setup_py=None, source=None)


def read_stamp(dest):
    try:
        with open(os.path.join(dest, STAMP), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def check_destination(dest):
    """Refuse a ``dest`` that holds something other than a wheelhouse.

    A rebuild replaces the whole directory: it must never be someone's files.
    """
    dest = os.path.abspath(dest)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise CorpusError("The wheelhouse {} is not a directory.".format(dest))
    if os.path.isdir(dest) and os.listdir(dest) and read_stamp(dest) is None:
        raise CorpusError("{} is not empty and is not a corpus wheelhouse; choose another "
                          "wheelhouse directory.".format(dest))


def _write_stamp(dest, stamp):
    path = os.path.join(dest, STAMP)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(stamp, fh, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


@contextlib.contextmanager
def _locked(dest):
    """Hold ``dest``'s lock: one build at a time, readers wait for it to end."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip_wheel(wheel_dir, *args):
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheel_dir, *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT,
                                check=False)
    except subprocess.TimeoutExpired as exc:
        raise CorpusError("Building the wheelhouse took more than {} seconds.".format(
            PIP_TIMEOUT)) from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CorpusError("Building the wheelhouse failed: {}.".format(last.rstrip(".")))


def _corpus_requirement(build_dir):
    """What ``pip wheel`` builds corpus from: a copy of the source tree, or the index.

    The copy keeps pip's in-tree build files (``build/``, ``*.egg-info``) out
    of the checkout.
    """
    if not resources.FROM_SOURCE:
        return "corpus=={}".format(__version__)
    root = resources.SOURCE_ROOT
    source = os.path.join(build_dir, "source")
    os.makedirs(source)
    shutil.copy2(os.path.join(root, "setup.py"), source)
    for top in _source_dirs(root):
        shutil.copytree(os.path.join(root, top), os.path.join(source, top), symlinks=True,
                        ignore=shutil.ignore_patterns(*SKIPPED))
    return source


def _remove_corpus_wheels(directory):
    for name in os.listdir(directory):
        if name.startswith("corpus-") and name.endswith(".whl"):
            os.unlink(os.path.join(directory, name))


def _replace_dir(new, dest):
    """Put the directory ``new`` at ``dest``, replacing what was there."""
    old = None
    if os.path.exists(dest):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(dest))
        os.rename(dest, os.path.join(old, "wheelhouse"))
    os.rename(new, dest)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def ensure_wheelhouse(dest):
    """Make ``dest`` hold current wheels of corpus and all its runtime dependencies.

    Returns ``dest`` (absolute). Does nothing when the stamp matches; rebuilds
    only the corpus wheel when just the source tree changed; otherwise builds
    everything in a directory beside ``dest`` and swaps it in, so a failed
    build leaves the previous wheelhouse in place. Concurrent callers wait for
    one another.
    """
    dest = os.path.abspath(dest)
    check_destination(dest)
    with _locked(dest):
        wanted = wanted_stamp()
        current = read_stamp(dest) or {}
        if all(current.get(key) == value for key, value in wanted.items()):
            return dest
        started = time.monotonic()
        build_dir = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(dest))
        try:
            requirement = _corpus_requirement(build_dir)
            same_deps = all(
                current.get(key) == wanted[key] for key in ("python", "platform", "version",
                                                            "setup_py"))
            if same_deps:
                _remove_corpus_wheels(dest)
                _pip_wheel(dest, "--no-deps", requirement)
                built = "corpus"
            else:
                wheels = os.path.join(build_dir, "wheels")
                _pip_wheel(wheels, requirement)
                _replace_dir(wheels, dest)
                built = "all"
            _write_stamp(dest, dict(wanted, built=built,
                                    seconds=round(time.monotonic() - started, 1)))
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
    return dest
