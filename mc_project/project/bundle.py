"""Bundles: what a cooking target builds and a final target runs, byte for byte.

A bundle is ``<commit>.tar.gz`` plus the manifest ``<commit>.json`` (project,
commit, pillar hash, release id, build host, time, size, sha256). A final target
fetches both, checks the archive's sha256 against the manifest and the commit
against the one it deploys, and only then unpacks it.
"""

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.parse
import urllib.request

from mc_project.project import releases
from mc_project.errors import CorpusError
from mc_project.project.history import now


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pack(cfg, release_dir):
    """Pack ``release_dir`` into the project's bundles dir; returns the manifest."""
    bundles = cfg["paths"]["bundles"]
    os.makedirs(bundles, exist_ok=True)
    commit = cfg["commit"]
    archive = os.path.join(bundles, "{}.tar.gz".format(commit))
    tmp = archive + ".partial"
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(release_dir, arcname=".")
        os.replace(tmp, archive)
    except BaseException:
        remove_quietly(tmp)
        raise
    manifest = {
        "project": cfg["name"],
        "commit": commit,
        "pillar_hash": cfg["pillar_hash"],
        "release_id": cfg["release_id"],
        "env": cfg["env"],
        "build_host": socket.gethostname(),
        "built_at": now(),
        "archive": os.path.basename(archive),
        "size": os.path.getsize(archive),
        "sha256": sha256_of(archive),
    }
    _write_json(os.path.join(bundles, "{}.json".format(commit)), manifest)
    return manifest


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


def remove(bundles_dir, commit):
    """Remove the bundle of ``commit`` (archive, manifest and any partial file)."""
    for ext in (".tar.gz", ".json", ".tar.gz.partial", ".json.partial"):
        remove_quietly(os.path.join(bundles_dir, (commit or "-") + ext))


def manifest_location(source, commit):
    """Where the manifest of ``commit`` is, given a bundle source.

    A source is a directory (path or URL ending in '/'), a manifest (``.json``),
    or an archive (``.tar.gz``, its manifest beside it)."""
    if not source:
        return None
    is_url = urllib.parse.urlparse(source).scheme in ("http", "https", "file")
    if source.endswith(".json"):
        return source
    if source.endswith(".tar.gz"):
        return source[: -len(".tar.gz")] + ".json"
    if is_url:
        return source.rstrip("/") + "/{}.json".format(commit)
    return os.path.join(source, "{}.json".format(commit))


def _fetch(location, dest):
    """Copy a path or URL to ``dest``."""
    try:
        if urllib.parse.urlparse(location).scheme in ("http", "https", "file"):
            with urllib.request.urlopen(location, timeout=60) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out)
        else:
            shutil.copyfile(location, dest)
    except (OSError, ValueError) as exc:
        raise CorpusError("Cannot fetch bundle file {}: {}.".format(
            location, getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)) from None


def fetch(source, commit, dest_dir):
    """Fetch and verify the bundle of ``commit`` from ``source`` into ``dest_dir``.

    Returns the manifest. Nothing is left in ``dest_dir`` when verification fails."""
    location = manifest_location(source, commit)
    if not location:
        raise CorpusError("No bundle source is set (setting bundle.source) and no bundle "
                          "for commit {} was fetched.".format(commit[:12]))
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        manifest_tmp = os.path.join(tmp, "manifest.json")
        _fetch(location, manifest_tmp)
        try:
            with open(manifest_tmp, encoding="utf-8") as fh:
                manifest = json.load(fh)
            archive_name = manifest["archive"]
            expected = manifest["sha256"]
        except (ValueError, KeyError, TypeError):
            raise CorpusError("Bundle manifest {} is not a corpus manifest.".format(location)) from None
        if commit and manifest.get("commit") != commit:
            raise CorpusError("Bundle {} is for commit {}, not {}.".format(
                location, str(manifest.get("commit"))[:12], commit[:12]))
        archive_location = _beside(location, archive_name)
        archive_tmp = os.path.join(tmp, "bundle.tar.gz")
        _fetch(archive_location, archive_tmp)
        got = sha256_of(archive_tmp)
        if got != expected:
            raise CorpusError("Bundle {} fails verification: sha256 {} does not match the "
                              "manifest's {}.".format(archive_location, got[:16], expected[:16]))
        os.replace(archive_tmp, os.path.join(dest_dir, "{}.tar.gz".format(manifest["commit"])))
        _write_json(os.path.join(dest_dir, "{}.json".format(manifest["commit"])), manifest)
    return manifest


def _beside(location, name):
    if urllib.parse.urlparse(location).scheme in ("http", "https", "file"):
        return urllib.parse.urljoin(location, name)
    return os.path.join(os.path.dirname(location), name)


def local_manifest(bundles_dir, commit):
    """The manifest of an already fetched bundle of ``commit``, verified, or None."""
    path = os.path.join(bundles_dir, "{}.json".format(commit))
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    archive = os.path.join(bundles_dir, manifest.get("archive", ""))
    if not os.path.isfile(archive) or sha256_of(archive) != manifest.get("sha256"):
        raise CorpusError("Bundle {} fails verification: its sha256 does not match its "
                          "manifest.".format(archive))
    return manifest


def unpack(bundles_dir, manifest, dest):
    """Unpack a verified bundle into ``dest``."""
    releases.extract_tar(os.path.join(bundles_dir, manifest["archive"]), dest)
