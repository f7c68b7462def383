"""The inventory's REST routes in process (FastAPI's TestClient) over an SQLite inventory:
CRUD of regions, cells, groups and hosts, variables resolved with their source,
secrets readable only by deployers and never in logs, exports or the change log,
search, bulk import all or nothing, and tenant isolation on every route."""

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.inventory import db
from mc_project.inventory.fleet_models import ChangeRecord
from mc_project.inventory.models import ComputeNode, Environment, Secret, Tenant
from support.api_answers import error, login

SECRET = "s3cr3t-Inventory-Value"


@pytest.fixture
def client(opts, ctl, monkeypatch):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    app = create_app(opts, ctl=ctl)
    url = ctl.url
    users.add_local_user(url, "ada", "ada-pw", "alpha", "admin")
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "val", "val-pw", "alpha", "viewer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with db.session(url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        sess.add(Environment(name="a1", env_type="dev", status="active", tenant_id=alpha.id, node_id=node.id,
                             minion_id="env-a1", ssh_nat_port=40001))
    with TestClient(app) as test_client:
        yield test_client
    db.dispose()


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("ada", "alice", "val", "bob")}


def ok(answer, status=200):
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def filled(client, heads):
    """Region eu/r1, groups web > frontend, machine web1 with variables at each level."""
    h = heads["alice"]
    region = ok(client.post("/v1/regions", json={"name": "eu"}, headers=h), 201)
    cell = ok(client.post("/v1/cells", json={"name": "r1", "region": "eu"}, headers=h), 201)
    ok(client.post("/v1/groups", json={"name": "frontend"}, headers=h), 201)
    web = ok(client.post("/v1/groups", json={"name": "web", "children": ["frontend"]}, headers=h), 201)
    host = ok(client.post("/v1/hosts", json={"name": "web1", "address": "192.0.2.5", "region": "eu", "cell": "r1",
                                             "labels": ["ssd"], "groups": ["frontend"]}, headers=h), 201)
    ok(client.put("/v1/tenants/alpha/variables", json={"variables": {"ntp": "pool", "hardware": {"disk": "hdd"},
                                                                     "dns": ["1.1.1.1"]}}, headers=h))
    ok(client.put("/v1/regions/{}/variables".format(region["id"]), json={"variables": {"dns": ["10.0.0.1"]}},
                  headers=h))
    ok(client.put("/v1/cells/{}/variables".format(cell["id"]), json={"variables": {"rack": 7}}, headers=h))
    ok(client.put("/v1/groups/{}/variables".format(web["id"]), json={"variables": {"tier": "web"},
                                                                     "secrets": {"db_password": SECRET}}, headers=h))
    ok(client.patch("/v1/hosts/{}/variables".format(host["id"]), json={"variables": {"hardware": {"disk": "ssd"}}},
                    headers=h))
    return {"region": region, "cell": cell, "web": web, "host": host}


def test_resolved_variables_name_their_level_and_secrets_are_masked(client, heads, caplog):
    caplog.set_level(logging.DEBUG)
    made = filled(client, heads)
    path = "/v1/hosts/{}/variables?resolved=true".format(made["host"]["id"])
    answer = ok(client.get(path, headers=heads["val"]))
    assert answer["variables"] == {"ntp": "pool", "hardware": {"disk": "ssd"}, "dns": ["10.0.0.1"], "rack": 7,
                                   "tier": "web", "db_password": "********"}
    assert answer["provenance"]["hardware"] == {"level": "host", "name": "web1"}
    assert answer["provenance"]["dns"] == {"level": "region", "name": "eu"}
    assert answer["provenance"]["ntp"] == {"level": "tenant", "name": "alpha"}
    assert answer["provenance"]["tier"] == {"level": "group", "name": "web"}
    assert answer["provenance"]["db_password"] == {"level": "group", "name": "web", "secret": True}
    # A viewer may not read the secret; a deployer may.
    assert "deployer is needed" in error(client.get(path + "&reveal_secrets=true", headers=heads["val"]), 403)
    revealed = ok(client.get(path + "&reveal_secrets=true", headers=heads["alice"]))
    assert revealed["variables"]["db_password"] == SECRET
    own = ok(client.get("/v1/groups/{}/variables".format(made["web"]["id"]), headers=heads["val"]))
    assert own["variables"] == {"tier": "web", "db_password": "********"}
    # Stored encrypted; never in the export, the change log, the roster or any log line.
    with db.session(client.app.state.url) as sess:
        stored = sess.scalars(select(Secret.value).where(Secret.name == "db_password")).one()
        changes = [str(row.before) + str(row.after) for row in sess.scalars(select(ChangeRecord))]
    assert stored.startswith("fernet:") and SECRET not in stored
    assert changes and not any(SECRET in text for text in changes)
    assert SECRET not in client.get("/v1/ansible-inventory", headers=heads["alice"]).text
    assert SECRET not in client.get("/v1/groups/{}/changes".format(made["web"]["id"]), headers=heads["alice"]).text
    assert SECRET not in caplog.text


def test_crud_search_and_change_log(client, heads):
    made = filled(client, heads)
    h = heads["alice"]
    hosts = ok(client.get("/v1/hosts", headers=h))
    assert [item["name"] for item in hosts["items"]] == ["a1", "node1", "web1"] and hosts["total"] == 3
    env_host = hosts["items"][0]
    assert (env_host["kind"], env_host["address"], env_host["ssh_port"], env_host["ssh_user"]) == (
        "environment", "192.0.2.1", 40001, "root")
    found = ok(client.get("/v1/hosts", params={"vars": "hardware.disk:ssd"}, headers=h))
    assert [item["name"] for item in found["items"]] == ["web1"]
    found = ok(client.get("/v1/hosts", params={"vars": "hardware.disk:hdd", "limit": 1}, headers=h))
    assert [item["name"] for item in found["items"]] == ["a1"] and found["total"] == 2
    assert ok(client.get("/v1/hosts", params={"group": "web"}, headers=h))["total"] == 1
    assert ok(client.get("/v1/hosts", params={"label": "ssd", "region": "eu"}, headers=h))["total"] == 1
    assert "KEY" in error(client.get("/v1/hosts", params={"vars": "nocolon"}, headers=h), 400)
    # Backed hosts take part in groups; their name is their environment's.
    ok(client.patch("/v1/hosts/{}".format(env_host["id"]), json={"groups": ["web"], "labels": ["dev"]}, headers=h))
    assert "takes its name" in error(client.patch("/v1/hosts/{}".format(env_host["id"]), json={"name": "x"},
                                                  headers=h), 400)
    assert "goes when" in error(client.delete("/v1/hosts/{}".format(env_host["id"]), headers=h), 409)
    assert "still holds 1 host" in error(client.delete("/v1/regions/{}".format(made["region"]["id"]), headers=h),
                                         409)
    assert "already exists" in error(client.post("/v1/hosts", json={"name": "web1"}, headers=h), 409)
    assert "already exists" in error(client.post("/v1/hosts", json={"name": "a1"}, headers=h), 409)
    host_path = "/v1/hosts/{}".format(made["host"]["id"])
    ok(client.patch(host_path, json={"address": "192.0.2.6"}, headers=h))
    changes = ok(client.get(host_path + "/changes", headers=heads["val"]))
    assert [row["action"] for row in changes["items"]] == ["update", "update", "create"]
    assert changes["items"][0]["user"] == "alice"
    assert changes["items"][0]["before"]["address"] == "192.0.2.5"
    assert changes["items"][0]["after"]["address"] == "192.0.2.6"
    ok(client.delete(host_path, headers=h), 204)
    error(client.get(host_path, headers=h), 404)
    ok(client.delete("/v1/regions/{}".format(made["region"]["id"]), headers=h), 204)
    assert ok(client.get("/v1/regions", headers=h))["total"] == 0
    assert ok(client.get("/v1/cells", headers=h))["total"] == 0


def test_bad_input_is_one_sentence_and_changes_nothing(client, heads):
    made = filled(client, heads)
    h = heads["alice"]
    frontend = ok(client.get("/v1/groups", params={"name": "frontend"}, headers=h))["items"][0]
    message = error(client.patch("/v1/groups/{}".format(frontend["id"]), json={"children": ["web"]}, headers=h),
                    400)
    assert message == "Group frontend cannot contain group web: that would make a cycle (frontend > web > frontend)."
    assert ok(client.get("/v1/groups/{}".format(frontend["id"]), headers=h))["children"] == []
    ok(client.post("/v1/hosts", json={"name": "rack1"}, headers=h), 201)
    blade = ok(client.post("/v1/hosts", json={"name": "blade1", "parent": "rack1"}, headers=h), 201)
    rack = ok(client.get("/v1/hosts", params={"name": "rack1"}, headers=h))["items"][0]
    assert "cycle" in error(client.patch("/v1/hosts/{}".format(rack["id"]), json={"parent": "blade1"}, headers=h),
                            400)
    assert ok(client.get("/v1/hosts/{}".format(rack["id"]), headers=h))["parent"] is None
    assert blade["parent"] == "rack1"
    assert "Region name" in error(client.post("/v1/regions", json={"name": "eu west"}, headers=h), 400)
    assert "Variable name" in error(client.patch("/v1/hosts/{}/variables".format(made["host"]["id"]),
                                                 json={"variables": {"bad-key": 1}}, headers=h), 400)
    assert "No region named mars" in error(client.post("/v1/hosts", json={"name": "x1", "region": "mars"},
                                                       headers=h), 404)
    assert ok(client.get("/v1/hosts", params={"name": "x1"}, headers=h))["total"] == 0
    error(client.get("/v1/levels/1/variables", headers=h), 404)


def test_another_tenant_sees_nothing_and_a_viewer_changes_nothing(client, heads):
    made = filled(client, heads)
    bob, val = heads["bob"], heads["val"]
    for path in ("/v1/hosts/{}".format(made["host"]["id"]), "/v1/regions/{}".format(made["region"]["id"]),
                 "/v1/cells/{}".format(made["cell"]["id"]), "/v1/groups/{}".format(made["web"]["id"])):
        error(client.get(path, headers=bob), 404)
        error(client.get(path + "/variables", headers=bob), 404)
        error(client.get(path + "/changes", headers=bob), 404)
        error(client.patch(path + "/variables", json={"variables": {"a": 1}}, headers=bob), 404)
        error(client.delete(path, headers=bob), 404)
        error(client.delete(path, headers=val), 403)
        error(client.patch(path + "/variables", json={"variables": {"a": 1}}, headers=val), 403)
    error(client.get("/v1/hosts/{}/variables?resolved=true".format(made["host"]["id"]), headers=bob), 404)
    error(client.get("/v1/tenants/alpha/variables", headers=bob), 404)
    error(client.post("/v1/hosts", json={"name": "b1", "tenant": "alpha"}, headers=bob), 404)
    error(client.post("/v1/hosts", json={"name": "v1"}, headers=val), 403)
    for path in ("/v1/hosts", "/v1/regions", "/v1/cells", "/v1/groups"):
        assert ok(client.get(path, headers=bob))["total"] == 0
    assert ok(client.get("/v1/ansible-inventory", headers=bob)) == {"_meta": {"hostvars": {}}, "all": {"children": []}}
    error(client.get("/v1/ansible-inventory", params={"tenant": "alpha"}, headers=bob), 404)
    assert ok(client.get("/v1/salt-roster", headers=bob)) == {}
    error(client.get("/v1/hosts"), 401)


def test_ansible_inventory_and_roster(client, heads):
    filled(client, heads)
    h = heads["val"]
    inventory = ok(client.get("/v1/ansible-inventory", headers=h))
    hostvars = inventory["_meta"]["hostvars"]
    assert set(hostvars) == {"a1", "node1", "web1"}
    assert hostvars["web1"]["hardware"] == {"disk": "ssd"} and "db_password" not in hostvars["web1"]
    assert hostvars["web1"]["ansible_host"] == "192.0.2.5"
    assert (hostvars["a1"]["ansible_host"], hostvars["a1"]["ansible_port"]) == ("192.0.2.1", 40001)
    assert inventory["web"] == {"children": ["frontend"]}
    assert inventory["frontend"] == {"hosts": ["web1"]}
    assert inventory["region_eu"] == {"children": ["cell_eu_r1"]}
    assert inventory["cell_eu_r1"] == {"hosts": ["web1"]}
    assert inventory["label_ssd"] == {"hosts": ["web1"]}
    assert set(inventory["all"]["children"]) == {"web", "region_eu", "label_ssd", "ungrouped"}
    assert sorted(inventory["ungrouped"]["hosts"]) == ["a1", "node1"]
    # Only web1 runs no minion and has an address.
    assert ok(client.get("/v1/salt-roster", headers=h)) == {"web1": {"host": "192.0.2.5"}}


def test_import_is_all_or_nothing(client, heads):
    h = heads["alice"]
    document = "\n".join([
        "variables: {ntp: pool}",
        "regions:",
        "  - name: eu",
        "    cells: [r1, {name: r2, variables: {rack: 2}}]",
        "groups:",
        "  - {name: web, children: [frontend]}",
        "  - {name: frontend, variables: {tier: front}}",
        "hosts:",
        "  - {name: blade1, parent: rack1, region: eu, cell: r2, groups: [frontend], labels: [ssd],",
        "     secrets: {ipmi_password: " + SECRET + "}}",
        "  - {name: rack1, address: 192.0.2.9, variables: {hardware: {disk: ssd}}}",
    ])
    answer = ok(client.post("/v1/inventory/import", json={"format": "yaml", "content": document}, headers=h))
    assert answer == {"tenant": "alpha", "imported": {"regions": 1, "cells": 2, "groups": 2, "hosts": 2}}
    blade = ok(client.get("/v1/hosts", params={"name": "blade1"}, headers=h))["items"][0]
    assert (blade["parent"], blade["cell"], blade["groups"]) == ("rack1", "r2", ["frontend"])
    resolved = ok(client.get("/v1/hosts/{}/variables?resolved=true&reveal_secrets=true".format(blade["id"]),
                             headers=h))["variables"]
    assert resolved == {"ntp": "pool", "rack": 2, "tier": "front", "ipmi_password": SECRET}
    csv_text = ("name,address,labels,groups,var.hardware\n"
                "web7,192.0.2.7,ssd;fast,web,\"{\"\"disk\"\": \"\"nvme\"\"}\"\n"
                "web8,192.0.2.8,,nosuchgroup,\n")
    message = error(client.post("/v1/inventory/import", json={"format": "csv", "content": csv_text}, headers=h),
                    404)
    assert message == "Nothing was imported. Row 3 (web8): No group named nosuchgroup."
    assert ok(client.get("/v1/hosts", params={"name": "web7"}, headers=h))["total"] == 0
    answer = ok(client.post("/v1/inventory/import", json={"format": "csv", "content": csv_text.splitlines()[0]
                                                          + "\n" + csv_text.splitlines()[1] + "\n"}, headers=h))
    assert answer["imported"]["hosts"] == 1
    web7 = ok(client.get("/v1/hosts", params={"vars": "hardware.disk:nvme"}, headers=h))["items"]
    assert [(host["name"], host["labels"]) for host in web7] == [("web7", ["fast", "ssd"])]
    message = error(client.post("/v1/inventory/import", json={"format": "yaml", "content": "hosts: [{name: a b}]"},
                                headers=h), 400)
    assert message.startswith("Nothing was imported. hosts[0] (a b): Host name 'a b' is not valid")
    bad_cells = {"format": "yaml", "content": "regions: [{name: eu2, cells: 5}]"}
    assert error(client.post("/v1/inventory/import", json=bad_cells, headers=h), 400) == (
        "Nothing was imported. regions[0] (eu2): cells must be a list.")
    assert "not valid at line" in error(client.post("/v1/inventory/import", json={
        "format": "yaml", "content": "hosts: [\n"}, headers=h), 400)
    error(client.post("/v1/inventory/import", json={"format": "yaml", "content": "hosts: []"}, headers=heads["val"]),
          403)
