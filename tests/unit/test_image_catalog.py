"""Container images on a mocked node: the catalog (default:1 is the golden image), builds as
jobs (versions, logs, a failing state leaving the previous version current and no image),
refusals in one sentence before any job, the image a clone copies and records, removal
refused while used; the REST routes and the corpus command over the real API."""

import base64
import json

import pytest
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller import images, operations
from mc_project.controller.runtime import Controller
from mc_project.controller.steps import lxc as lxc_steps
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job, Tenant
from support.api_answers import error, login, ok
from support.api_server import served
from support.api_stub import run_corpus
from support.wait import wait_for


class FakeNode:
    """``mc_lxc`` as a node answers it: a state tree with ``broken.sls`` fails."""

    def __init__(self):
        self.calls = []
        self.images = set()

    def __call__(self, ctl, minion, fun, *args, **kwargs):
        self.calls.append((minion, fun, kwargs))
        if fun == "mc_lxc.build_image":
            ref = "{}:{}".format(kwargs["name"], kwargs["version"])
            states = kwargs.get("states") or {}
            if "broken.sls" in states:
                return {"result": False, "message": "State(s) failed: broken: Source file salt://nothing not found",
                        "log": "failed broken: Source file salt://nothing not found\n"}
            self.images.add(ref)
            return {"result": True, "digest": "sha256:" + "ab" * 32, "size_mb": 700, "seconds": 1.5,
                    "log": "image {} from golden ({} file(s) of states)\nchanged motd: File updated\n".format(
                        ref, len(states))}
        if fun == "mc_lxc.remove_image":
            ref = "{}:{}".format(kwargs["name"], kwargs["version"])
            found = ref in self.images
            self.images.discard(ref)
            return {"removed": found}
        if fun == "mc_lxc.clone":
            return {"name": kwargs["name"], "changed": True, "spare": False}
        raise AssertionError("unexpected call " + fun)

    def of(self, fun):
        return [kwargs for _minion, name, kwargs in self.calls if name == fun]


@pytest.fixture
def node(ctl, monkeypatch):
    fake = FakeNode()
    monkeypatch.setattr(Controller, "call", lambda self, minion, fun, *args, **kwargs: fake(
        self, minion, fun, *args, **kwargs))
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    db.init(ctl.url)
    with db.session(ctl.url) as sess:
        for name in ("node1", "node2"):
            sess.add(ComputeNode(name=name, address="192.0.2.1" if name == "node1" else "192.0.2.2", minion_id=name,
                                 subnet="10.91.0.0/24" if name == "node1" else "10.92.0.0/24",
                                 lxc_path="/var/lib/lxc", prefix="/srv/corpus", status="active", slots=4))
    yield fake
    db.dispose()


@pytest.fixture
def states(tmp_path):
    tree = tmp_path / "states"
    tree.mkdir()
    (tree / "motd.sls").write_text("/etc/motd:\n  file.managed:\n    - contents: hello\n    - mode: '0640'\n")
    (tree / "files").mkdir()
    (tree / "files" / "hello.txt").write_text("hello\n")
    return str(tree)


def broken_tree(tmp_path):
    tree = tmp_path / "broken"
    tree.mkdir()
    (tree / "broken.sls").write_text("/etc/x:\n  file.managed:\n    - source: salt://nothing\n")
    return str(tree)


def catalog(ctl):
    return {row["ref"]: row for row in images.list_images(ctl.url)}


def jobs_count(ctl):
    with db.session(ctl.url) as sess:
        return len(sess.scalars(select(Job.id)).all())


def add_env(ctl, name, image, tenant=None):
    with db.session(ctl.url) as sess:
        node_id = sess.scalar(select(ComputeNode.id).where(ComputeNode.name == "node1"))
        tenant_id = sess.scalar(select(Tenant.id).where(Tenant.name == tenant)) if tenant else None
        sess.add(Environment(name=name, node_id=node_id, container=name, minion_id=name + ".corpus.test",
                             status="active", image=image, tenant_id=tenant_id))


def test_the_catalog_starts_with_the_golden_image_as_default_1(ctl, node):
    rows = catalog(ctl)
    assert list(rows) == ["default:1"]
    default = rows["default:1"]
    assert default["golden"] and default["status"] == "ready" and default["current"]
    assert default["nodes"] == ["node1", "node2"] and default["states"] == "built-in"


def test_builds_make_versions_with_their_logs_the_newest_current(ctl, node, states):
    first = images.build_image(ctl, "web", states=states, node="node1", who="ada")
    assert first["result"] and first["image"] == "web:1", first
    sent = node.of("mc_lxc.build_image")[0]
    assert sent["name"] == "web" and sent["version"] == 1 and sent["lxc_path"] == "/var/lib/lxc"
    assert base64.b64decode(sent["states"]["files/hello.txt"]["content"]) == b"hello\n"
    assert sent["golden"]["wheelhouse"] == "/srv/corpus/wheelhouse"
    second = images.build_image(ctl, "web", states=states, who="ada")  # every active node
    assert second["image"] == "web:2"
    rows = catalog(ctl)
    assert rows["web:1"]["nodes"] == ["node1"] and not rows["web:1"]["current"]
    assert rows["web:2"]["nodes"] == ["node1", "node2"] and rows["web:2"]["current"]
    assert rows["web:2"]["digest"].startswith("sha256:") and rows["web:2"]["size_mb"] == 700
    assert rows["web:2"]["who"] == "ada" and rows["web:2"]["states"] == states
    assert rows["web:2"]["states_digest"].startswith("sha256:")
    log = images.get_image(ctl.url, "web:2", with_log=True)["log"]
    assert "== node node1 ==" in log and "== node node2 ==" in log and "changed motd" in log


def test_a_failing_state_fails_the_job_keeps_the_log_and_the_previous_version(ctl, node, states, tmp_path):
    images.build_image(ctl, "web", states=states, node="node1")
    failed = images.build_image(ctl, "web", states=broken_tree(tmp_path), node="node1")
    assert not failed["result"] and failed["status"] == "failed"
    assert "broken: Source file salt://nothing not found" in failed["comment"]
    found = images.get_image(ctl.url, "web:2", with_log=True)
    assert found["status"] == "failed" and "salt://nothing" in found["log"] and "salt://nothing" in found["message"]
    assert images.get_image(ctl.url, "web")["ref"] == "web:1"  # still current
    removed = node.of("mc_lxc.remove_image")
    assert [(call["name"], call["version"]) for call in removed] == [("web", 2)]  # no half image
    assert images.build_image(ctl, "web", states=states, node="node1")["image"] == "web:3"  # never reused


@pytest.mark.parametrize("args, words", [
    (("Web",), "is not an image name"),
    (("web", "relative/dir"), "absolute path"),
    (("web", "/nonexistent/states"), "no directory /nonexistent/states"),
    (("web", None, "node9"), "No compute node named node9"),
])
def test_bad_builds_are_refused_in_one_sentence_before_any_job(ctl, node, args, words):
    before = jobs_count(ctl)
    with pytest.raises(CorpusError) as raised:
        images.build_image(ctl, *args)
    assert words in str(raised.value) and str(raised.value).endswith(".") and "\n" not in str(raised.value)
    assert jobs_count(ctl) == before and node.calls == []


def test_a_tree_without_sls_is_refused(ctl, node, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("x")
    with pytest.raises(CorpusError, match="no .sls file"):
        images.build_image(ctl, "web", str(tmp_path / "empty"))


def test_an_environment_names_its_image_and_the_clone_copies_and_records_it(ctl, node, states):
    images.build_image(ctl, "web", states=states, node="node1")
    request = operations._init_request(ctl, "shop", "dev", image="web")
    assert request["image"] == "web:1" and request["host"] == "node1"  # the node holding it
    assert operations._init_request(ctl, "blog", "dev")["image"] == "default:1"
    for bad, words in (("nope", "No ready image named nope"), ("web:7", "No ready image web:7"),
                       ("bad name", "is not an image")):
        with pytest.raises(CorpusError, match=words):
            operations._init_request(ctl, "shop", "dev", image=bad)
    with pytest.raises(CorpusError, match="Image web:1 is not on node node2"):
        operations._init_request(ctl, "shop", "dev", host="node2", image="web")

    add_env(ctl, "shop", None)

    class Ctx:
        def __init__(self, clipboard):
            self.clipboard, self.undo_data, self.lines = clipboard, {}, []

        def log(self, line):
            self.lines.append(line)

    node_info = {"name": "node1", "minion_id": "node1", "lxc_path": "/var/lib/lxc", "prefix": "/srv/corpus"}
    ctx = Ctx({"env_name": "shop", "node": node_info, "disk_size_mb": 2048, "image": "web:1"})
    lxc_steps.clone_container(ctl, ctx)
    cloned = node.of("mc_lxc.clone")[-1]
    assert cloned["image"] == {"name": "web", "version": 1, "golden": False}
    assert ctx.clipboard["image_ref"] == ctx.undo_data["image_ref"] == "web:1"
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Environment.image).where(Environment.name == "shop")) == "web:1"
    # The default image is the golden one: the call as it always was, no image in it.
    lxc_steps.clone_container(ctl, Ctx({"env_name": "blog", "node": node_info, "disk_size_mb": 2048}))
    assert "image" not in node.of("mc_lxc.clone")[-1]


def test_removal_is_refused_while_used_or_current_default(ctl, node, states):
    images.build_image(ctl, "web", states=states, node="node1")
    add_env(ctl, "shop", "web:1")
    with pytest.raises(CorpusError, match=r"^Image web:1 is used by environment\(s\) shop: destroy"):
        images.remove_image(ctl, "web:1")
    with pytest.raises(CorpusError, match="golden image and cannot be removed"):
        images.remove_image(ctl, "default:1")
    images.build_image(ctl, "default", node="node1")  # the golden image as it is, stamped default:2
    with pytest.raises(CorpusError, match="is the default image's current version"):
        images.remove_image(ctl, "default:2")
    assert node.of("mc_lxc.remove_image") == []
    with db.session(ctl.url) as sess:
        sess.delete(sess.scalar(select(Environment).where(Environment.name == "shop")))
    assert images.remove_image(ctl, "web") == {"removed": [{"ref": "web:1", "nodes": ["node1"]}]}
    assert "web:1" not in catalog(ctl) and node.images == {"default:2"}
    assert images.get_image(ctl.url, "web:1")["status"] == "removed"  # its record and log stay
    with pytest.raises(CorpusError, match="No image web"):
        images.remove_image(ctl, "web")


# --------------------------------------------------------------------------- the API and the CLI

@pytest.fixture
def client(api_client, node):
    return api_client({"ada": ("alpha", "admin"), "val": ("alpha", "viewer")})


def wait_job(client, head, job_id):
    return wait_for(lambda: (lambda state: state if state["status"] not in ("pending", "running") else None)(
        ok(client.get("/v1/jobs/{}".format(job_id), headers=head))), timeout=30, what="the job")


def test_the_routes(client, ctl, states, tmp_path):
    ada, val = login(client, "ada"), login(client, "val")
    listed = ok(client.get("/v1/images", headers=val))
    assert listed["total"] == 1 and listed["items"][0]["ref"] == "default:1"
    assert "admin" in error(client.post("/v1/images", json={"name": "web", "states": states}, headers=val), 403)
    error(client.post("/v1/images", json={"name": "Web"}, headers=ada), 400)
    error(client.post("/v1/images", json={"name": "web", "node": "node9"}, headers=ada), 404)
    error(client.post("/v1/images", json={"name": "web", "size": 3}, headers=ada), 422)
    started = ok(client.post("/v1/images", json={"name": "web", "states": states, "node": "node1"}, headers=ada), 202)
    assert wait_job(client, ada, started["job_id"])["status"] == "success"
    one = ok(client.get("/v1/images/web", headers=val))
    assert one["ref"] == "web:1" and one["status"] == "ready" and one["who"] == "ada" and one["nodes"] == ["node1"]
    assert "changed motd" in ok(client.get("/v1/images/web:1/log", headers=val))["log"]
    failed = ok(client.post("/v1/images", json={"name": "web", "states": broken_tree(tmp_path)}, headers=ada), 202)
    job = wait_job(client, ada, failed["job_id"])
    assert job["status"] == "failed" and "salt://nothing" in job["error"]
    assert ok(client.get("/v1/images/web:2/log", headers=val))["status"] == "failed"
    error(client.get("/v1/images/nope", headers=val), 404)
    add_env(ctl, "shop", "web:1", tenant="alpha")
    assert ok(client.get("/v1/environments/shop", headers=ada))["image"] == "web:1"
    assert "used by environment(s) shop" in error(client.delete("/v1/images/web:1", headers=ada), 409)
    error(client.delete("/v1/images/web:1", headers=val), 403)


def test_the_corpus_command(ctl, node, states, opts, tmp_path):
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "ada", "ada-pw", "default", "admin")
    images.build_image(ctl, "web", states=states, node="node1")
    add_env(ctl, "shop", "web:1")
    with served(app) as url:
        home = tmp_path / "home"
        home.mkdir()
        assert run_corpus(["--url", url, "login", "--user", "ada", "--password-stdin"], home,
                          stdin="ada-pw\n").returncode == 0
        listed = run_corpus(["images", "list"], home)
        assert listed.returncode == 0, listed.stderr
        header = listed.stdout.splitlines()[0]
        for column in ("NAME", "VERSION", "STATUS", "BUILT", "NODES", "ENVIRONMENTS"):
            assert column in header
        assert "ready (current)" in listed.stdout and "shop" in listed.stdout
        as_json = json.loads(run_corpus(["images", "list", "--json"], home).stdout)
        assert {row["ref"] for row in as_json["items"]} == {"default:1", "web:1"}
        log = run_corpus(["images", "log", "web"], home)
        assert log.returncode == 0 and "changed motd" in log.stdout
        refused = run_corpus(["images", "rm", "web:1"], home)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == ("corpus: Image web:1 is used by environment(s) shop: destroy or "
                                          "redeploy them first.")
        bad = run_corpus(["images", "build", "web", "--states", "relative"], home)
        assert bad.returncode == 2 and "absolute path" in bad.stderr
        envs = run_corpus(["envs"], home)
        assert "IMAGE" in envs.stdout.splitlines()[0] and "web:1" in envs.stdout
