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
    release = str(tmp_path / "releases" / "20240101T000000-01234567")
    write(os.path.join(release, "app.py"), "print('hello')\n")
    write(os.path.join(release, "public", "index.html"), "<h1>v1</h1>\n")
    write(os.path.join(release, "index-copy.html"), "<h1>v1</h1>\n")  # same content: one object
    write(os.path.join(release, ".salt", "PILLAR.sample"), "env: staging\n")
    os.symlink("public", os.path.join(release, "static"))
    os.chmod(os.path.join(release, "app.py"), 0o755)
    manifest = bundle.pack(cfg, release)
    return cfg, release, manifest


def objects_of(cfg):
    """{sha256: path} of the objects in the store beside ``cfg``'s bundles."""
    store = bundle.objects_dir(cfg["paths"]["bundles"])
    return {name: os.path.join(store, prefix, name)
            for prefix in (os.listdir(store) if os.path.isdir(store) else ())
            for name in os.listdir(os.path.join(store, prefix))}


def test_pack_writes_objects_and_a_manifest(cooked):
    cfg, release, manifest = cooked
    bundles = cfg["paths"]["bundles"]
    assert os.listdir(bundles) == [COMMIT + ".json"]
    assert bundle.objects_dir(bundles) == os.path.join(os.path.dirname(bundles), "objects")
    with open(os.path.join(bundles, COMMIT + ".json"), encoding="utf-8") as fh:
        assert json.load(fh) == manifest
    assert manifest["format"] == 2
    assert manifest["commit"] == COMMIT
    assert manifest["project"] == "app"
    assert manifest["env"] == "staging"
    assert manifest["release_id"] == "20240101T000000-01234567"
    assert manifest["pillar_hash"] == cfg["pillar_hash"]
    assert manifest["build_host"] and manifest["built_at"]
    assert manifest["sha256"] == bundle.manifest_digest(manifest)
    entries = {e["path"]: e for e in manifest["files"]}
    assert [e["path"] for e in manifest["files"]] == [
        ".salt", ".salt/PILLAR.sample", "app.py", "index-copy.html", "public", "public/index.html",
        "static"]
    assert entries["public"] == {"path": "public", "type": "dir",
                                 "mode": os.stat(os.path.join(release, "public")).st_mode & 0o7777}
    assert entries["static"] == {"path": "static", "type": "symlink", "target": "public"}
    app = entries["app.py"]
    assert app["mode"] == 0o755 and app["size"] == len("print('hello')\n")
    assert app["sha256"] == bundle.sha256_of(os.path.join(release, "app.py"))
    # each distinct content once, hard-linked from the release (same filesystem)
    objects = objects_of(cfg)
    assert sorted(objects) == sorted({e["sha256"] for e in manifest["files"] if e["type"] == "file"})
    assert len(objects) == manifest["objects"] == 3
    assert manifest["size"] == sum(e["size"] for e in manifest["files"] if e["type"] == "file")
    assert os.stat(objects[app["sha256"]]).st_ino == os.stat(os.path.join(release, "app.py")).st_ino
    for sha, path in objects.items():
        assert bundle.sha256_of(path) == sha


def test_pack_reuses_the_hashes_of_files_linked_to_the_previous_release(cooked, tmp_path, monkeypatch):
    cfg, release, first = cooked
    second = str(tmp_path / "releases" / "20240102T000000-fedcba98")
    os.makedirs(os.path.join(second, "public"))
    os.link(os.path.join(release, "app.py"), os.path.join(second, "app.py"))
    write(os.path.join(second, "public", "index.html"), "<h1>v2</h1>\n")
    cfg2 = dict(cfg, commit=OTHER, release_id="20240102T000000-fedcba98")
    hashed = []
    real = bundle.sha256_of
    monkeypatch.setattr(bundle, "sha256_of", lambda path: hashed.append(os.path.basename(path)) or real(path))
    manifest = bundle.pack(cfg2, second, previous_release=release, previous_commit=COMMIT)
    assert hashed == ["index.html"]  # app.py is the previous release's inode: not read again
    assert {e["path"]: e.get("sha256") for e in manifest["files"]}["app.py"] == \
        {e["path"]: e.get("sha256") for e in first["files"]}["app.py"]
    assert len(objects_of(cfg)) == 4
    # pruning: once the first manifest goes, its objects no other manifest names go too
    os.unlink(os.path.join(cfg["paths"]["bundles"], COMMIT + ".json"))
    assert bundle.prune_objects(cfg["paths"]["bundles"]) == 2
    assert sorted(objects_of(cfg)) == sorted({e["sha256"] for e in manifest["files"] if e["type"] == "file"})


def test_remove_spares_a_manifest_another_release_packed(cooked):
    cfg, _release, manifest = cooked
    bundles = cfg["paths"]["bundles"]
    bundle.remove(bundles, COMMIT, release_id="some-other-release")
    assert os.listdir(bundles) == [COMMIT + ".json"] and len(objects_of(cfg)) == 3
    bundle.remove(bundles, COMMIT, release_id=manifest["release_id"])
    assert os.listdir(bundles) == [] and objects_of(cfg) == {}


def check_round_trip(cooked, source, dest):
    _cfg, release, manifest = cooked
    stats = {}
    got = bundle.fetch(source, COMMIT, dest, stats=stats)
    assert got == manifest
    assert stats == {"objects": 3, "fetched": 3, "fetched_bytes": manifest["size"] - len("<h1>v1</h1>\n")}
    assert sorted(os.listdir(dest)) == [COMMIT + ".json"]
    assert bundle.local_manifest(dest, COMMIT) == manifest
    assert bundle.missing_objects(dest, manifest) == {}
    unpacked = os.path.join(os.path.dirname(dest), "unpacked")
    bundle.unpack(dest, manifest, unpacked)
    assert tree_files(unpacked) == tree_files(release)
    assert os.readlink(os.path.join(unpacked, "static")) == "public"
    assert os.stat(os.path.join(unpacked, "app.py")).st_mode & 0o777 == 0o555
    index = os.path.join(unpacked, "public", "index.html")
    assert os.stat(index).st_mode & 0o777 == 0o444
    # a file whose mode is the object's is a hard link of it
    sha = {e["path"]: e.get("sha256") for e in manifest["files"]}["public/index.html"]
    assert os.stat(index).st_ino == os.stat(
        bundle.object_path(bundle.objects_dir(dest), sha)).st_ino
    # fetched again: every object is here already
    again = {}
    bundle.fetch(source, COMMIT, dest, stats=again)
    assert again == {"objects": 3, "fetched": 0, "fetched_bytes": 0}


def test_round_trip_from_a_directory(cooked, tmp_path):
    check_round_trip(cooked, cooked[0]["paths"]["bundles"], str(tmp_path / "final" / "bundles"))


def test_round_trip_from_a_manifest_path(cooked, tmp_path):
    source = os.path.join(cooked[0]["paths"]["bundles"], COMMIT + ".json")
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


def served_copy(cooked, tmp_path):
    """A copy of the cooking target's archives/ (bundles and objects); its bundles dir."""
    served = str(tmp_path / "served")
    shutil.copytree(os.path.dirname(cooked[0]["paths"]["bundles"]), served, symlinks=True)
    return os.path.join(served, "bundles")


def test_tampered_object_is_refused_and_leaves_nothing(cooked, tmp_path):
    source = served_copy(cooked, tmp_path)
    sha = {e["path"]: e.get("sha256") for e in cooked[2]["files"]}["app.py"]
    obj = bundle.object_path(bundle.objects_dir(source), sha)
    os.chmod(obj, 0o644)
    with open(obj, "ab") as fh:
        fh.write(b"# evil\n")
    dest = str(tmp_path / "final" / "bundles")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, COMMIT, dest)
    assert str(err.value) == ("Bundle object {} fails verification: its sha256 {} does not match the "
                              "manifest's {}.".format(obj, bundle.sha256_of(obj)[:16], sha[:16]))
    assert os.listdir(dest) == []
    leftovers = [f for _d, _s, files in os.walk(str(tmp_path / "final")) for f in files
                 if f.endswith(".partial") or sha in f]
    assert leftovers == []


def test_tampered_object_over_http_is_refused(cooked, tmp_path, http_dir):
    source = served_copy(cooked, tmp_path)
    sha = {e["path"]: e.get("sha256") for e in cooked[2]["files"]}["public/index.html"]
    obj = bundle.object_path(bundle.objects_dir(source), sha)
    os.chmod(obj, 0o644)
    with open(obj, "wb") as fh:
        fh.write(b"<h1>defaced</h1>\n")
    base = http_dir(os.path.dirname(source))
    dest = str(tmp_path / "final" / "bundles")
    with pytest.raises(CorpusError, match=r"^Bundle object {}/objects/{}/{} fails verification: its "
                                          r"sha256 \w+ does not match the manifest's {}\.$".format(
                                              base, sha[:2], sha, sha[:16])):
        bundle.fetch(base + "/bundles/", COMMIT, dest)
    assert os.listdir(dest) == []


def test_a_manifest_naming_a_path_outside_the_tree_is_refused(cooked, tmp_path):
    source = served_copy(cooked, tmp_path)
    path = os.path.join(source, COMMIT + ".json")
    manifest = json.load(open(path, encoding="utf-8"))
    manifest["files"].append(dict(manifest["files"][1], path="../escape"))
    manifest["sha256"] = bundle.manifest_digest(manifest)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, COMMIT, dest)
    assert str(err.value) == ("Bundle manifest {} is not a corpus manifest: entry '../escape' is not a "
                              "clean file, directory or symlink.".format(path))
    assert os.listdir(dest) == []


def test_tampered_manifest_is_refused(cooked, tmp_path):
    source = served_copy(cooked, tmp_path)
    manifest_path = os.path.join(source, COMMIT + ".json")
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    manifest["files"][2]["mode"] = 0o4755
    with open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, COMMIT, dest)
    assert str(err.value) == ("Bundle manifest {} fails verification: its digest {} does not match the "
                              "{} it states.".format(manifest_path, bundle.manifest_digest(manifest)[:16],
                                                     manifest["sha256"][:16]))
    assert os.listdir(dest) == []


def test_commit_mismatch_is_refused(cooked, tmp_path):
    source = os.path.join(cooked[0]["paths"]["bundles"], COMMIT + ".json")
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError) as err:
        bundle.fetch(source, OTHER, dest)
    assert str(err.value) == "Bundle {} is for commit {}, not {}.".format(source, COMMIT[:12], OTHER[:12])
    assert os.listdir(dest) == []


def test_a_manifest_renamed_to_another_commit_is_refused(cooked, tmp_path):
    source = served_copy(cooked, tmp_path)
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


def test_missing_object_beside_the_manifest(cooked, tmp_path):
    source = served_copy(cooked, tmp_path)
    sha = {e["path"]: e.get("sha256") for e in cooked[2]["files"]}["app.py"]
    os.unlink(bundle.object_path(bundle.objects_dir(source), sha))
    dest = str(tmp_path / "final")
    with pytest.raises(CorpusError, match=r"^Cannot fetch bundle file .*/objects/{}/{}: No such file".format(
            sha[:2], sha)):
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
    sha = {e["path"]: e.get("sha256") for e in cooked[2]["files"]}["app.py"]
    obj = bundle.object_path(bundle.objects_dir(bundles), sha)
    os.unlink(obj)
    assert bundle.missing_objects(bundles, cooked[2]) == {sha: len("print('hello')\n")}
    path = os.path.join(bundles, COMMIT + ".json")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(" ")
    assert bundle.local_manifest(bundles, COMMIT) == cooked[2]  # the same JSON
    manifest = dict(cooked[2], env="prod")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    with pytest.raises(CorpusError, match="fails verification: its digest"):
        bundle.local_manifest(bundles, COMMIT)
    # a bundle of the earlier format (an archive) is fetched again
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"commit": COMMIT, "archive": COMMIT + ".tar.gz", "sha256": "0" * 64}, fh)
    assert bundle.local_manifest(bundles, COMMIT) is None
