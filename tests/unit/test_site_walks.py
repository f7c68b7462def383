"""Site walks over real HTTP servers on loopback, through the API in process: a site's
targets read from the inventory (fronts by domain, backends by address and the
``health_path``/``app_port`` variables), every target asked at once, one dead backend
reported with the others OK, the walk kept as a job and listed in the site's history."""

import contextlib
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.health import walk_runs, walks
from mc_project.inventory import db, fleet
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.fleet_rules import NotFound
from mc_project.inventory.models import ComputeNode, Environment, Tenant
from support.api_answers import error, login
from support.http_backends import backends
from support.ports import LOOPBACK, free_port

NAMES = ["shop", "blog", "wiki"]


def address_of(number):
    return "127.0.0.{}".format(number + 1)


@pytest.fixture
def site(ctl, monkeypatch):
    """Node front1 (its proxy: a real server answering any Host) with environments shop,
    blog and wiki of tenant alpha, each a real backend on its own loopback address
    answering /healthz; wiki's is dead. Environment other is tenant beta's."""
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    with contextlib.ExitStack() as stack:
        servers = stack.enter_context(backends(["front"], path="/healthz"))
        for number, name in enumerate(NAMES[:2], 1):
            servers.update(stack.enter_context(backends([name], path="/healthz", host=address_of(number))))
        dead_port = free_port(host=address_of(3))
        with db.session(ctl.url) as sess:
            alpha, beta = Tenant(name="alpha"), Tenant(name="beta")
            sess.add_all([alpha, beta])
            sess.flush()
            node = ComputeNode(name="front1", address=LOOPBACK, http_port=servers["front"].server_port, slots=10,
                               tenant_id=alpha.id)
            sess.add(node)
            sess.flush()
            for number, name in enumerate(NAMES + ["other"], 1):
                tenant = beta if name == "other" else alpha
                sess.add(Environment(name=name, tenant_id=tenant.id, node_id=node.id, ip=address_of(number),
                                     status="active", domains=["{}.apps.test".format(name)]))
            sess.flush()
            for name in NAMES:
                host_id = sess.scalar(select(Host.id).where(Host.name == name))
                port = dead_port if name == "wiki" else servers[name].server_port
                fleet.set_variables(sess, None, "ada", alpha.id, "host", host_id, name,
                                    {"health_path": "/healthz", "app_port": port})
        yield ctl, servers
    db.dispose()


def test_a_sites_targets_come_from_the_inventory(site):
    ctl, servers = site
    with db.session(ctl.url) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
        by_node = walks.site_targets(sess, "front1", [alpha])
        by_domain = walks.site_targets(sess, "shop.apps.test", [alpha])
        parent = walks.site_targets(sess, "apps.test", [alpha])
        with pytest.raises(NotFound, match="No site nothing.test"):
            walks.site_targets(sess, "nothing.test", [alpha])
        with pytest.raises(CorpusError, match="is not a site"):
            walks.site_targets(sess, "not a site", [alpha])
    assert by_node["kind"] == "node" and len(by_node["targets"]) == 6  # other is beta's
    assert by_domain["targets"] == [
        {"kind": "front", "name": "shop.apps.test", "environment": "shop", "host_header": "shop.apps.test",
         "url": "http://127.0.0.1:{}/healthz".format(servers["front"].server_port)},
        {"kind": "backend", "name": "shop", "environment": "shop", "host_header": None,
         "url": "http://127.0.0.2:{}/healthz".format(servers["shop"].server_port)}]
    assert len(parent["targets"]) == 6


def test_a_walk_reports_the_dead_backend_and_the_others_ok(site):
    ctl, _servers = site
    with db.session(ctl.url) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
    walked = walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)
    assert walked["status"] == "failed" and walked["targets"] == 6 and walked["failed"] == 1
    failed = [result for result in walked["results"] if not result["ok"]]
    assert [(result["kind"], result["name"]) for result in failed] == [("backend", "wiki")]
    assert "1 of 6 targets failed: backend wiki (" in walked["message"]
    assert all(result["status"] == 200 for result in walked["results"] if result["ok"])
    seen = []
    walk_runs.FAILURE_HOOKS.append(lambda ctl, record: seen.append(record["id"]))
    try:
        again = walk_runs.walk_now(ctl, "shop.apps.test", [alpha])
        assert again["status"] == "ok" and again["message"] == "All 2 targets answered."
        third = walk_runs.walk_now(ctl, "wiki.apps.test", [alpha], timeout=2)
    finally:
        walk_runs.FAILURE_HOOKS.clear()
    assert seen == [third["id"]]


def test_the_api_starts_a_walk_shows_it_and_lists_the_sites_walks(site, opts):
    ctl, _servers = site
    url = ctl.url
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "val", "val-pw", "alpha", "viewer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with TestClient(create_app(opts, ctl=ctl)) as client:
        alice, val, bob = (login(client, user) for user in ("alice", "val", "bob"))
        started = client.put("/v1/sites/front1/walks", json={"timeout": 2}, headers=alice)
        assert started.status_code == 202, started.text
        walk_id = started.json()["walk_id"]
        assert started.headers["Location"] == "/v1/sites/front1/walks/{}".format(walk_id)
        deadline = time.monotonic() + 30
        while True:
            found = client.get("/v1/sites/front1/walks/{}".format(walk_id), headers=val).json()
            if found["status"] not in ("pending", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found["status"] == "failed" and found["failed"] == 1
        assert {result["name"] for result in found["results"] if result["ok"]} == {
            "shop", "blog", "shop.apps.test", "blog.apps.test", "wiki.apps.test"}
        history = client.get("/v1/sites/front1/walks", headers=val).json()
        assert history["total"] == 1 and history["items"][0]["id"] == walk_id
        assert "results" not in history["items"][0]
        # Another tenant's walk is not there; a viewer may not start one; bad names are 400.
        assert "No walk" in error(client.get("/v1/sites/front1/walks/{}".format(walk_id), headers=bob), 404)
        assert "No site front1" in error(client.put("/v1/sites/front1/walks", headers=val), 404)
        assert "is not a site" in error(client.put("/v1/sites/-bad-/walks", headers=alice), 400)
        assert client.get("/v1/jobs/{}".format(walk_id), headers=val).json()["kind"] == "site_walk"
