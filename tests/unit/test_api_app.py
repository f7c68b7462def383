"""The REST API in process (FastAPI's TestClient) over an SQLite inventory: local
users, tokens, tenants, environments, jobs, projects with the Salt calls replaced.
The LDAP logins, the running server and the live events are in tests/integration/api."""

import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mc_project.api import auth, users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.inventory import db
from mc_project.inventory.models import (
    ApiToken,
    AuditEntry,
    ComputeNode,
    Environment,
    Job,
    JobStep,
    Project,
    Tenant,
)
from support.api_answers import error, login


@pytest.fixture
def client(opts, ctl):
    app = create_app(opts, ctl=ctl)
    url = ctl.url
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "victor", "victor-pw", "alpha", "viewer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with db.session(url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        beta = sess.scalar(select(Tenant).where(Tenant.name == "beta"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        for number, (name, tenant) in enumerate((("a1", alpha), ("a2", alpha), ("b1", beta)), 1):
            env = Environment(name=name, env_type="dev", status="active", tenant_id=tenant.id, node_id=node.id,
                              ip="10.0.0.{}".format(number), ssh_nat_port=40000 + ord(name[0]),
                              domains=["{}.corpus.test".format(name)], minion_id="env-" + name, project=name)
            env.projects.append(Project(name=name))
            sess.add(env)
    with TestClient(app) as test_client:
        yield test_client




def test_health_needs_no_token(client):
    assert client.get("/v1/health").json() == {"status": "ok"}
    assert client.get("/v1/openapi.json").status_code == 200


def test_login_whoami_and_bad_password(client):
    answer = client.post("/v1/login", json={"username": "alice", "password": "alice-pw"})
    body = answer.json()
    assert body["user"] == {"name": "alice", "tenants": [{"name": "alpha", "role": "deployer"}]}
    assert body["token"].startswith("corpus_") and body["expires_at"]
    headers = {"Authorization": "Bearer " + body["token"]}
    assert client.get("/v1/whoami", headers=headers).json() == body["user"]
    assert "Wrong user name or password" in error(
        client.post("/v1/login", json={"username": "alice", "password": "nope"}), 401)
    error(client.post("/v1/login", json={"username": "nobody", "password": "x"}), 401)
    error(client.post("/v1/login", json={"username": "alice"}), 422)
    error(client.get("/v1/whoami"), 401)
    error(client.get("/v1/whoami", headers={"Authorization": "Bearer corpus_forged"}), 401)


def test_tokens_are_stored_hashed_expire_and_revoke(client, ctl):
    headers = login(client, "alice")
    made = client.post("/v1/tokens", json={"name": "ci", "expires_in_days": 7}, headers=headers)
    assert made.status_code == 201 and made.headers["location"] == "/v1/tokens/{}".format(made.json()["id"])
    script = {"Authorization": "Bearer " + made.json()["token"]}
    assert client.get("/v1/whoami", headers=script).json()["name"] == "alice"
    with db.session(ctl.url) as sess:
        hashes = sess.scalars(select(ApiToken.token_hash)).all()
    assert made.json()["token"] not in hashes and auth.hash_token(made.json()["token"]) in hashes
    listed = client.get("/v1/tokens", headers=headers).json()
    assert listed["total"] == 2 and "token" not in listed["items"][0]
    assert client.delete("/v1/tokens/{}".format(made.json()["id"]), headers=headers).status_code == 204
    error(client.get("/v1/whoami", headers=script), 401)
    error(client.delete("/v1/tokens/{}".format(made.json()["id"]), headers=login(client, "bob")), 404)
    with db.session(ctl.url) as sess:
        sess.execute(update(ApiToken).values(expires=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)))
    assert "expired" in error(client.get("/v1/whoami", headers=headers), 401)
    fresh = login(client, "alice")
    assert client.post("/v1/logout", headers=fresh).status_code == 204
    error(client.get("/v1/whoami", headers=fresh), 401)


def test_tenants_see_only_their_environments(client):
    alice, bob = login(client, "alice"), login(client, "bob")
    listed = client.get("/v1/environments", headers=alice).json()
    assert [row["name"] for row in listed["items"]] == ["a1", "a2"] and listed["total"] == 2
    assert listed["limit"] == 50 and listed["offset"] == 0
    row = client.get("/v1/environments/a1", headers=alice).json()
    assert set(row) == {"name", "uuid", "type", "status", "project", "projects", "node", "ip", "ssh", "domains",
                        "disk_size_mb", "tenant", "image"}
    assert row["tenant"] == "alpha" and row["projects"] == ["a1"] and row["ssh"] == "192.0.2.1:40097"
    assert error(client.get("/v1/environments/b1", headers=alice), 404) == "No environment named b1."
    assert error(client.get("/v1/environments/zz", headers=alice), 404) == "No environment named zz."
    assert [row["name"] for row in client.get("/v1/environments", headers=bob).json()["items"]] == ["b1"]
    page = client.get("/v1/environments?limit=1&offset=1", headers=alice).json()
    assert [row["name"] for row in page["items"]] == ["a2"] and page["total"] == 2
    assert client.get("/v1/environments?tenant=beta", headers=alice).json()["total"] == 0
    assert client.get("/v1/environments?type=prod", headers=alice).json()["total"] == 0
    assert client.get("/v1/environments?node=node1&status=active", headers=alice).json()["total"] == 2
    error(client.get("/v1/environments?limit=501", headers=alice), 422)
    error(client.get("/v1/environments?type=weird", headers=alice), 422)
    assert [n["name"] for n in client.get("/v1/nodes", headers=alice).json()["items"]] == ["node1"]
    assert client.get("/v1/nodes", headers=bob).json()["total"] == 0
    error(client.get("/v1/nodes/node1", headers=bob), 404)


def test_roles(client):
    viewer, alice = login(client, "victor"), login(client, "alice")
    assert "deployer is needed" in error(client.delete("/v1/environments/a1", headers=viewer), 403)
    error(client.get("/v1/environments/a1/credentials", headers=viewer), 403)
    error(client.post("/v1/environments", json={"name": "new", "type": "dev"}, headers=viewer), 403)
    error(client.post("/v1/environments", json={"name": "new", "type": "dev", "tenant": "beta"}, headers=alice),
          404)
    error(client.get("/v1/audit", headers=alice), 403)
    error(client.delete("/v1/environments/b1", headers=alice), 404)


def test_create_refusals_are_one_sentence_and_make_no_job(client, ctl):
    alice = login(client, "alice")
    assert "already exists" in error(client.post("/v1/environments", json={"name": "a1"}, headers=alice), 409)
    assert "not valid" in error(client.post("/v1/environments", json={"name": "Bad_Name"}, headers=alice), 400)
    error(client.post("/v1/environments", json={"name": "x", "colour": "red"}, headers=alice), 422)
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Job.id)) is None


def test_a_job_is_started_in_the_background_and_watched(client, ctl, monkeypatch):
    """POST answers 202 with the job's location at once; the job runs with the
    controller's own machinery; its events end the stream."""
    from mc_project.controller import operations

    fired = []
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: fired.append(tag))

    def fake_destroy(job_ctl, name, progress=None):
        registry = {"env:retire": (lambda ctx: ctx.log("retired " + name), None)}
        return job_ctl.jobs(registry=registry).submit("destroy_env", name, ["env:retire"], {"env_name": name})

    monkeypatch.setattr(operations, "destroy_env", fake_destroy)
    alice = login(client, "alice")
    answer = client.delete("/v1/environments/a1", headers=alice)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["location"] == answer.json()["location"] == "/v1/jobs/{}".format(job_id)
    with client.stream("GET", "/v1/jobs/{}/events".format(job_id), headers=alice) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    assert "event: step" in text and '"status": "success"' in text and text.rstrip().split("\n")[-2] == "event: end"
    job = client.get("/v1/jobs/{}".format(job_id), headers=alice).json()
    assert job["status"] == "success" and job["kind"] == "destroy_env" and job["steps"]["total"] == 1
    steps = client.get("/v1/jobs/{}/steps".format(job_id), headers=alice).json()["items"]
    assert steps[0]["log"] == "retired a1"
    assert client.get("/v1/jobs?kind=destroy_env", headers=alice).json()["total"] == 1
    error(client.get("/v1/jobs/{}".format(job_id), headers=login(client, "bob")), 404)
    assert client.get("/v1/jobs", headers=login(client, "bob")).json()["total"] == 0
    assert "corpus/job/{}/success".format(job_id) in fired
    with db.session(ctl.url) as sess:
        entry = sess.scalars(select(AuditEntry).where(AuditEntry.action == "DELETE /v1/environments/a1")).one()
    assert (entry.user, entry.status, entry.tenant, entry.result) == ("alice", 202, "alpha",
                                                                     "job {} started".format(job_id))


def test_undo_of_a_running_job_is_a_conflict(client, ctl):
    with db.session(ctl.url) as sess:
        job = Job(kind="destroy_env", target="a2", status="failed", clipboard={}, error="failed at step 1/1",
                  steps=[JobStep(index=1, name="env:retire", status="undone", log="", undo_data={})])
        sess.add(job)
        sess.flush()
        job_id = job.id
    alice = login(client, "alice")
    assert "undone" in error(client.post("/v1/jobs/{}/undo".format(job_id), headers=alice), 409)
    error(client.post("/v1/jobs/{}/resume".format(job_id), headers=login(client, "victor")), 403)
    text = client.get("/v1/jobs/{}/events".format(job_id), headers=alice).text
    assert text.startswith("event: step") and "event: end" in text


class Minion:
    """A stand-in for an environment's minion: its status, kept releases, rollbacks and log."""

    def __init__(self, mode="cooking", live="r1"):
        self.mode, self.live, self.calls = mode, live, []

    def __call__(self, ctl, minion, fun, *args, **kwargs):
        self.calls.append((minion, fun, args))
        if fun == "mc_project.rollback":
            self.live = args[1]
            return {"id": "rollback-1", "kind": "rollback", "to": args[1], "result": True}
        if fun == "mc_project.status":
            return {"mode": self.mode, "live": True, "release": None if self.mode == "editable" else self.live}
        if fun == "mc_project.releases":
            return [{"id": rid, "status": status, "live": rid == self.live}
                    for rid, status in (("r0", "success"), ("rx", "failed"), ("r1", "success"))]
        return {"cmd.run": "one\ntwo"}[fun]


def answering(monkeypatch, minion):
    monkeypatch.setattr(Controller, "call", lambda ctl, *args, **kwargs: minion(ctl, *args, **kwargs))


def test_projects_ask_the_environments_minion(client, monkeypatch):
    minion = Minion()
    answering(monkeypatch, minion)
    alice, viewer = login(client, "alice"), login(client, "victor")
    listed = client.get("/v1/environments/a1/projects", headers=alice).json()["items"]
    assert listed == [{"name": "a1", "remote": "ssh://root@a1.corpus.test:40097/srv/projects/a1/git/project.git",
                       "pillar_remote": "ssh://root@a1.corpus.test:40097/srv/projects/a1/git/pillar.git"}]
    assert client.get("/v1/environments/a1/projects/a1", headers=viewer).json()["status"]["release"] == "r1"
    assert len(client.get("/v1/environments/a1/projects/a1/releases", headers=alice).json()["items"]) == 3
    assert client.get("/v1/environments/a1/projects/a1/logs?lines=2", headers=alice).json() == {
        "lines": ["one", "two"]}
    error(client.get("/v1/environments/a1/projects/zz", headers=alice), 404)
    error(client.get("/v1/environments/b1/projects/b1", headers=alice), 404)


def test_a_rollback_is_a_job_whose_undo_puts_the_release_back(client, ctl, monkeypatch):
    minion = Minion()
    fired = []
    answering(monkeypatch, minion)
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: fired.append(tag))
    alice = login(client, "alice")
    answer = client.post("/v1/environments/a1/projects/a1/rollback", json={}, headers=alice)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["location"] == "/v1/jobs/{}".format(job_id)
    text = client.get("/v1/jobs/{}/events".format(job_id), headers=alice).text
    assert '"name": "project:rollback", "status": "success"' in text and "event: end" in text
    job = client.get("/v1/jobs/{}".format(job_id), headers=alice).json()
    assert (job["kind"], job["target"], job["status"]) == ("rollback", "a1", "success")
    assert job["result"] == {"env": "a1", "project": "a1", "release": "r0", "previous": "r1"}
    assert ("env-a1", "mc_project.rollback", ("a1", "r0")) in minion.calls and minion.live == "r0"
    log = client.get("/v1/jobs/{}/steps".format(job_id), headers=alice).json()["items"][0]["log"]
    assert "a1 rolled back from r1 to r0" in log
    error(client.get("/v1/jobs/{}".format(job_id), headers=login(client, "bob")), 404)  # alpha's job
    undo = client.post("/v1/jobs/{}/undo".format(job_id), headers=alice)
    assert undo.status_code == 202, undo.text
    client.get("/v1/jobs/{}/events".format(job_id), headers=alice)
    assert client.get("/v1/jobs/{}".format(job_id), headers=alice).json()["status"] == "undone"
    assert minion.live == "r1" and minion.calls[-1] == ("env-a1", "mc_project.rollback", ("a1", "r1"))
    assert "corpus/job/{}/success".format(job_id) in fired
    with db.session(ctl.url) as sess:
        entry = sess.scalars(select(AuditEntry).where(
            AuditEntry.action == "POST /v1/environments/a1/projects/a1/rollback")).one()
    assert (entry.user, entry.status, entry.target, entry.tenant) == ("alice", 202, "a1/a1", "alpha")


@pytest.mark.parametrize("mode, body, who, status, words", [
    ("cooking", {"release": "nope"}, "alice", 400, "Release nope is not a kept good release of a1; kept: r0, r1."),
    ("cooking", {"release": "rx"}, "alice", 400, "Release rx is not a kept good release"),
    ("cooking", {"release": "r1"}, "alice", 409, "Release r1 of a1 is already live."),
    ("editable", {}, "alice", 400, "a1 runs in editable mode, which keeps no releases"),
    ("cooking", {}, "victor", 403, ""),
    ("cooking", {}, "bob", 404, "No environment named a1."),
])
def test_rollback_refusals_are_one_sentence_and_make_no_job(client, ctl, monkeypatch, mode, body, who, status,
                                                             words):
    minion = Minion(mode)
    answering(monkeypatch, minion)
    assert words in error(client.post("/v1/environments/a1/projects/a1/rollback", json=body,
                                      headers=login(client, who)), status)
    assert not [call for call in minion.calls if call[1] == "mc_project.rollback"]
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Job.id)) is None


def test_rollback_with_no_older_release_is_refused(client, ctl, monkeypatch):
    minion = Minion(live="r0")
    answering(monkeypatch, minion)
    assert "No kept release of a1 is older than the live one (r0)." in error(
        client.post("/v1/environments/a1/projects/a1/rollback", headers=login(client, "alice")), 400)


def test_a_salt_master_down_is_503(client, monkeypatch):
    from salt.exceptions import SaltClientError

    def down(self, *args, **kwargs):
        raise SaltClientError("Salt request timed out. The master is not responding.")

    monkeypatch.setattr(Controller, "call", down)
    assert "Salt master cannot be reached" in error(
        client.get("/v1/environments/a1/projects/a1", headers=login(client, "alice")), 503)


def test_the_audit_is_for_admins(client):
    bob = login(client, "bob")
    client.post("/v1/login", json={"username": "bob", "password": "wrong"})
    listed = client.get("/v1/audit", headers=bob).json()
    assert listed["total"] == 0  # logins belong to no tenant; bob administers beta only
    client.delete("/v1/environments/b1", headers={"Authorization": "Bearer nothing"})
    assert client.get("/v1/audit", headers=bob).json()["total"] == 0


def test_a_new_environment_belongs_to_the_callers_tenant(client, ctl, monkeypatch):
    """The runners' steps make the row in the default tenant; the API moves it to the
    caller's as soon as ``env:register`` is done, and the job is the tenant's too."""
    from mc_project.controller import operations

    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)

    def register(ctx):
        with db.session(ctl.url) as sess:
            sess.add(Environment(name=ctx.clipboard["env_name"], env_type="dev", status="creating"))

    def fake_init(job_ctl, name, env_type="dev", **kwargs):
        registry = {"env:register": (register, None), "env:activate": (lambda ctx: None, None)}
        return job_ctl.jobs(registry=registry).submit("init_env", name, list(registry), {"env_name": name})

    monkeypatch.setattr(operations, "init_env", fake_init)
    alice = login(client, "alice")
    answer = client.post("/v1/environments", json={"name": "a9", "type": "dev"}, headers=alice)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    text = client.get("/v1/jobs/{}/events".format(job_id), headers=alice).text
    assert '"status": "success"' in text.split("event: end")[1]
    assert client.get("/v1/environments/a9", headers=alice).json()["tenant"] == "alpha"
    error(client.get("/v1/environments/a9", headers=login(client, "bob")), 404)
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Job.tenant_id).where(Job.id == job_id)) == sess.scalar(
            select(Tenant.id).where(Tenant.name == "alpha"))
