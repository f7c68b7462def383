"""The three modes, end to end with real pushes.

* dev / editable: runs from ``project/``, ``current -> project``, no release, no bundle.
* staging / cooking: ``releases/<id>``, and a bundle (``.tar.gz`` + ``.json`` manifest with
  commit, pillar hash, build host, time, sha256) in ``archives/bundles``.
* prod / final: never runs ``build`` (nor ``post_build``); takes the bundle staging built
  (``bundle.source``, or fetched beforehand with ``mc_project.fetch_bundle``), so what runs
  is byte for byte the staging release; a tampered bundle is refused and nothing changes.
"""

import json
import os
import socket
import tarfile

import pytest

from helpers import (EXAMPLES, REPO_ROOT, Corpus, http_get, local_salt, ls_remote, project_state,
                     tree_digest)
from mc_project.project import bundle as mc_bundle
from mc_project.project import settings as mc_settings

PHASEFAIL = os.path.relpath(os.path.join(REPO_ROOT, "tests", "projects", "phasefail"), EXAMPLES)
ALL_PHASES = ["backup", "gather_variables", "pre_install", "configure", "build", "post_build",
              "bundle", "deploy", "post_deploy", "post_install"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("modes"), local_salt)
    yield c
    c.stop_all()


def version_of(name):
    status, body = http_get(mc_settings.default_port(name))
    assert status == 200, body
    return json.loads(body)["version"]


def phases_run(paths, commit):
    """Phases of ``commit`` that ran their SLS, in order (the phasefail trace)."""
    path = os.path.join(paths["logs"], "phasefail.trace")
    if not os.path.exists(path):
        return []
    return [line.split()[0] for line in open(path, encoding="utf-8")
            if line.split()[1:2] == [commit]]


def flip_byte(path, offset=None):
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size // 2 if offset is None else offset)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))


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

    archive = os.path.join(paths["bundles"], commit + ".tar.gz")
    manifest = json.load(open(os.path.join(paths["bundles"], commit + ".json")))
    assert sorted(os.listdir(paths["bundles"])) == [commit + ".json", commit + ".tar.gz"]
    assert manifest["commit"] == commit
    assert manifest["pillar_hash"] == record["pillar_hash"]
    assert manifest["build_host"] == socket.gethostname()
    assert manifest["built_at"] and manifest["release_id"] == record["id"]
    assert manifest["sha256"] == mc_bundle.sha256_of(archive)
    assert manifest["size"] == os.path.getsize(archive)
    # The bundle holds exactly the release.
    with tarfile.open(archive) as tar:
        names = {os.path.normpath(m.name) for m in tar.getmembers()} - {"."}
    assert names == set(tree_digest(release))


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


def test_final_refuses_a_tampered_bundle(corpus, staged):
    sname, pname, src = staged["staging"], staged["prod"], staged["src"]
    ppaths = staged["ppaths"]
    good = ls_remote(ppaths["project_git"])
    assert good, "the final test pushed first"
    commit = corpus.commit(src, {"VERSION": "2\n"}, "v2")
    fed = corpus.push(src, sname)
    assert fed.returncode == 0, fed.stderr
    flip_byte(os.path.join(staged["spaths"]["bundles"], commit + ".tar.gz"))

    before = project_state(ppaths)
    proc = corpus.push(src, pname)
    assert proc.returncode != 0
    assert "fails verification" in proc.stderr and "Traceback" not in proc.stderr
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
    manifest = res.local
    assert manifest["commit"] == commit
    assert manifest == json.load(open(os.path.join(spaths["bundles"], commit + ".json")))
    fetched = os.path.join(ppaths["bundles"], commit + ".tar.gz")
    assert mc_bundle.sha256_of(fetched) == manifest["sha256"]

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
