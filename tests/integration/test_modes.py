"""The three modes, end to end with real pushes.

* dev / editable: runs from ``project/``, ``current -> project``, no release, no bundle.
* staging / cooking: ``releases/<id>``, and a bundle: each distinct file once in
  ``archives/objects``, and a manifest ``archives/bundles/<commit>.json`` (commit, pillar
  hash, build host, time, every path with its sha256, its digest).
* prod / final: never runs ``build`` (nor ``post_build``); takes the bundle staging built
  (``bundle.source``, a directory or an HTTP URL, or fetched beforehand with
  ``mc_project.fetch_bundle``), fetching only the objects it lacks, so what runs is byte
  for byte the staging release; a tampered object is refused and nothing changes.
"""

import functools
import http.server
import json
import os
import socket
import threading

import pytest

from support.corpus import Corpus, project_state, sample_project, tree_digest
from support.git import ls_remote
from support.saltcall import local_salt
from support.web import get_json
from mc_project.project import bundle as mc_bundle
from mc_project.project import settings as mc_settings

PHASEFAIL = sample_project("phasefail")
ALL_PHASES = ["backup", "gather_variables", "pre_install", "configure", "build", "post_build",
              "bundle", "deploy", "post_deploy", "post_install"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("modes"), local_salt)
    yield c
    c.stop_all()


def version_of(name):
    return get_json(mc_settings.default_port(name))["version"]


def phases_run(paths, commit):
    """Phases of ``commit`` that ran their SLS, in order (the phasefail trace)."""
    path = os.path.join(paths["logs"], "phasefail.trace")
    if not os.path.exists(path):
        return []
    return [line.split()[0] for line in open(path, encoding="utf-8")
            if line.split()[1:2] == [commit]]


def test_editable_runs_from_the_checkout(corpus):
    name = "modes-dev"
    paths = corpus.init(name, env="dev")
    src = corpus.source(PHASEFAIL, name=name)
    first = corpus.push(src, name)
    assert first.returncode == 0, first.stderr
    assert "(editable mode, env dev)" in first.stderr
    assert os.readlink(paths["current"]) == "project"
    assert os.listdir(paths["releases"]) == []
    assert os.listdir(paths["bundles"]) == []
    assert version_of(name) == "1"
    assert phases_run(paths, ls_remote(paths["project_git"])) == [
        p for p in ALL_PHASES if p != "bundle"]
    checkout_inode = os.stat(paths["project"]).st_ino

    # A push updates the checkout in place; the running app serves it.
    commit = corpus.commit(src, {"VERSION": "2\n", "extra.txt": "more\n"}, "v2")
    second = corpus.push(src, name)
    assert second.returncode == 0, second.stderr
    assert os.stat(paths["project"]).st_ino == checkout_inode
    assert open(os.path.join(paths["project"], "extra.txt")).read() == "more\n"
    assert tree_digest(paths["project"]) == tree_digest(src, skip={".git"})
    assert version_of(name) == "2"
    assert os.listdir(paths["releases"]) == [] and os.listdir(paths["bundles"]) == []
    record = corpus.history(name)[-1]
    assert record["mode"] == "editable" and record["commit"] == commit and record["release"] is False
    assert [e["result"] for e in record["phases"] if e["phase"] == "bundle"] == ["skipped"]


@pytest.fixture(scope="module")
def staged(corpus):
    """A staging (cooking) project and a prod (final) one fed by its bundles, one source."""
    staging, prod = "modes-staging", "modes-prod"
    spaths = corpus.init(staging, env="staging")
    ppaths = corpus.init(prod, env="prod", bundle={"source": spaths["bundles"]})
    src = corpus.source(PHASEFAIL, name="modes")
    return {"staging": staging, "prod": prod, "spaths": spaths, "ppaths": ppaths, "src": src}


def test_cooking_makes_a_release_and_a_bundle(corpus, staged):
    name, paths, src = staged["staging"], staged["spaths"], staged["src"]
    proc = corpus.push(src, name)
    assert proc.returncode == 0, proc.stderr
    assert "(cooking mode, env staging)" in proc.stderr
    commit = ls_remote(paths["project_git"])
    record = corpus.history(name)[-1]
    assert record["status"] == "success" and record["mode"] == "cooking"
    release = os.path.join(paths["releases"], record["id"])
    assert os.readlink(paths["current"]) == os.path.join("releases", record["id"])
    assert tree_digest(release) == tree_digest(src, skip={".git"})
    assert version_of(name) == "1"
    assert phases_run(paths, commit) == ALL_PHASES
    assert os.listdir(paths["project"]) == []

    manifest = json.load(open(os.path.join(paths["bundles"], commit + ".json")))
    assert os.listdir(paths["bundles"]) == [commit + ".json"]
    assert manifest["commit"] == commit
    assert manifest["pillar_hash"] == record["pillar_hash"]
    assert manifest["build_host"] == socket.gethostname()
    assert manifest["built_at"] and manifest["release_id"] == record["id"]
    assert manifest["sha256"] == mc_bundle.manifest_digest(manifest)
    # The manifest lists exactly the release; each file is an object, hard-linked.
    digest = tree_digest(release)
    assert {e["path"] for e in manifest["files"]} == set(digest)
    store = mc_bundle.objects_dir(paths["bundles"])
    for entry in manifest["files"]:
        if entry["type"] == "file":
            assert entry["sha256"] == digest[entry["path"]]
            assert os.stat(mc_bundle.object_path(store, entry["sha256"])).st_ino == \
                os.stat(os.path.join(release, entry["path"])).st_ino
    assert manifest["size"] == sum(e["size"] for e in manifest["files"] if e["type"] == "file")


def test_final_runs_the_staging_bundle_byte_for_byte_and_never_builds(corpus, staged):
    name, paths, src = staged["prod"], staged["ppaths"], staged["src"]
    commit = ls_remote(staged["spaths"]["project_git"])
    assert commit, "the cooking test pushed first"
    proc = corpus.push(src, name)
    assert proc.returncode == 0, proc.stderr
    assert "(final mode, env prod)" in proc.stderr
    assert "bundle verified: sha256" in proc.stderr
    assert "-----> build" not in proc.stderr and "-----> post_build" not in proc.stderr
    # build.sls would have left its trace: it never ran.
    assert phases_run(paths, commit) == [p for p in ALL_PHASES if p not in ("build", "post_build")]
    record = corpus.history(name)[-1]
    assert record["mode"] == "final" and record["status"] == "success"
    assert [e["result"] for e in record["phases"] if e["phase"] in ("build", "post_build")] == \
        ["skipped", "skipped"]
    staging_record = [r for r in corpus.history(staged["staging"]) if r["commit"] == commit][-1]
    release = os.path.join(paths["releases"], record["id"])
    assert tree_digest(release) == tree_digest(
        os.path.join(staged["spaths"]["releases"], staging_record["id"]))
    assert os.readlink(paths["current"]) == os.path.join("releases", record["id"])
    assert version_of(name) == "1"
    # Every object was fetched (nothing was here); the release is made of them.
    manifest = mc_bundle.local_manifest(paths["bundles"], commit)
    assert "       fetched {0} of {0} objects".format(manifest["objects"]) in proc.stderr
    store = mc_bundle.objects_dir(paths["bundles"])
    assert any(os.stat(os.path.join(release, e["path"])).st_ino ==
               os.stat(mc_bundle.object_path(store, e["sha256"])).st_ino
               for e in manifest["files"] if e["type"] == "file")


def replace_object(bundles, manifest, path, content):
    """Put other bytes where the object of ``path`` is (a new file: the cooking
    release that shares the object's inode keeps its bytes)."""
    sha = next(e["sha256"] for e in manifest["files"] if e["path"] == path)
    obj = mc_bundle.object_path(mc_bundle.objects_dir(bundles), sha)
    os.unlink(obj)
    with open(obj, "wb") as fh:
        fh.write(content)
    return obj, sha


def test_final_refuses_a_tampered_bundle(corpus, staged):
    sname, pname, src = staged["staging"], staged["prod"], staged["src"]
    ppaths = staged["ppaths"]
    good = ls_remote(ppaths["project_git"])
    assert good, "the final test pushed first"
    commit = corpus.commit(src, {"VERSION": "2\n"}, "v2")
    fed = corpus.push(src, sname)
    assert fed.returncode == 0, fed.stderr
    manifest = json.load(open(os.path.join(staged["spaths"]["bundles"], commit + ".json")))
    obj, sha = replace_object(staged["spaths"]["bundles"], manifest, "VERSION", b"6\n")

    before = project_state(ppaths)
    proc = corpus.push(src, pname)
    assert proc.returncode != 0
    assert "Bundle object {} fails verification: its sha256 {} does not match the manifest's {}.".format(
        obj, mc_bundle.sha256_of(obj)[:16], sha[:16]) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [f for _d, _s, files in os.walk(ppaths["archives"]) for f in files if ".partial" in f]
    assert ls_remote(ppaths["project_git"]) == good
    assert project_state(ppaths) == before
    assert version_of(pname) == "1"
    assert not [f for f in os.listdir(ppaths["bundles"]) if f.startswith(commit)]

    # fetch_bundle refuses it the same way and leaves nothing behind.
    res = corpus.salt("mc_project.fetch_bundle", pname, staged["spaths"]["bundles"], "commit=" + commit)
    assert res.returncode != 0
    assert "fails verification" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert project_state(ppaths) == before


def test_fetch_bundle_then_final_deploys_without_a_source(corpus, staged):
    sname, pname, src = staged["staging"], staged["prod"], staged["src"]
    spaths, ppaths = staged["spaths"], staged["ppaths"]
    commit = corpus.commit(src, {"VERSION": "3\n"}, "v3")
    fed = corpus.push(src, sname)
    assert fed.returncode == 0, fed.stderr

    res = corpus.salt("mc_project.fetch_bundle", pname, spaths["bundles"], "commit=" + commit, check=True)
    got = res.local
    manifest = json.load(open(os.path.join(spaths["bundles"], commit + ".json")))
    assert got["commit"] == commit and got["sha256"] == manifest["sha256"]
    assert got["files"] == len(manifest["files"]) and got["objects"] == manifest["objects"]
    assert got["fetched"] == 1  # only VERSION changed since the last fetch
    assert mc_bundle.local_manifest(ppaths["bundles"], commit) == manifest
    assert mc_bundle.missing_objects(ppaths["bundles"], manifest) == {}

    # No bundle source any more: the fetched bundle is the only way this can deploy.
    corpus.set_pillar(pname, {"env": "prod"})
    try:
        proc = corpus.push(src, pname)
    finally:
        corpus.set_pillar(pname, {"env": "prod", "bundle": {"source": spaths["bundles"]}})
    assert proc.returncode == 0, proc.stderr
    assert "fetching bundle" not in proc.stderr
    assert version_of(pname) == "3"
    record = corpus.history(pname)[-1]
    staging_record = [r for r in corpus.history(sname) if r["commit"] == commit][-1]
    assert tree_digest(os.path.join(ppaths["releases"], record["id"])) == tree_digest(
        os.path.join(spaths["releases"], staging_record["id"]))


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.paths.append(self.path)
        super().do_GET()


@pytest.fixture
def served_archives(staged):
    """The staging target's archives/ over HTTP; yields (base URL, requested paths)."""
    handler = functools.partial(CountingHandler, directory=staged["spaths"]["archives"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:{}".format(server.server_address[1]), server.paths
    server.shutdown()
    server.server_close()


def test_final_over_http_fetches_only_the_objects_it_lacks(corpus, staged, served_archives):
    sname, pname, src = staged["staging"], staged["prod"], staged["src"]
    spaths, ppaths = staged["spaths"], staged["ppaths"]
    base, requested = served_archives
    commit = corpus.commit(src, {"VERSION": "4\n", "public/new.txt": "new in v4\n"}, "v4")
    fed = corpus.push(src, sname)
    assert fed.returncode == 0, fed.stderr
    manifest = json.load(open(os.path.join(spaths["bundles"], commit + ".json")))
    lacking = mc_bundle.missing_objects(ppaths["bundles"], manifest)
    assert 0 < len(lacking) < manifest["objects"]

    corpus.set_pillar(pname, {"env": "prod", "bundle": {"source": base + "/bundles/"}})
    try:
        proc = corpus.push(src, pname)
    finally:
        corpus.set_pillar(pname, {"env": "prod", "bundle": {"source": spaths["bundles"]}})
    assert proc.returncode == 0, proc.stderr
    assert "-----> fetching bundle of {} from {}/bundles/".format(commit[:12], base) in proc.stderr
    assert "       fetched {} of {} objects".format(len(lacking), manifest["objects"]) in proc.stderr
    objects = sorted(p for p in requested if p.startswith("/objects/"))
    assert objects == sorted("/objects/{}/{}".format(sha[:2], sha) for sha in lacking)
    assert [p for p in requested if not p.startswith("/objects/")] == ["/bundles/{}.json".format(commit)]
    assert version_of(pname) == "4"
    record = corpus.history(pname)[-1]
    staging_record = [r for r in corpus.history(sname) if r["commit"] == commit][-1]
    assert tree_digest(os.path.join(ppaths["releases"], record["id"])) == tree_digest(
        os.path.join(spaths["releases"], staging_record["id"]))
