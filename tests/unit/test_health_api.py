"""The health routes in process (FastAPI's TestClient) over an SQLite inventory: check
definitions, states and history, a TTL pass, silences, handlers with a masked webhook,
notifications, refusals in one sentence, tenant isolation, and the web page's view."""

import re

import pytest

from mc_project.api.routers import checks as check_routes
from mc_project.health import results
from mc_project.inventory import db
from support.api_answers import error, login, ok


@pytest.fixture
def refreshed(monkeypatch):
    """The minions asked to read their pillar again (no Salt here)."""
    asked = []
    monkeypatch.setattr(check_routes, "refresh_pillars", lambda ctl, minions: asked.append(list(minions)))
    return asked


@pytest.fixture
def client(api_client, refreshed):
    return api_client({"alice": ("alpha", "deployer"), "val": ("alpha", "viewer"), "bob": ("beta", "admin")})


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("alice", "val", "bob")}


def test_checks_silences_and_handlers_through_the_api(client, heads, refreshed, ctl):
    h = heads["alice"]
    ok(client.post("/v1/groups", json={"name": "web"}, headers=h), 201)
    ok(client.post("/v1/hosts", json={"name": "web1", "minion_id": "m-web1", "groups": ["web"]}, headers=h), 201)
    made = ok(client.post("/v1/checks/definitions", json={
        "name": "http", "kind": "http", "group": "web", "params": {"url": "http://127.0.0.1/"}, "interval": 5,
        "retries": 2}, headers=h), 201)
    assert made["group"] == "web" and refreshed == [["m-web1"]]
    ok(client.post("/v1/checks/definitions", json={"name": "alive", "kind": "ttl", "host": "web1", "interval": 60},
                   headers=h), 201)
    assert [asked for asked in refreshed if asked] == [["m-web1"]]  # a TTL check runs on no minion

    for body, status, words in (
            ({"name": "x", "kind": "tcp", "host": "web1", "params": {"port": "80"}}, 400, "port"),
            ({"name": "http", "kind": "ttl", "host": "web1"}, 409, "exists"),
            ({"name": "x", "kind": "ttl", "host": "nope"}, 404, "No host"),
            ({"name": "x", "kind": "ping", "host": "web1"}, 422, None)):
        answer = client.post("/v1/checks/definitions", json=body, headers=h)
        if words:
            assert words in error(answer, status)
        else:
            assert answer.status_code == status
    assert client.post("/v1/checks/definitions", json={"name": "y", "kind": "ttl", "host": "web1"},
                       headers=heads["val"]).status_code == 403

    with db.session(ctl.url) as sess:
        results.expire_ttls(sess)
    [state] = ok(client.get("/v1/checks", headers=heads["val"]))["items"]
    assert state["check"] == "alive" and state["state"] == "PENDING"
    denied = client.put("/v1/checks/{}/pass".format(state["id"]), headers=heads["val"])
    assert denied.status_code == 403, denied.text
    passed = ok(client.put("/v1/checks/{}/pass".format(state["id"]), json={"output": "ready"}, headers=h))
    assert passed["state"] == "OK" and passed["output"] == "ready"
    history = ok(client.get("/v1/checks/{}/history".format(state["id"]), headers=h))["items"]
    assert [(entry["state"], entry["hard"]) for entry in history] == [("OK", True)]
    assert ok(client.get("/v1/checks", params={"state": "CRITICAL"}, headers=h))["total"] == 0
    assert client.get("/v1/checks/{}".format(state["id"]), headers=heads["bob"]).status_code == 404
    assert ok(client.get("/v1/checks", headers=heads["bob"]))["total"] == 0

    hook = ok(client.post("/v1/handlers", json={"name": "chat", "kind": "webhook", "group": "web",
                                                "target": "https://hooks.example/services/T0/B0/XYZ"}, headers=h), 201)
    assert hook["target"] == "https://hooks.example/…"
    assert "XYZ" not in client.get("/v1/handlers", headers=heads["val"]).text
    assert "mail address" in error(client.post("/v1/handlers", json={
        "name": "m", "kind": "mail", "target": "not an address"}, headers=h), 400)

    silence = ok(client.post("/v1/silences", json={"host": "web1", "why": "upgrade", "minutes": 30}, headers=h), 201)
    assert silence["who"] == "alice" and silence["host"] == "web1"
    assert "one of them" in error(client.post("/v1/silences", json={"host": "web1", "why": "x"}, headers=h), 400)
    assert "at least one" in error(client.post("/v1/silences", json={"why": "x", "minutes": 5}, headers=h), 400)
    assert "No check" in error(client.post("/v1/silences", json={"check": "nope", "why": "x", "minutes": 5},
                                           headers=h), 404)
    changed = ok(client.patch("/v1/silences/{}".format(silence["id"]), json={"why": "longer upgrade"}, headers=h))
    assert changed["why"] == "longer upgrade"
    assert ok(client.get("/v1/silences", headers=h))["total"] == 1
    ok(client.delete("/v1/silences/{}".format(silence["id"]), headers=h))
    assert ok(client.get("/v1/silences", headers=h))["total"] == 0
    assert ok(client.get("/v1/silences", params={"ended": "true"}, headers=h))["total"] == 1
    assert ok(client.get("/v1/notifications", headers=h))["total"] == 0

    ok(client.delete("/v1/checks/definitions/{}".format(made["id"]), headers=h))
    assert refreshed[-1] == ["m-web1"]


def test_the_web_page_shows_the_checks_by_state(client, heads, ctl):
    h = heads["alice"]
    ok(client.post("/v1/hosts", json={"name": "db1"}, headers=h), 201)
    ok(client.post("/v1/checks/definitions", json={"name": "backup", "kind": "ttl", "host": "db1", "interval": 60},
                   headers=h), 201)
    with db.session(ctl.url) as sess:
        results.expire_ttls(sess)
    form = client.get("/web/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    client.post("/web/login", data={"username": "val", "password": "val-pw", "csrf_token": token, "next": "/web/"})
    page = client.get("/web/health")
    assert page.status_code == 200 and "backup" in page.text and "db1" in page.text and "PENDING" in page.text
    assert 'href="/web/health"' in page.text
