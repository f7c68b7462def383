"""Bundles: pack on a cooking target, fetch and verify on a final one."""

import functools
import http.server
import json
import os
import shutil
import threading

import pytest

from mc_project.project import bundle, settings
from mc_project.errors import CorpusError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def tree_files(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = fh.read()
    return out


@pytest.fixture
def cooked(tmp_path):
    """A release packed by a cooking target: (cfg, release dir, manifest)."""
    cfg = settings.build("app", str(tmp_path / "cooking"), overrides={"env": "staging"},
                         release_id="20240101T000000-01234567", commit=COMMIT)
    release = str(tmp_path / "release")
    write(os.path.join(release, "app.py"), "print('hello')\n")
    write(os.path.join(release, "public", "index.html"), "<h1>v1</h1>\n")
    write(os.path.join(release, ".salt", "PILLAR.sample"), "env: staging\n")
    os.chmod(os.path.join(release, "app.py"), 0o755)
    manifest = bundle.pack(cfg, release)
    return cfg, release, manifest


def test_pack_writes_archive_and_manifest(cooked):
    cfg, _release, manifest = cooked
    bundles = cfg["paths"]["bundles"]
    assert sorted(os.listdir(bundles)) == [COMMIT + ".json", COMMIT + ".tar.gz"]
    with open(os.path.join(bundles, COMMIT + ".json"), encoding="utf-8") as fh:
        assert json.load(fh) == manifest
    archive = os.path.join(bundles, COMMIT + ".tar.gz")
    assert manifest["commit"] == COMMIT
    assert manifest["project"] == "app"
    assert manifest["env"] == "staging"
    assert manifest["release_id"] == "20240101T000000-01234567"
    assert manifest["pillar_hash"] == cfg["pillar_hash"]
    assert manifest["archive"] == COMMIT + ".tar.gz"
    assert manifest["size"] == os.path.getsize(archive)
    assert manifest["sha256"] == bundle.sha256_of(archive)
    assert manifest["build_host"] and manifest["built_at"]


def check_round_trip(cooked, source, dest):
    _cfg, release, manifest = cooked
    got = bundle.fetch(source, COMMIT, dest)
    assert got == manifest
    assert sorted(os.listdir(dest)) == [COMMIT + ".json", COMMIT + ".tar.gz"]
    assert bundle.local_manifest(dest, COMMIT) == manifest
    unpacked = os.path.join(os.path.dirname(dest), "unpacked")
    bundle.unpack(dest, manifest, unpacked)
    assert tree_files(unpacked) == tree_files(release)
    assert os.stat(os.path.join(unpacked, "app.py")).st_mode & 0o777 == 0o755


def test_round_trip_from_a_directory(cooked, tmp_path):
    check_round_trip(cooked, cooked[0]["paths"]["bundles"], str(tmp_path / "final" / "bundles"))


def test_round_trip_from_a_manifest_path(cooked, tmp_path):
    source = os.path.join(cooked[0]["paths"]["bundles"], COMMIT + ".json")
    check_round_trip(cooked, source, str(tmp_path / "final" / "bundles"))


def test_round_trip_from_an_archive_path(cooked, tmp_path):
    source = os.path.join(cooked[0]["paths"]["bundles"], COMMIT + ".tar.gz")
    check_round_trip(cooked, source, str(tmp_path / "final" / "bundles"))


@pytest.mark.parametrize("form", ["dir/", "dir", "manifest"])
def test_round_trip_from_a_file_url(cooked, tmp_path, form):
    bundles = cooked[0]["paths"]["bundles"]
    source = {"dir/": "file://{}/".format(bundles), "dir": "file://{}".format(bundles),
              "manifest": "file://{}/{}.json".format(bundles, COMMIT)}[form]
    check_round_trip(cooked, source, str(tmp_path / "final" / "bundles"))


@pytest.fixture
def http_dir():
    """Serve a directory over HTTP on 127.0.0.1; yields start(dir) -> base URL."""
    servers = []

    def start(directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        handler.log_message = lambda *a, **k: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return "http://127.0.0.1:{}".format(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_round_trip_over_http(cooked, tmp_path, http_dir):
    base = http_dir(os.path.dirname(cooked[0]["paths"]["bundles"]))
    check_round_trip(cooked, base + "/bundles/", str(tmp_path / "final" / "bundles"))


def test_missing_over_http_is_a_clear_error(cooked, tmp_path, http_dir):
    base = http_dir(str(tmp_path))
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(base + "/nothing-here/", COMMIT, dest)
    assert str(err.value) == "Cannot fetch bundle file {}/nothing-here/{}.json: File not found.".format(
        base, COMMIT)
    assert os.listdir(dest) == []


def test_tampered_archive_is_refused_and_leaves_nothing(cooked, tmp_path):
    source = str(tmp_path / "served")
    shutil.copytree(cooked[0]["paths"]["bundles"], source)
    archive = os.path.join(source, COMMIT + ".tar.gz")
    with open(archive, "r+b") as fh:
        fh.seek(os.path.getsize(archive) // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, COMMIT, dest)
    msg = str(err.value)
    assert msg.startswith("Bundle {} fails verification: sha256 {} does not match the manifest's {}".format(
        archive, bundle.sha256_of(archive)[:16], cooked[2]["sha256"][:16]))
    assert os.listdir(dest) == []


def test_tampered_manifest_checksum_is_refused(cooked, tmp_path):
    source = str(tmp_path / "served")
    shutil.copytree(cooked[0]["paths"]["bundles"], source)
    manifest_path = os.path.join(source, COMMIT + ".json")
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    manifest["sha256"] = "0" * 64
    with open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError, match="fails verification"):
        bundle.fetch(source, COMMIT, dest)
    assert os.listdir(dest) == []


def test_commit_mismatch_is_refused(cooked, tmp_path):
    source = os.path.join(cooked[0]["paths"]["bundles"], COMMIT + ".json")
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, OTHER, dest)
    assert str(err.value) == "Bundle {} is for commit {}, not {}.".format(source, COMMIT[:12], OTHER[:12])
    assert os.listdir(dest) == []


def test_a_manifest_renamed_to_another_commit_is_refused(cooked, tmp_path):
    source = str(tmp_path / "served")
    shutil.copytree(cooked[0]["paths"]["bundles"], source)
    os.rename(os.path.join(source, COMMIT + ".json"), os.path.join(source, OTHER + ".json"))
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError, match="is for commit {}, not {}".format(COMMIT[:12], OTHER[:12])):
        bundle.fetch(source, OTHER, dest)
    assert os.listdir(dest) == []


def test_not_a_manifest(tmp_path):
    write(str(tmp_path / "src" / (COMMIT + ".json")), '["not", "a", "manifest"]')
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(str(tmp_path / "src"), COMMIT, dest)
    assert str(err.value) == "Bundle manifest {} is not a corpus manifest.".format(
        tmp_path / "src" / (COMMIT + ".json"))
    assert os.listdir(dest) == []


def test_no_source_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError) as err:
        bundle.fetch("", COMMIT, str(tmp_path / "final"))
    assert str(err.value) == ("No bundle source is set (setting bundle.source) and no bundle for "
                              "commit {} was fetched.".format(COMMIT[:12]))
    assert not (tmp_path / "final").exists()


def test_missing_source_is_a_clear_error(tmp_path):
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(str(tmp_path / "nowhere"), COMMIT, dest)
    assert str(err.value) == "Cannot fetch bundle file {}: No such file or directory.".format(
        tmp_path / "nowhere" / (COMMIT + ".json"))
    assert os.listdir(dest) == []


def test_missing_archive_beside_the_manifest(cooked, tmp_path):
    source = str(tmp_path / "served")
    shutil.copytree(cooked[0]["paths"]["bundles"], source)
    os.unlink(os.path.join(source, COMMIT + ".tar.gz"))
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError, match=r"Cannot fetch bundle file .*{}\.tar\.gz".format(COMMIT)):
        bundle.fetch(source, COMMIT, dest)
    assert os.listdir(dest) == []


def test_missing_file_url(tmp_path):
    with pytest.raises(CorpusError, match="Cannot fetch bundle file file://"):
        bundle.fetch("file://{}/nowhere/".format(tmp_path), COMMIT, str(tmp_path / "final"))


def test_source_that_is_not_a_path(tmp_path):
    with pytest.raises(CorpusError, match="Cannot fetch bundle file"):
        bundle.fetch(str(tmp_path / "bad\0name"), COMMIT, str(tmp_path / "final"))


def test_manifest_location():
    assert bundle.manifest_location("", COMMIT) is None
    assert bundle.manifest_location("/b", COMMIT) == "/b/{}.json".format(COMMIT)
    assert bundle.manifest_location("/b/x.json", COMMIT) == "/b/x.json"
    assert bundle.manifest_location("/b/x.tar.gz", COMMIT) == "/b/x.json"
    assert bundle.manifest_location("https://h/b/", COMMIT) == "https://h/b/{}.json".format(COMMIT)


def test_local_manifest(cooked):
    bundles = cooked[0]["paths"]["bundles"]
    assert bundle.local_manifest(bundles, COMMIT) == cooked[2]
    assert bundle.local_manifest(bundles, OTHER) is None
    with open(os.path.join(bundles, COMMIT + ".tar.gz"), "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(CorpusError, match="fails verification: its sha256 does not match"):
        bundle.local_manifest(bundles, COMMIT)
