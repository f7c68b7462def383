"""The wheelhouse: wheels of corpus and of everything it needs at run time.

Compute nodes and containers have no internet: the controller ships them this
directory and they ``pip install --no-index --find-links`` from it. Building
it downloads and builds salt and its dependencies (about a minute), so
``ensure_wheelhouse`` only rebuilds them when corpus's version or ``setup.py``
(the dependency list) or the Python that runs corpus changed; the corpus wheel
itself is rebuilt whenever the source tree changed. A stamp file records what
the wheels were built from.

corpus runs either from a checkout (or an editable install of one), whose
wheel ``pip wheel`` builds from a copy of the tree, or from a regular
install (``pip install .``), whose wheel is put back together from the
installed files: the distribution's ``RECORD`` lists them, and a wheel is a
zip of them with its ``.dist-info``. No package index is asked for corpus
itself. The stamp of an installed corpus holds a digest of those files and
of its requirements, so a wheelhouse built by the same install is current.

The wheels are built for the controller's Python and platform: nodes and
containers must run the same Python minor version on the same architecture.
"""

import base64
import contextlib
import errno
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile

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

DISTRIBUTION = "corpus"
# Files of an installed distribution that pip writes at install time: a wheel
# never holds them (RECORD is written afresh).
INSTALL_ONLY = ("INSTALLER", "REQUESTED", "RECORD", "direct_url.json")
# Fixed member times: the same installed files make the same wheel, byte for
# byte, so nodes copy it again only when it changed.
WHEEL_TIME = (1980, 1, 1, 0, 0, 0)

# The stamp's keys that, when unchanged, mean only the corpus wheel needs building.
DEPENDENCY_KEYS = ("python", "platform", "version", "setup_py", "requires")


class NotWritable(CorpusError):
    """The wheelhouse needs building and this user cannot write where it goes."""


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


# --------------------------------------------------------------------------- an installed corpus

def installed_distribution():
    """The installed distribution whose files this corpus runs from."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    ours = os.path.join(resources.PACKAGE_DIR, "__init__.py")
    try:
        same = dist is not None and os.path.samefile(
            str(dist.locate_file("mc_project/__init__.py")), ours)
    except OSError:
        same = False
    if not same:
        raise CorpusError("The corpus running from {} has no installed distribution metadata, so "
                          "its wheel cannot be built; reinstall it with pip install.".format(
                              resources.PACKAGE_DIR))
    return dist


def _reinstall(problem):
    return CorpusError("The installed corpus {}, so its wheel cannot be built; reinstall it "
                       "with pip install.".format(problem))


def _package_files(dist):
    """The install-relative names of the files ``dist`` installed, from its RECORD or, for a
    legacy (``setup.py install``) egg-info, its ``installed-files.txt``."""
    record = dist.read_text("RECORD")
    if record is not None:
        return [str(entry) for entry in dist.files or ()], True
    listed = dist.read_text("installed-files.txt")
    if listed is None:
        raise _reinstall("has no list of its files (RECORD)")
    names = []
    for line in listed.splitlines():
        # Relative to the .egg-info directory: "../mc_project/x.py" is "mc_project/x.py".
        name = posixpath.normpath(posixpath.join("egg-info", line.strip()))
        if line.strip() and not name.startswith(("egg-info/", "../")):
            names.append(name)
    return names, False


def _generated_dist_info(dist):
    """The .dist-info files of a wheel for a legacy egg-info install (it has none)."""
    metadata = dist.read_text("PKG-INFO") or ""
    head, blank, body = metadata.partition("\n\n")
    if "\nRequires-Dist:" not in "\n" + head:  # egg-info keeps them in requires.txt
        head = "\n".join([head.rstrip("\n")] + ["Requires-Dist: " + req for req in dist.requires or ()])
    files = {
        "METADATA": (head + "\n" + blank + body).encode(),
        "WHEEL": b"Wheel-Version: 1.0\nGenerator: corpus\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    for name in ("entry_points.txt", "top_level.txt"):
        text = dist.read_text(name)
        if text is not None:
            files[name] = text.encode()
    return files


def wheel_members(dist):
    """What ``dist``'s wheel holds: ``(name, path)`` of each installed file of the package,
    and ``{name: bytes}`` of the files of its ``.dist-info`` directory.

    Scripts (outside the install directory) are left out, as pip makes them
    again from ``entry_points.txt``; so are byte-code and pip's own records.
    """
    names, has_record = _package_files(dist)
    dist_info = next((name.split("/")[0] for name in names if has_record and re.fullmatch(
        r"[^/]+\.dist-info/METADATA", name)), None) or "{}-{}.dist-info".format(
            re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower(), dist.version)
    package, metadata = [], {}
    for name in names:
        parts = name.split("/")
        if ".." in parts or "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
            continue
        if parts[0].endswith((".dist-info", ".egg-info")):
            if has_record and len(parts) > 1 and parts[0] == dist_info and parts[-1] not in INSTALL_ONLY:
                metadata[name[len(dist_info) + 1:]] = None
            continue
        package.append((name, str(dist.locate_file(name))))
    missing = [path for _, path in package if not os.path.isfile(path)]
    if missing:
        raise _reinstall("lacks {} (and {} other file(s))".format(missing[0], len(missing) - 1))
    if not package:
        raise _reinstall("lists no file of its package")
    if has_record:
        for name in metadata:
            metadata[name] = (dist.read_text(name) or "").encode()
        if not metadata.get("METADATA") or not metadata.get("WHEEL"):
            raise _reinstall("has no {}/METADATA or WHEEL".format(dist_info))
    else:
        metadata = _generated_dist_info(dist)
    return sorted(package), {dist_info + "/" + name: data for name, data in sorted(metadata.items())}


def _installed_digest(package, metadata):
    digest = hashlib.sha256()
    for name, path in package:
        executable = os.stat(path).st_mode & 0o111 != 0
        digest.update("{}\0{}\0{}\0".format(name, _file_digest(path), executable).encode())
    for name, data in metadata.items():
        digest.update("{}\0{}\0".format(name, hashlib.sha256(data).hexdigest()).encode())
    return digest.hexdigest()


def _requires_digest(dist):
    return hashlib.sha256("\n".join(sorted(dist.requires or ())).encode()).hexdigest()


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_filename(dist_info, metadata):
    wheel = metadata[dist_info + "/WHEEL"].decode()
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise _reinstall("names no wheel tag in {}/WHEEL".format(dist_info))
    # Several tags share one file name: each part lists its values, dot-separated.
    parts = [".".join(dict.fromkeys(tag.split("-")[index] for tag in tags)) for index in range(3)]
    return "{}-{}.whl".format(dist_info[:-len(".dist-info")], "-".join(parts))


def _zip_member(name, executable=False):
    info = zipfile.ZipInfo(name, date_time=WHEEL_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    # Executable files (the git hooks) stay executable once installed.
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    return info


def build_installed_wheel(dist, wheel_dir):
    """Write the wheel of the installed distribution ``dist`` into ``wheel_dir``; return its path."""
    package, metadata = wheel_members(dist)
    dist_info = next(iter(metadata)).split("/")[0]
    os.makedirs(wheel_dir, exist_ok=True)
    path = os.path.join(wheel_dir, _wheel_filename(dist_info, metadata))
    record = []
    with zipfile.ZipFile(path + ".tmp", "w") as wheel:
        # The package first, its .dist-info last with RECORD at the very end, as wheels are laid out.
        for name, source in package:
            with open(source, "rb") as fh:
                data = fh.read()
            wheel.writestr(_zip_member(name, os.stat(source).st_mode & 0o111), data)
            record.append("{},{},{}".format(name, _record_hash(data), len(data)))
        for name, data in metadata.items():
            wheel.writestr(_zip_member(name), data)
            record.append("{},{},{}".format(name, _record_hash(data), len(data)))
        record.append("{}/RECORD,,".format(dist_info))
        wheel.writestr(_zip_member(dist_info + "/RECORD"), "\n".join(record) + "\n")
    os.replace(path + ".tmp", path)
    return path


# --------------------------------------------------------------------------- the stamp

def wanted_stamp():
    """What a current wheelhouse was built from."""
    runtime = {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "platform": "{}-{}".format(sys.platform, platform.machine()),
        "version": __version__,
    }
    if resources.FROM_SOURCE:
        setup_py = os.path.join(resources.SOURCE_ROOT, "setup.py")
        return dict(runtime, setup_py=_file_digest(setup_py),
                    source=_source_digest(resources.SOURCE_ROOT), requires=None, installed=None)
    # An installed corpus: its files and its requirements, as its wheel will hold them.
    dist = installed_distribution()
    return dict(runtime, setup_py=None, source=None, requires=_requires_digest(dist),
                installed=_installed_digest(*wheel_members(dist)))


def _is_current(stamp, wanted):
    return all((stamp or {}).get(key) == value for key, value in wanted.items())


def is_current(dest):
    """Whether ``dest`` holds the wheels this corpus would build (nothing to build)."""
    return _is_current(read_stamp(os.path.abspath(dest)), wanted_stamp())


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


def unwritable(path):
    """Why this user cannot write ``path``, in a few words, or None when it can.

    An existing file must be writable and so must its directory (files are
    replaced by a rename); an existing directory must be writable and
    searchable; a missing path needs its nearest existing parent to be a
    directory this user can write.
    """
    path = os.path.abspath(path)
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if existing == path and not os.path.isdir(path):
        if not os.access(path, os.W_OK):
            return "{} is not writable by this user".format(path)
        return unwritable(os.path.dirname(path))
    if not os.path.isdir(existing):
        return "{} is not a directory".format(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        return "{} is not writable by this user".format(existing)
    return None


def check_writable(dest):
    """Refuse, in one sentence, a wheelhouse that needs building where this user cannot write.

    A build writes its lock and its build directory beside ``dest`` and
    replaces ``dest`` itself; a current wheelhouse is only read.
    """
    dest = os.path.abspath(dest)
    if not is_current(dest):
        _refuse_unwritable(dest)


def _refuse_unwritable(dest):
    for path in (os.path.dirname(dest), dest):
        blocked = unwritable(path)
        if blocked:
            raise NotWritable("Cannot build the wheelhouse {}: {}; choose another with "
                              "--wheelhouse.".format(dest, blocked))


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
    """What ``pip wheel`` builds corpus from: a copy of the source tree, or the wheel
    of the installed distribution.

    The copy keeps pip's in-tree build files (``build/``, ``*.egg-info``) out
    of the checkout.
    """
    if not resources.FROM_SOURCE:
        return build_installed_wheel(installed_distribution(), os.path.join(build_dir, "corpus"))
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
    wanted = wanted_stamp()
    if _is_current(read_stamp(dest), wanted):
        return dest  # nothing to write: a wheelhouse this user may only read will do
    _refuse_unwritable(dest)
    try:
        with _locked(dest):
            _build(dest, wanted)
    except OSError as exc:
        error = NotWritable if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else CorpusError
        raise error("Cannot build the wheelhouse {}: {}{}.".format(
            dest, exc.strerror or type(exc).__name__,
            " ({})".format(exc.filename) if exc.filename else "")) from exc
    return dest


def _build(dest, wanted):
    current = read_stamp(dest) or {}
    if _is_current(current, wanted):
        return  # built by whoever held the lock before
    started = time.monotonic()
    build_dir = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(dest))
    try:
        requirement = _corpus_requirement(build_dir)
        same_deps = all(current.get(key) == wanted.get(key) for key in DEPENDENCY_KEYS)
        if same_deps:
            _remove_corpus_wheels(dest)
            _pip_wheel(dest, "--no-deps", requirement)
            built = "corpus"
        else:
            wheels = os.path.join(build_dir, "wheels")
            _pip_wheel(wheels, requirement)
            _replace_dir(wheels, dest)
            built = "all"
        _write_stamp(dest, dict(wanted, built=built, seconds=round(time.monotonic() - started, 1)))
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
