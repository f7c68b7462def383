"""Bundles: what a cooking target builds and a final target runs, byte for byte.

Bundles are stored by content. Each distinct file of a release is one object,
``archives/objects/<sha256[:2]>/<sha256>`` (read-only, written under a ``.partial``
name and renamed, or hard-linked from the release when it is on the same filesystem),
and each release has a manifest, ``archives/bundles/<commit>.json``::

    {"format": 2, "project": "app", "commit": "<sha1>", "pillar_hash": "...",
     "release_id": "20240101T000000-01234567", "env": "staging",
     "build_host": "staging1", "built_at": "2024-01-01T00:00:00Z",
     "size": <bytes of all files>, "objects": <distinct objects>,
     "files": [{"path": "app", "type": "dir", "mode": 493},
               {"path": "app/run.py", "type": "file", "mode": 365, "size": 120,
                "sha256": "<sha256 of the content>"},
               {"path": "static", "type": "symlink", "target": "app/static"}],
     "sha256": "<digest of the manifest>"}

``files`` lists every directory, file and symlink of the release (paths relative
to it, parents first, sorted); ``mode`` is the permission bits. ``sha256`` is the
manifest's identity: the sha256 of the manifest without that key, as JSON with
sorted keys and no spaces (``manifest_digest``). Ten releases that differ by 1% cost
one release and 1% per release.

Packing a release (cooking) hashes only what changed: a file that is a hard link of
the previous release's file at the same path (what ``make_release`` makes of an
unchanged file) takes its hash from the previous manifest. A final target fetches
the manifest of its commit (from ``bundle.source``: a cooking target's
``archives/bundles`` directory, a manifest path, or an http(s)/file URL of either),
checks its digest and commit, fetches only the objects it lacks from ``objects/``
beside that bundles directory (``<bundles>/../objects/<xx>/<sha256>``), checks each
object's sha256, and builds the release tree from the objects (hard links, copies
where a mode differs). Nothing partial is left when any check fails.
"""

import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import tempfile
import urllib.parse
import urllib.request

from mc_project.errors import CorpusError
from mc_project.project.history import now

FORMAT = 2
URL_SCHEMES = ("http", "https", "file")
OBJECT_MODE = 0o444


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_digest(manifest):
    """The identity of a manifest: sha256 of its canonical JSON, without ``sha256``."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def objects_dir(bundles_dir):
    """The object store that goes with a bundles dir: ``objects/`` beside it."""
    return os.path.join(os.path.dirname(os.path.abspath(bundles_dir)), "objects")


def object_path(objects, sha):
    return os.path.join(objects, sha[:2], sha)


def summary(manifest):
    """A manifest without its file list (what a command shows)."""
    out = {k: v for k, v in manifest.items() if k != "files"}
    out["files"] = len(manifest.get("files", ()))
    return out


# --------------------------------------------------------------------------- pack (cooking)

def _read_manifest(path):
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), list) else None


def release_manifest(bundles_dir, release_id, commit=None):
    """The manifest packed from release ``release_id`` (looked for under ``commit``
    first), or None."""
    if not release_id or not os.path.isdir(bundles_dir):
        return None
    names = ["{}.json".format(commit)] if commit else []
    names += sorted(n for n in os.listdir(bundles_dir) if n.endswith(".json") and n not in names)
    for name in names:
        manifest = _read_manifest(os.path.join(bundles_dir, name))
        if manifest and manifest.get("release_id") == release_id:
            return manifest
    return None


def pack(cfg, release_dir, previous_release=None, previous_commit=None):
    """Store ``release_dir`` in the project's object store and write its manifest;
    returns the manifest. ``previous_release`` (the release ``make_release`` linked
    unchanged files to) lends the hashes of the files this release shares with it."""
    bundles = cfg["paths"]["bundles"]
    objects = objects_dir(bundles)
    os.makedirs(bundles, exist_ok=True)
    os.makedirs(objects, exist_ok=True)
    known = {}
    previous = release_manifest(bundles, os.path.basename(previous_release or ""), previous_commit)
    if previous and previous_release:
        known = {e["path"]: e for e in previous["files"] if e.get("type") == "file"}
    files, size, shas = [], 0, set()
    for rel, st in _walk(release_dir):
        path = os.path.join(release_dir, rel)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            files.append({"path": rel, "type": "dir", "mode": mode})
        elif stat.S_ISLNK(st.st_mode):
            files.append({"path": rel, "type": "symlink", "target": os.readlink(path)})
        elif stat.S_ISREG(st.st_mode):
            sha = _known_sha(known.get(rel), previous_release, rel, st) or sha256_of(path)
            _store(path, objects, sha)
            files.append({"path": rel, "type": "file", "mode": mode, "size": st.st_size, "sha256": sha})
            size += st.st_size
            shas.add(sha)
        else:
            raise CorpusError("Release {} holds {}, which is neither a file, a directory nor a "
                              "symlink.".format(release_dir, rel))
    files.sort(key=lambda e: e["path"])  # a parent sorts before what it holds
    manifest = {
        "format": FORMAT,
        "project": cfg["name"],
        "commit": cfg["commit"],
        "pillar_hash": cfg["pillar_hash"],
        "release_id": cfg["release_id"],
        "env": cfg["env"],
        "build_host": socket.gethostname(),
        "built_at": now(),
        "size": size,
        "objects": len(shas),
        "files": files,
    }
    manifest["sha256"] = manifest_digest(manifest)
    _write_json(os.path.join(bundles, "{}.json".format(cfg["commit"])), manifest)
    return manifest


def _walk(top):
    """(relative path, lstat) of everything under ``top``, parents first, sorted."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, top), os.lstat(full)


def _known_sha(entry, previous_release, rel, st):
    """The previous manifest's hash of ``rel`` when the file is the very inode the
    previous release holds there (an unchanged file ``make_release`` hard-linked)."""
    if not entry or entry.get("size") != st.st_size:
        return None
    try:
        old = os.lstat(os.path.join(previous_release, rel))
    except OSError:
        return None
    if (old.st_dev, old.st_ino) == (st.st_dev, st.st_ino):
        return entry["sha256"]
    return None


def _store(path, objects, sha):
    """Make object ``sha`` (whose content ``path`` holds) exist: a hard link of
    ``path`` when possible, else a copy written under a ``.partial`` name."""
    dest = object_path(objects, sha)
    if os.path.exists(dest):
        return False
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        os.link(path, dest)  # atomic: the object appears whole or not at all
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise
    tmp = dest + ".partial"
    try:
        shutil.copyfile(path, tmp)
        os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, dest)
    except BaseException:
        remove_quietly(tmp)
        raise
    return True


def _write_json(path, data):
    try:
        with open(path + ".partial", "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(path + ".partial", path)
    except BaseException:
        remove_quietly(path + ".partial")
        raise


def remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove(bundles_dir, commit, release_id=None):
    """Remove the manifest of ``commit`` (only if packed from ``release_id``, when
    given) and any partial one, then the objects no manifest uses any more."""
    path = os.path.join(bundles_dir, (commit or "-") + ".json")
    manifest = _read_manifest(path)
    if release_id is None or manifest is None or manifest.get("release_id") == release_id:
        remove_quietly(path)
    remove_quietly(path + ".partial")
    prune_objects(bundles_dir)


def prune_objects(bundles_dir):
    """Remove every object (and partial object) no manifest in ``bundles_dir`` uses;
    returns how many went."""
    objects = objects_dir(bundles_dir)
    if not os.path.isdir(objects):
        return 0
    used = set()
    if os.path.isdir(bundles_dir):
        for name in os.listdir(bundles_dir):
            if name.endswith(".json"):
                manifest = _read_manifest(os.path.join(bundles_dir, name))
                used.update(e.get("sha256") for e in (manifest or {}).get("files", ()))
    removed = 0
    for prefix in os.listdir(objects):
        folder = os.path.join(objects, prefix)
        if not os.path.isdir(folder):
            remove_quietly(folder)
            continue
        for name in os.listdir(folder):
            if name not in used:
                remove_quietly(os.path.join(folder, name))
                removed += 1
        try:
            os.rmdir(folder)
        except OSError:
            pass
    return removed


# --------------------------------------------------------------------------- fetch (final)

def is_url(location):
    return urllib.parse.urlparse(location).scheme in URL_SCHEMES


def manifest_location(source, commit):
    """Where the manifest of ``commit`` is, given a bundle source.

    A source is a directory (path or URL), a manifest (``.json``), or, as earlier
    releases of corpus named it, an archive (``.tar.gz``, its manifest beside it)."""
    if not source:
        return None
    if source.endswith(".json"):
        return source
    if source.endswith(".tar.gz"):
        return source[: -len(".tar.gz")] + ".json"
    if is_url(source):
        return source.rstrip("/") + "/{}.json".format(commit)
    return os.path.join(source, "{}.json".format(commit))


def object_location(manifest_at, sha):
    """Where object ``sha`` is, given where its manifest was found."""
    rel = "../objects/{}/{}".format(sha[:2], sha)
    if is_url(manifest_at):
        return urllib.parse.urljoin(manifest_at, rel)
    return os.path.normpath(os.path.join(os.path.dirname(manifest_at), rel))


def _open(location):
    """A readable binary stream of a path or URL."""
    try:
        if is_url(location):
            return urllib.request.urlopen(location, timeout=60)
        return open(location, "rb")
    except (OSError, ValueError) as exc:
        raise _cannot_fetch(location, exc) from None


def _cannot_fetch(location, exc):
    return CorpusError("Cannot fetch bundle file {}: {}.".format(
        location, getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc))


def _copy_hashing(location, dest):
    """Copy a path or URL to ``dest``; returns (sha256, bytes). A source that cannot
    be read is one sentence; a destination that cannot be written (a full disk) is
    the OSError itself."""
    digest, size = hashlib.sha256(), 0
    with _open(location) as src, open(dest, "wb") as out:
        while True:
            try:
                chunk = src.read(1 << 20)
            except (OSError, http.client.HTTPException) as exc:
                raise _cannot_fetch(location, exc) from None
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def load_manifest(path, location, commit):
    """Read and check a manifest: its format, its digest, its commit."""
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        files = manifest["files"]
        expected = manifest["sha256"]
        if not isinstance(files, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise CorpusError("Bundle manifest {} is not a corpus manifest.".format(location)) from None
    got = manifest_digest(manifest)
    if got != expected:
        raise CorpusError("Bundle manifest {} fails verification: its digest {} does not match the "
                          "{} it states.".format(location, got[:16], str(expected)[:16]))
    if commit and manifest.get("commit") != commit:
        raise CorpusError("Bundle {} is for commit {}, not {}.".format(
            location, str(manifest.get("commit"))[:12], commit[:12]))
    _check_entries(manifest["files"], location)
    return manifest


def _check_entries(files, location):
    """Every path relative and clean, under a directory the manifest lists, once."""
    dirs = {""}
    seen = set()
    for entry in files:
        path = entry.get("path") if isinstance(entry, dict) else None
        kind = entry.get("type") if isinstance(entry, dict) else None
        ok = isinstance(path, str) and path and not path.startswith("/") and \
            all(part not in ("", ".", "..") for part in path.split("/")) and "\0" not in path
        ok = ok and path not in seen and os.path.dirname(path) in dirs
        if kind == "file":
            sha = entry.get("sha256")
            ok = ok and isinstance(sha, str) and len(sha) == 64 and \
                all(c in "0123456789abcdef" for c in sha) and isinstance(entry.get("mode"), int)
        elif kind == "dir":
            ok = ok and isinstance(entry.get("mode"), int)
            dirs.add(path)
        elif kind == "symlink":
            ok = ok and isinstance(entry.get("target"), str)
        else:
            ok = False
        if not ok:
            raise CorpusError("Bundle manifest {} is not a corpus manifest: entry {!r} is not a "
                              "clean file, directory or symlink.".format(location, path))
        seen.add(path)


def missing_objects(bundles_dir, manifest):
    """{sha256: size} of the objects of ``manifest`` the local store lacks."""
    objects = objects_dir(bundles_dir)
    missing = {}
    for entry in manifest["files"]:
        if entry["type"] == "file" and entry["sha256"] not in missing:
            try:
                if os.stat(object_path(objects, entry["sha256"])).st_size == entry["size"]:
                    continue
            except OSError:
                pass
            missing[entry["sha256"]] = entry["size"]
    return missing


def fetch(source, commit, dest_dir, log=None, stats=None):
    """Fetch and verify the bundle of ``commit`` from ``source``: its manifest into
    ``dest_dir`` (a bundles dir) and the objects the local store lacks into the
    ``objects/`` beside it. Returns the manifest; ``stats`` (a dict) gets how many
    objects it names and how many (and how many bytes) were fetched. When a check
    fails nothing is left: no manifest, no partial object."""
    location = manifest_location(source, commit)
    if not location:
        raise CorpusError("No bundle source is set (setting bundle.source) and no bundle "
                          "for commit {} was fetched.".format(commit[:12]))
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".fetch-") as tmp:
        manifest_tmp = os.path.join(tmp, "manifest.json")
        _copy_hashing(location, manifest_tmp)
        manifest = load_manifest(manifest_tmp, location, commit)
        missing = missing_objects(dest_dir, manifest)
        objects = objects_dir(dest_dir)
        fetched_bytes = 0
        for sha in sorted(missing):
            fetched_bytes += _fetch_object(object_location(location, sha), objects, sha)
        _write_json(os.path.join(dest_dir, "{}.json".format(manifest["commit"])), manifest)
    counts = {"objects": manifest.get("objects", len({e["sha256"] for e in manifest["files"]
                                                      if e["type"] == "file"})),
              "fetched": len(missing), "fetched_bytes": fetched_bytes}
    if stats is not None:
        stats.update(counts)
    if log:
        log("       fetched {fetched} of {objects} objects ({fetched_bytes} bytes); the others "
            "were here already".format(**counts))
    return manifest


def _fetch_object(location, objects, sha):
    dest = object_path(objects, sha)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + ".partial"
    try:
        got, size = _copy_hashing(location, tmp)
        if got != sha:
            raise CorpusError("Bundle object {} fails verification: its sha256 {} does not match "
                              "the manifest's {}.".format(location, got[:16], sha[:16]))
        os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, dest)
    except BaseException:
        remove_quietly(tmp)
        try:
            os.rmdir(os.path.dirname(dest))
        except OSError:
            pass
        raise
    return size


def local_manifest(bundles_dir, commit):
    """The verified manifest of ``commit`` already in ``bundles_dir``, or None (none
    there, or one of an earlier format). Its objects may still be missing
    (``missing_objects``)."""
    path = os.path.join(bundles_dir, "{}.json".format(commit))
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            if "files" not in json.load(fh):
                return None  # an archive bundle of an earlier corpus: fetch it again
    except ValueError:
        pass
    return load_manifest(path, path, commit)


def unpack(bundles_dir, manifest, dest):
    """Build the tree of a verified manifest in ``dest`` from the object store: files
    are hard links of their objects (copies where the mode differs), read-only."""
    objects = objects_dir(bundles_dir)
    os.makedirs(dest, exist_ok=True)
    links = []
    dir_modes = []
    for entry in manifest["files"]:
        path = os.path.join(dest, entry["path"])
        if entry["type"] == "dir":
            os.mkdir(path, 0o700)
            dir_modes.append((path, entry["mode"]))
        elif entry["type"] == "symlink":
            links.append((entry["target"], path))
        else:
            _place(object_path(objects, entry["sha256"]), path, entry["mode"] & 0o555)
    for target, path in links:
        os.symlink(target, path)
    for path, mode in reversed(dir_modes):
        os.chmod(path, mode & 0o755)


def _place(obj, path, mode):
    try:
        if stat.S_IMODE(os.stat(obj).st_mode) == mode:
            os.link(obj, path)
            return
    except FileNotFoundError:
        raise CorpusError("Bundle object {} is missing.".format(obj)) from None
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise
    shutil.copyfile(obj, path)
    os.chmod(path, mode)
