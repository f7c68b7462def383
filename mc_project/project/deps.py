"""A release's dependencies, built once per content and reused: the Python virtualenv
(``requirements.txt`` or ``pyproject.toml``), ``node_modules`` (``package.json``), and a
Django project's static files.

Each dependency set is built in ``<root>/cache/<kind>-<digest>``, where the digest covers
the dependency files and the interpreter: a push that did not change them runs no pip or
npm at all, and the release gets hard links of the cached tree. A virtualenv's scripts
find their interpreter relative to themselves (``#!/bin/sh`` trampoline), so a release
runs wherever it lands: after the build dir is gone, on a final target, after a rollback.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess

from mc_project.errors import CorpusError
from mc_project.project import files

# A script that re-executes itself with the python beside it: sh runs the first lines,
# python reads them as a string.
TRAMPOLINE = "#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/python \"$0\" \"$@\"\n' '''\n"
PIP_TRAMPOLINE = b"'''exec' "
PYTHON_FILES = ("requirements.txt", "pyproject.toml")
NODE_FILES = ("package.json", "package-lock.json", "npm-shrinkwrap.json")


def _run(cmd, cwd, what, env=None, log=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if log:
        for line in proc.stdout.splitlines()[-20:]:
            log("      " + line)
    if proc.returncode:
        tail = " | ".join(line for line in proc.stdout.splitlines()[-3:] if line.strip())
        raise CorpusError("{} failed (exit {}): {}".format(what, proc.returncode, tail or "no output"))
    return proc.stdout


def _digest(tree, names, extra, local=()):
    """The cache key: the dependency files, the local sources they install from (each
    file under them), and ``extra`` (the interpreter)."""
    digest = hashlib.sha256(extra.encode())
    for name in names:
        path = os.path.join(tree, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read() + b"\0")
    for rel in sorted(local):
        for path in _files_under(os.path.join(tree, rel)):
            with open(path, "rb") as fh:
                digest.update(os.path.relpath(path, tree).encode() + b"\0" + fh.read() + b"\0")
    return digest.hexdigest()[:20]


def _files_under(path):
    if os.path.isfile(path):
        return [path]
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".venv", "node_modules", "__pycache__"))
        found.extend(os.path.join(dirpath, name) for name in sorted(filenames))
    return found


def _inside(tree, rel):
    """``rel`` when it names an existing path inside ``tree`` other than the tree itself."""
    real, top = os.path.realpath(os.path.join(tree, rel)), os.path.realpath(tree)
    if real != top and real.startswith(top + os.sep) and os.path.exists(real):
        return os.path.relpath(real, top)
    return None


# requirements.txt lines that install from the tree: ``./lib``, ``-e ./lib``, ``file:lib``;
# and the files it includes (``-r``, ``-c``).
REQUIREMENT_PATH = re.compile(r"(?:(?:-e|--editable)\s+)?(?:file:)?((?:\.{1,2}/|/)\S*)")
REQUIREMENT_INCLUDE = re.compile(r"(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)")


def python_local_sources(tree, name="requirements.txt", seen=None):
    """Paths in the tree that ``requirements.txt`` installs from or includes. The project
    itself (``.``, ``-e .``) is not one: its code runs from the release."""
    seen = set() if seen is None else seen
    path = os.path.join(tree, name)
    if name in seen or not os.path.isfile(path):
        return seen
    seen.add(name)
    base = os.path.dirname(name)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.split(" #", 1)[0].strip()
            include = REQUIREMENT_INCLUDE.fullmatch(line)
            if include:
                rel = _inside(tree, os.path.join(base, include.group(1)))
                if rel:
                    python_local_sources(tree, rel, seen)
                continue
            local = REQUIREMENT_PATH.fullmatch(line)
            rel = _inside(tree, local.group(1).rstrip("/")) if local else None
            if rel:
                seen.add(rel)
    return seen


def node_local_sources(tree):
    """Paths in the tree that ``package.json`` depends on (``"file:../lib"``-style specs)."""
    try:
        with open(os.path.join(tree, "package.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return set()
    found = set()
    for group in ("dependencies", "devDependencies", "optionalDependencies"):
        for spec in (manifest.get(group) or {}).values():
            if isinstance(spec, str) and spec.startswith("file:"):
                rel = _inside(tree, spec[len("file:"):])
                if rel:
                    found.add(rel)
    return found


# --------------------------------------------------------------------------- python

def wanted_python(tree):
    """The version ``.python-version`` or ``runtime.txt`` asks for (e.g. '3.11'), or None."""
    for name, pattern in ((".python-version", r"\s*(?:python-?)?(\d+\.\d+)(?:\.\d+)?\s*"),
                          ("runtime.txt", r"\s*python-(\d+\.\d+)(?:\.\d+)?\s*")):
        path = os.path.join(tree, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            match = re.fullmatch(pattern, text)
            if not match:
                raise CorpusError("{} says {!r}: write a Python version such as 3.11.".format(
                    name, text.strip()[:40]))
            return match.group(1)
    return None


def available_pythons():
    found = {}
    for path in sorted(glob.glob("/usr/bin/python3.*") + glob.glob("/usr/local/bin/python3.*")):
        match = re.fullmatch(r".*/python(3\.\d+)", path)
        if match and os.access(path, os.X_OK):
            found.setdefault(match.group(1), path)
    return found


def python_for(tree, configured=None):
    """The interpreter the release's virtualenv is made with: the one ``.python-version``
    or ``runtime.txt`` asks for, else ``configured`` (the minion option ``corpus_python``),
    else the system's ``/usr/bin/python3``."""
    version = wanted_python(tree)
    found = available_pythons()
    if version:
        if version not in found:
            raise CorpusError("The project asks for Python {}, which this host does not have; it has "
                              "{}.".format(version, ", ".join(sorted(found)) or "no python3.X"))
        return found[version]
    if configured:
        return configured
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


def make_relocatable(venv):
    """Point every script of ``venv/bin`` at the python beside it, whatever its path."""
    bindir = os.path.join(venv, "bin")
    for name in os.listdir(bindir):
        path = os.path.join(bindir, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as fh:
            text = fh.read()
        if not text.startswith(b"#!"):
            continue
        first, _, rest = text.partition(b"\n")
        if first.strip() == b"#!/bin/sh" and rest.startswith(PIP_TRAMPOLINE):
            # pip's own trampoline (for a long path): an absolute path on its second line
            rest = rest.split(b"\n", 2)[2]
        elif b"python" not in first:
            continue
        with open(path, "wb") as fh:
            fh.write(TRAMPOLINE.encode() + rest)


def _build_venv(python, tree, dest, log):
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _run([python, "-m", "venv", tmp], tree, "Making the virtualenv")
        pip = [os.path.join(tmp, "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if os.path.isfile(os.path.join(tree, "requirements.txt")):
            _run(pip + ["-r", "requirements.txt"], tree, "pip install -r requirements.txt", log=log)
        else:
            _run(pip + ["."], tree, "pip install . (pyproject.toml)", log=log)
        make_relocatable(tmp)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link_copy(src, dest, symlink=False):
    """``dest`` becomes a tree of hard links to ``src`` (cheap, and byte for byte the same),
    or with ``symlink`` a link to it: a build dir needs no copy of its own, the release
    made from it links the files (releases.make_release)."""
    if os.path.lexists(dest):
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        else:
            os.unlink(dest)
    if symlink:
        os.symlink(src, dest)
        return
    _run(["cp", "-al", src, dest], os.path.dirname(dest), "Linking {}".format(os.path.basename(dest)))


def install_python(cfg, tree, log, configured_python=None, symlink=False):
    if not any(os.path.isfile(os.path.join(tree, name)) for name in PYTHON_FILES):
        return None
    python = python_for(tree, configured_python)
    version = _run([python, "-c", "import sys; print(sys.version)"], tree, "Asking {} its version".format(python))
    key = _digest(tree, PYTHON_FILES, python + version, python_local_sources(tree))
    cache = os.path.join(cfg["paths"]["root"], "cache", "venv-" + key)
    if os.path.isdir(cache):
        log("       virtualenv reused ({}, dependencies unchanged)".format(os.path.basename(cache)))
    else:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        log("       virtualenv built with {} ({})".format(python, os.path.basename(cache)))
        _build_venv(python, tree, cache, log)
    os.utime(cache)  # the newest caches are the ones kept
    venv = os.path.join(tree, ".venv")
    marker = os.path.join(venv, ".corpus-cache")
    if symlink:
        _link_copy(cache, venv, symlink=True)
    elif files.read_text(marker) != os.path.basename(cache):  # an editable checkout may have it already
        _link_copy(cache, venv)
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(os.path.basename(cache))
    return cache



# --------------------------------------------------------------------------- node

def install_node(cfg, tree, log, env=None, symlink=False):
    if not os.path.isfile(os.path.join(tree, "package.json")):
        return None
    npm = shutil.which("npm")
    if not npm:
        raise CorpusError("The project has a package.json but this host has no npm (apt-get install npm).")
    local = node_local_sources(tree)
    key = _digest(tree, NODE_FILES, _run(["node", "--version"], tree, "node --version"), local)
    cache = os.path.join(cfg["paths"]["root"], "cache", "node-" + key)
    if os.path.isdir(cache):
        log("       node_modules reused ({})".format(os.path.basename(cache)))
    else:
        tmp = cache + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        try:
            for name in NODE_FILES:
                if os.path.isfile(os.path.join(tree, name)):
                    shutil.copy2(os.path.join(tree, name), tmp)
            for rel in local:  # npm ci resolves file: dependencies beside package.json
                dest = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.isdir(os.path.join(tree, rel)):
                    shutil.copytree(os.path.join(tree, rel), dest, symlinks=True,
                                    ignore=shutil.ignore_patterns("node_modules", ".git"))
                else:
                    shutil.copy2(os.path.join(tree, rel), dest)
            lock = any(os.path.isfile(os.path.join(tmp, n)) for n in NODE_FILES[1:])
            _run([npm, "ci" if lock else "install", "--no-audit", "--no-fund"], tmp, "npm install", log=log)
            os.rename(tmp, cache)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    os.utime(cache)
    modules = os.path.join(cache, "node_modules")
    if os.path.isdir(modules):
        _link_copy(modules, os.path.join(tree, "node_modules"), symlink=symlink)
    with open(os.path.join(tree, "package.json"), encoding="utf-8") as fh:
        scripts = (json.load(fh).get("scripts") or {})
    if "build" in scripts:
        _run([npm, "run", "build"], tree, "npm run build", env=env, log=log)
    return cache


# --------------------------------------------------------------------------- django

def collectstatic(cfg, tree, env, log):
    """A Django project gets ``manage.py collectstatic`` as Heroku's buildpack does;
    ``DISABLE_COLLECTSTATIC=1`` in the settings' ``environment`` turns it off, as there."""
    disabled = str((cfg.get("environment") or {}).get("DISABLE_COLLECTSTATIC", "")).lower()
    if disabled in ("1", "true", "yes") or not os.path.isfile(os.path.join(tree, "manage.py")):
        return
    python = os.path.join(tree, ".venv", "bin", "python")
    if not os.path.exists(python) or not glob.glob(os.path.join(tree, ".venv", "lib", "python3*",
                                                                 "site-packages", "django")):
        return
    _run([python, "manage.py", "collectstatic", "--noinput"], tree, "manage.py collectstatic", env=env, log=log)


def prune_cache(root, keep):
    """Keep the ``keep`` most recently used dependency trees of each kind."""
    cache = os.path.join(root, "cache")
    if not os.path.isdir(cache):
        return
    for kind in ("venv-", "node-"):
        entries = sorted((e for e in os.listdir(cache) if e.startswith(kind) and not e.endswith(".partial")),
                         key=lambda e: os.stat(os.path.join(cache, e)).st_mtime, reverse=True)
        for entry in entries[keep:]:
            shutil.rmtree(os.path.join(cache, entry), ignore_errors=True)
