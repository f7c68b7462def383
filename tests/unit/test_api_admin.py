"""The REST API's admin routes in process (FastAPI's TestClient) over an SQLite
inventory: linking and unlinking compute nodes (``operations`` replaced), tenants and
their members."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller import operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import AuditEntry, ComputeNode, Environment, Job, Membership, Tenant, User
from support.api_answers import error, login


@pytest.fixture
def client(opts, ctl, monkeypatch):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    app = create_app(opts, ctl=ctl)
    url = ctl.url
    users.add_local_user(url, "root", "root-pw", "default", "admin")
    users.add_local_user(url, "ada", "ada-pw", "alpha", "admin")
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with db.session(url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.add(ComputeNode(name="node2", address="192.0.2.2", slots=10, tenant_id=alpha.id))
        sess.flush()
        sess.add(Environment(name="a1", env_type="dev", status="active", tenant_id=alpha.id, node_id=node.id,
                             minion_id="env-a1"))
    with TestClient(app) as test_client:
        yield test_client




def audited(ctl, action):
    with db.session(ctl.url) as sess:
        entries = sess.scalars(select(AuditEntry).where(AuditEntry.action == action)
                               .order_by(AuditEntry.id)).all()
        return [(entry.user, entry.status, entry.target, entry.tenant, entry.result) for entry in entries]


def tenant_of_node(ctl, name):
    with db.session(ctl.url) as sess:
        return sess.scalar(select(Tenant.name).join(ComputeNode, ComputeNode.tenant_id == Tenant.id)
                           .where(ComputeNode.name == name))


@pytest.fixture
def linked(ctl, monkeypatch):
    """``link_node`` replaced by a job whose step records the node as the runners do
    (in tenant ``default``); the arguments it was called with."""
    calls = []

    def add_node(ctx):
        if not ctx.clipboard["relink"]:
            with db.session(ctl.url) as sess:
                sess.add(ComputeNode(name=ctx.clipboard["name"], address=ctx.clipboard["host"],
                                     slots=ctx.clipboard["slots"]))

    def fake_link(job_ctl, host, **kwargs):
        calls.append((host, kwargs))
        name = kwargs.get("name") or host
        with db.session(ctl.url) as sess:
            relink = sess.scalar(select(ComputeNode.id).where(ComputeNode.name == name)) is not None
        clipboard = {"host": host, "name": name, "slots": kwargs.get("slots", 10), "relink": relink}
        registry = {"ssh:connect": (lambda ctx: None, None), "inventory:add_node": (add_node, None)}
        return job_ctl.jobs(registry=registry).submit("link_node", clipboard["name"], list(registry), clipboard)

    monkeypatch.setattr(operations, "link_node", fake_link)
    return calls


def test_an_admin_links_a_node_into_their_tenant(client, ctl, linked):
    ada = login(client, "ada")
    answer = client.post("/v1/nodes", json={"host": "192.0.2.9", "name": "node9", "slots": 4, "port": 2222},
                         headers=ada)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["location"] == answer.json()["location"] == "/v1/jobs/{}".format(job_id)
    text = client.get("/v1/jobs/{}/events".format(job_id), headers=ada).text
    assert '"status": "success"' in text.split("event: end")[1]
    assert linked == [("192.0.2.9", {"user": "root", "port": 2222, "name": "node9", "slots": 4, "subnet": None,
                                     "http_port": 80})]
    assert tenant_of_node(ctl, "node9") == "alpha"
    assert client.get("/v1/nodes/node9", headers=ada).json()["tenant"] == "alpha"
    error(client.get("/v1/nodes/node9", headers=login(client, "bob")), 404)
    with db.session(ctl.url) as sess:
        job = sess.scalars(select(Job).where(Job.id == job_id)).one()
        assert (job.kind, job.tenant_id) == ("link_node", sess.scalar(
            select(Tenant.id).where(Tenant.name == "alpha")))
    assert audited(ctl, "POST /v1/nodes") == [("ada", 202, "node9", "alpha", "job {} started".format(job_id))]


def test_a_node_goes_to_the_tenant_asked_for(client, ctl, linked):
    bob = login(client, "bob")
    answer = client.post("/v1/nodes", json={"host": "nodeb.example.com", "tenant": "beta"}, headers=bob)
    assert answer.status_code == 202, answer.text
    client.get("/v1/jobs/{}/events".format(answer.json()["job_id"]), headers=bob)
    assert tenant_of_node(ctl, "nodeb.example.com") == "beta"
    # A node linked again (its name found on the machine) keeps its tenant.
    answer = client.post("/v1/nodes", json={"host": "node1"}, headers=bob)
    client.get("/v1/jobs/{}/events".format(answer.json()["job_id"]), headers=bob)
    assert tenant_of_node(ctl, "node1") == "alpha"


def test_linking_is_for_admins_of_the_tenant(client, ctl, linked):
    alice, bob = login(client, "alice"), login(client, "bob")
    assert "admin of no tenant" in error(client.post("/v1/nodes", json={"host": "192.0.2.9"}, headers=alice), 403)
    assert "admin is needed" in error(
        client.post("/v1/nodes", json={"host": "192.0.2.9", "tenant": "alpha"}, headers=alice), 403)
    assert error(client.post("/v1/nodes", json={"host": "192.0.2.9", "tenant": "alpha"}, headers=bob),
                 404) == "No tenant named alpha."
    # Another tenant's node is unknown, even by name.
    assert error(client.post("/v1/nodes", json={"host": "192.0.2.1", "name": "node1"}, headers=bob),
                 404) == "No compute node named node1."
    error(client.post("/v1/nodes", json={"host": "192.0.2.9", "name": "bad name!"}, headers=bob), 422)
    error(client.post("/v1/nodes", json={"host": "192.0.2.9", "port": 0}, headers=bob), 422)
    error(client.post("/v1/nodes", json={"host": "192.0.2.9", "colour": "red"}, headers=bob), 422)
    error(client.post("/v1/nodes", json={}, headers=bob), 422)
    assert linked == []
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Job.id)) is None
    assert [entry[:2] for entry in audited(ctl, "POST /v1/nodes")][:3] == [("alice", 403), ("alice", 403),
                                                                         ("bob", 404)]


def test_a_refusal_before_the_job_is_one_sentence(client, ctl, monkeypatch):
    def refuse(job_ctl, host, **kwargs):
        raise CorpusError("Subnet 10.0.0.0/24 overlaps node node1's 10.0.0.0/16.")

    monkeypatch.setattr(operations, "link_node", refuse)
    message = error(client.post("/v1/nodes", json={"host": "192.0.2.9", "subnet": "10.0.0.0/24"},
                                headers=login(client, "ada")), 400)
    assert message == "Subnet 10.0.0.0/24 overlaps node node1's 10.0.0.0/16."


def test_unlinking(client, ctl, monkeypatch):
    calls = []

    def fake_unlink(ctl_, name, force=False):
        calls.append((name, force))
        if name == "node1" and not force:
            raise CorpusError("Node node1 still holds 1 environment(s) (a1); unlink it with force=True to "
                              "leave them without a node.")
        return {"name": name, "minion_id": name, "minion_stopped": True,
                "orphaned": ["a1"] if name == "node1" else []}

    monkeypatch.setattr(operations, "unlink_node", fake_unlink)
    ada, alice, bob = login(client, "ada"), login(client, "alice"), login(client, "bob")
    assert "admin is needed" in error(client.delete("/v1/nodes/node2", headers=alice), 403)
    assert error(client.delete("/v1/nodes/node2", headers=bob), 404) == "No compute node named node2."
    assert error(client.delete("/v1/nodes/nowhere", headers=ada), 404) == "No compute node named nowhere."
    assert calls == []
    assert "still holds 1 environment(s) (a1)" in error(client.delete("/v1/nodes/node1", headers=ada), 409)
    answer = client.delete("/v1/nodes/node1?force=true", headers=ada)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"name": "node1", "minion_id": "node1", "minion_stopped": True, "orphaned": ["a1"]}
    answer = client.delete("/v1/nodes/node2", headers=ada)
    assert answer.status_code == 200 and answer.json()["orphaned"] == []
    assert calls == [("node1", False), ("node1", True), ("node2", False)]
    entries = audited(ctl, "DELETE /v1/nodes/node1")
    assert entries[0][:4] == ("ada", 409, "node1", "alpha") and "still holds" in entries[0][4]
    assert entries[1] == ("ada", 200, "node1", "alpha", "node node1 unlinked; orphaned: a1")
    assert audited(ctl, "DELETE /v1/nodes/node2")[-1] == ("ada", 200, "node2", "alpha", "node node2 unlinked")
    assert [entry[:2] for entry in audited(ctl, "DELETE /v1/nodes/node2")] == [("alice", 403), ("bob", 404),
                                                                             ("ada", 200)]


def test_tenants_list_and_create(client, ctl):
    root, ada, alice = login(client, "root"), login(client, "ada"), login(client, "alice")
    listed = client.get("/v1/tenants", headers=alice).json()
    assert listed == {"items": [{"name": "alpha", "role": "deployer"}], "total": 1, "limit": 50, "offset": 0}
    assert client.get("/v1/tenants/alpha", headers=alice).json() == {"name": "alpha", "role": "deployer"}
    error(client.get("/v1/tenants/beta", headers=alice), 404)
    answer = client.post("/v1/tenants", json={"name": "gamma"}, headers=root)
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "/v1/tenants/gamma"
    assert answer.json() == {"name": "gamma", "role": "admin", "location": "/v1/tenants/gamma"}
    assert {"name": "gamma", "role": "admin"} in client.get("/v1/tenants", headers=root).json()["items"]
    assert client.get("/v1/tenants/gamma", headers=root).json()["role"] == "admin"
    assert "already exists" in error(client.post("/v1/tenants", json={"name": "gamma"}, headers=root), 409)
    assert "already exists" in error(client.post("/v1/tenants", json={"name": "alpha"}, headers=root), 409)
    assert "admin of tenant default" in error(client.post("/v1/tenants", json={"name": "delta"}, headers=ada), 403)
    error(client.post("/v1/tenants", json={"name": "Bad Name"}, headers=root), 422)
    error(client.post("/v1/tenants", json={}, headers=root), 422)
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Tenant.id).where(Tenant.name == "delta")) is None
    entries = audited(ctl, "POST /v1/tenants")
    assert entries[0] == ("root", 201, "gamma", "gamma", "tenant gamma created; root is its admin")
    assert [entry[1] for entry in entries] == [201, 409, 409, 403, 422, 422]


def test_members(client, ctl):
    ada, alice, bob = login(client, "ada"), login(client, "alice"), login(client, "bob")
    listed = client.get("/v1/tenants/alpha/members", headers=ada).json()
    assert listed["items"] == [{"name": "ada", "source": "local", "role": "admin"},
                               {"name": "alice", "source": "local", "role": "deployer"}]
    assert "admin is needed" in error(client.get("/v1/tenants/alpha/members", headers=alice), 403)
    assert error(client.get("/v1/tenants/alpha/members", headers=bob), 404) == "No tenant named alpha."
    error(client.get("/v1/tenants/nope/members", headers=ada), 404)

    answer = client.put("/v1/tenants/alpha/members/bob", json={"role": "viewer"}, headers=ada)
    assert answer.status_code == 200 and answer.json() == {"name": "bob", "source": "local", "role": "viewer"}
    assert {"name": "alpha", "role": "viewer"} in client.get("/v1/tenants", headers=bob).json()["items"]
    answer = client.put("/v1/tenants/alpha/members/alice", json={"role": "admin"}, headers=ada)
    assert answer.json()["role"] == "admin"
    error(client.put("/v1/tenants/alpha/members/bob", json={"role": "owner"}, headers=ada), 422)
    error(client.put("/v1/tenants/alpha/members/bob", json={}, headers=ada), 422)
    assert error(client.put("/v1/tenants/alpha/members/nobody", json={"role": "viewer"}, headers=ada),
                 404) == "No user named nobody."
    # bob is a viewer of alpha now: 403 there; beta is not ada's: 404.
    assert "admin is needed" in error(
        client.put("/v1/tenants/alpha/members/bob", json={"role": "admin"}, headers=bob), 403)
    error(client.put("/v1/tenants/beta/members/ada", json={"role": "admin"}, headers=ada), 404)

    assert client.delete("/v1/tenants/alpha/members/bob", headers=ada).status_code == 204
    assert "not a member" in error(client.delete("/v1/tenants/alpha/members/bob", headers=ada), 404)
    assert client.delete("/v1/tenants/alpha/members/alice", headers=ada).status_code == 204
    assert "last admin" in error(client.delete("/v1/tenants/alpha/members/ada", headers=ada), 409)
    assert "last admin" in error(
        client.put("/v1/tenants/alpha/members/ada", json={"role": "viewer"}, headers=ada), 409)
    with db.session(ctl.url) as sess:
        held = sess.execute(select(User.name, Membership.role).join(Membership, Membership.user_id == User.id)
                            .join(Tenant, Tenant.id == Membership.tenant_id).where(Tenant.name == "alpha")).all()
    assert held == [("ada", "admin")]
    assert audited(ctl, "PUT /v1/tenants/alpha/members/bob")[0] == ("ada", 200, "bob", "alpha",
                                                                     "bob added to alpha as viewer")
    assert audited(ctl, "PUT /v1/tenants/alpha/members/alice")[0] == (
        "ada", 200, "alice", "alpha", "alice is admin in alpha (was deployer)")
    assert [entry[1] for entry in audited(ctl, "DELETE /v1/tenants/alpha/members/bob")] == [204, 404]
    assert audited(ctl, "DELETE /v1/tenants/alpha/members/bob")[0][4] == "bob removed from alpha"


def test_members_come_from_ldap_when_it_is_configured(client, ctl):
    ada = login(client, "ada")
    client.app.state.settings = dict(client.app.state.settings, ldap={"url": "ldap://ldap.invalid"})
    assert "LDAP" in error(client.put("/v1/tenants/alpha/members/bob", json={"role": "viewer"}, headers=ada), 409)
    assert "LDAP" in error(client.delete("/v1/tenants/alpha/members/alice", headers=ada), 409)
    assert client.get("/v1/tenants/alpha/members", headers=ada).json()["total"] == 2
    assert audited(ctl, "DELETE /v1/tenants/alpha/members/alice")[0][:4] == ("ada", 409, "alice", "alpha")
