"""Site walks over real HTTP servers on loopback, through the API in process: a site's
targets read from the inventory (fronts by domain, backends by address and the
``health_path``/``app_port`` variables), every target asked at once, one dead backend
reported with the others OK, the walk kept as a job and listed in the site's history;
a failed walk and its recovery told once each to a real webhook, none during a silence."""

import contextlib
import datetime
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.health import definitions, silences, walk_runs, walks
from mc_project.inventory import db, fleet
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.fleet_rules import NotFound
from mc_project.inventory.health_models import Notification
from mc_project.inventory.models import ComputeNode, Environment, Tenant
from support.api_answers import error, login
from support.http_backends import backends
from support.ports import LOOPBACK, free_port
from support.webhook import WebhookSink

NAMES = ["shop", "blog", "wiki"]
T_LATER = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)


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
    again = walk_runs.walk_now(ctl, "shop.apps.test", [alpha])
    assert again["status"] == "ok" and again["message"] == "All 2 targets answered."
    third = walk_runs.walk_now(ctl, "wiki.apps.test", [alpha], timeout=2)
    assert third["status"] == "failed" and third["failed"] == 1


def _set_port(ctl, tenant_id, name, port):
    with db.session(ctl.url) as sess:
        host_id = sess.scalar(select(Host.id).where(Host.name == name))
        fleet.set_variables(sess, None, "ada", tenant_id, "host", host_id, name, {"app_port": port})


def _notifications(ctl):
    with db.session(ctl.url) as sess:
        return [(found.handler_name, found.check_name, found.host_name, found.previous, found.state, found.repeat,
                 found.status) for found in sess.scalars(select(Notification).order_by(Notification.id))]


def test_a_failed_walk_and_its_recovery_are_told_once_and_silenced_on_the_hosts(site):
    ctl, _servers = site
    with db.session(ctl.url) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
        beta = sess.scalar(select(Tenant.id).where(Tenant.name == "beta"))
        wiki_host = sess.scalar(select(Host.id).where(Host.name == "wiki"))
    with WebhookSink() as sink, WebhookSink() as other_sink:
        with db.session(ctl.url) as sess:
            definitions.create_handler(sess, alpha, "ops", "webhook", sink.url("/hooks/alpha"))
            definitions.create_handler(sess, beta, "beta-ops", "webhook", other_sink.url("/hooks/beta"))
        failed = walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)
        [(path, body)] = sink.posts
        assert path == "/hooks/alpha"
        assert body["text"].startswith("CRITICAL: site walk {} of front1 (was PENDING). 1 of 6 targets failed: "
                                       "backend wiki (".format(failed["id"]))
        walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)  # failed again: no one is told
        assert len(sink.posts) == 1
        with backends(["wiki"], path="/healthz", host=address_of(3)) as wiki:
            _set_port(ctl, alpha, "wiki", wiki["wiki"].server_port)
            passed = walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)
            walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)  # still OK: no one is told
        assert passed["status"] == "ok" and len(sink.posts) == 2
        assert sink.posts[1][1]["text"] == "OK: site walk {} of front1 (was CRITICAL). All 6 targets answered.".format(
            passed["id"])
        # A silence on wiki's host: its failure and recovery are recorded as suppressed, not sent.
        with db.session(ctl.url) as sess:
            silences.create(sess, alpha, "ada", "wiki's disk is replaced", T_LATER, host_id=wiki_host)
        _set_port(ctl, alpha, "wiki", free_port(host=address_of(3)))
        assert walk_runs.walk_now(ctl, "front1", [alpha], timeout=2)["status"] == "failed"
        assert len(sink.posts) == 2 and other_sink.posts == []
    assert _notifications(ctl) == [
        ("ops", "site walk", "front1", "PENDING", "CRITICAL", False, "sent"),
        ("ops", "site walk", "front1", "CRITICAL", "OK", False, "sent"),
        ("ops", "site walk", "front1", "OK", "CRITICAL", False, "suppressed")]


def test_a_handler_with_a_repeat_hears_a_failing_site_again_once_it_is_due(site):
    ctl, _servers = site
    with db.session(ctl.url) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
    with WebhookSink() as sink:
        with db.session(ctl.url) as sess:
            definitions.create_handler(sess, alpha, "pager", "webhook", sink.url("/pager"), repeat=3600)
        walk_runs.walk_now(ctl, "wiki.apps.test", [alpha], timeout=2)
        walk_runs.walk_now(ctl, "wiki.apps.test", [alpha], timeout=2)
        assert len(sink.posts) == 1
        with db.session(ctl.url) as sess:  # told two hours ago
            for found in sess.scalars(select(Notification)):
                found.at = found.at - datetime.timedelta(hours=2)
        walk_runs.walk_now(ctl, "wiki.apps.test", [alpha], timeout=2)
        assert len(sink.posts) == 2 and sink.posts[1][1]["text"].startswith("CRITICAL (still): site walk ")


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
