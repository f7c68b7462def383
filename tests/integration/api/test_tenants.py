"""Tenants and roles through a real corpus-api with LDAP users: another tenant's
objects are 404, a role too low is 403, every changing call is in the audit."""

from support.api_answers import error


def test_each_user_sees_only_their_tenants(http, login):
    alice, bob = login("alice"), login("bob")
    assert [row["name"] for row in http.get("/v1/environments", headers=alice).json()["items"]] == ["a1", "a2"]
    assert [row["name"] for row in http.get("/v1/environments", headers=bob).json()["items"]] == ["b1"]
    assert http.get("/v1/environments/a1", headers=alice).json()["tenant"] == "alpha"
    assert error(http.get("/v1/environments/a1", headers=bob), 404) == "No environment named a1."
    assert error(http.get("/v1/environments/b1", headers=alice), 404) == "No environment named b1."
    error(http.get("/v1/environments/b1/projects", headers=alice), 404)
    error(http.delete("/v1/environments/b1", headers=alice), 404)
    assert [node["name"] for node in http.get("/v1/nodes", headers=alice).json()["items"]] == ["node1"]
    error(http.get("/v1/nodes/node1", headers=bob), 404)


def test_roles(http, login):
    carol, alice = login("carol"), login("alice")
    assert http.get("/v1/environments/a1", headers=carol).status_code == 200
    assert "deployer is needed" in error(http.delete("/v1/environments/a1", headers=carol), 403)
    error(http.get("/v1/environments/a1/credentials", headers=carol), 403)
    error(http.post("/v1/environments/a1/resize", json={"size_mb": 4096, "grow": True}, headers=carol), 403)
    error(http.post("/v1/environments", json={"name": "c1"}, headers=carol), 403)
    error(http.get("/v1/audit", headers=alice), 403)
    # A deployer passes the role check; the refusal is then the operation's own, before any job.
    assert "above its 2048 MiB" in error(
        http.post("/v1/environments/a1/resize", json={"size_mb": 1024, "grow": True}, headers=alice), 400)


def test_changing_calls_are_audited_for_admins(http, login):
    bob = login("bob")
    refused = http.post("/v1/environments/b1/resize", json={"size_mb": 4096, "grow": False}, headers=bob)
    assert refused.status_code == 400
    entries = http.get("/v1/audit", headers=bob).json()["items"]
    entry = next(row for row in entries if row["action"] == "POST /v1/environments/b1/resize")
    assert entry["user"] == "bob" and entry["status"] == 400 and entry["tenant"] == "beta"
    assert entry["result"] == refused.json()["error"]["message"] and entry["at"]
    # alpha's calls are not beta's admin's business
    assert all(row["tenant"] == "beta" for row in entries)
