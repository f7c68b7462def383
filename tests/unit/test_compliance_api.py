"""The compliance routes in process (FastAPI's TestClient) over an SQLite inventory, with
Salt's answers faked: rules defined and refused in one sentence, a run as a job (202)
auditing (test=True) then enforcing, the state and history it leaves, a webhook told of
a new drift once, a waiver that shows the drift waived until it ends, and tenants apart."""

import datetime
import time

import pytest

from mc_project.controller.runtime import Controller
from support.api_answers import error, login, ok
from support.webhook import WebhookSink


class FakeSalt:
    """``state.high`` on the minions: the file rule's mode differs until an enforce fixes it."""

    def __init__(self):
        self.published = []
        self.fixed = False

    def answers_as_they_come(self, ctl, minions, fun, *args, timeout=300, **kwargs):
        self.published.append((list(minions), fun, kwargs["test"], sorted(kwargs["data"])))
        for minion in minions:
            ret = {}
            for state_id, body in kwargs["data"].items():
                drift = state_id.endswith("/2") and not self.fixed
                changes = {"mode": "0600"} if drift else {}
                result = None if drift and kwargs["test"] else True
                ret["file_|-{}_|-/etc/x_|-f".format(state_id)] = {
                    "result": result, "changes": changes, "comment": "mode 0644, not 0600" if drift else "",
                    "__sls__": body["__sls__"], "__run_num__": int(state_id[-1])}
            if not kwargs["test"]:
                self.fixed = True
            yield minion, {"ret": ret, "retcode": 0}


@pytest.fixture
def salt(monkeypatch):
    fake = FakeSalt()
    monkeypatch.setattr(Controller, "answers_as_they_come",
                        lambda self, *args, **kwargs: fake.answers_as_they_come(self, *args, **kwargs))
    return fake


@pytest.fixture
def client(api_client, salt):
    return api_client({"alice": ("alpha", "deployer"), "val": ("alpha", "viewer"), "bob": ("beta", "admin")})


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("alice", "val", "bob")}


def finished(client, head, answer):
    """The job of a 202 answer, once it ended."""
    job_id = ok(answer, 202)["job_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = client.get("/v1/jobs/{}".format(job_id), headers=head)
        # 404 until the job is tagged with the caller's tenant (its first event does it).
        job = ok(answer) if answer.status_code != 404 else {"status": "pending"}
        if job["status"] not in ("pending", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError("job {} did not end".format(job_id))


def state_of(client, head, **filters):
    return ok(client.get("/v1/compliance/state", params=filters, headers=head))


def test_rules_are_defined_on_a_group_and_refused_in_one_sentence(client, heads):
    h = heads["alice"]
    ok(client.post("/v1/groups", json={"name": "web"}, headers=h), 201)
    made = ok(client.post("/v1/compliance/rules", json={
        "name": "perm", "kind": "file", "group": "web", "params": {"path": "/etc/x", "mode": 600},
        "impact": 0.7}, headers=h), 201)
    assert made["params"] == {"path": "/etc/x", "mode": "0600"} and made["mode"] == "audit" and made["group"] == "web"
    assert error(client.post("/v1/compliance/rules", json={"name": "perm", "kind": "file", "group": "web",
                                                           "params": {"path": "/etc/y", "mode": "0600"}},
                             headers=h), 409) == "A compliance rule named perm exists."
    assert error(client.post("/v1/compliance/rules", json={"name": "p2", "kind": "file", "group": "web",
                                                           "params": {"path": "relative"}}, headers=h),
                 400) == "params.path is an absolute path; got 'relative'."
    assert error(client.post("/v1/compliance/rules", json={"name": "p3", "kind": "pkg_absent", "group": "db",
                                                           "params": {"name": "telnetd"}}, headers=h),
                 404) == "No group named db."
    # A raw Salt state runs anything on the hosts: an admin's, not a deployer's.
    assert error(client.post("/v1/compliance/rules", json={"name": "raw", "kind": "sls", "group": "web",
                                                           "params": {"sls": "a:\n  test.nop: []\n"}}, headers=h),
                 403) == "Only an admin of a tenant defines a raw Salt state rule."
    assert error(client.post("/v1/compliance/rules", json={"name": "v", "kind": "pkg_absent", "group": "web",
                                                           "params": {"name": "x"}}, headers=heads["val"]), 403)
    changed = ok(client.patch("/v1/compliance/rules/{}".format(made["id"]), json={"mode": "enforce"}, headers=h))
    assert changed["mode"] == "enforce"
    assert ok(client.get("/v1/compliance/rules", headers=heads["val"]))["total"] == 1
    # Another tenant sees nothing of it.
    assert ok(client.get("/v1/compliance/rules", headers=heads["bob"]))["total"] == 0
    error(client.get("/v1/compliance/rules/{}".format(made["id"]), headers=heads["bob"]), 404)
    assert error(client.post("/v1/compliance/runs", json={"rule": "nope"}, headers=h),
                 404) == "No compliance rule named nope."
    assert ok(client.delete("/v1/compliance/rules/{}".format(made["id"]), headers=h)) == {"removed": made["id"]}
    assert error(client.post("/v1/compliance/runs", json={}, headers=h), 400).startswith(
        "No compliance rule is defined")


def test_audit_reports_drift_once_a_waiver_hides_it_until_it_ends_and_enforce_fixes_it(client, heads, salt):
    h = heads["alice"]
    ok(client.post("/v1/groups", json={"name": "web"}, headers=h), 201)
    ok(client.post("/v1/hosts", json={"name": "web1", "minion_id": "m-web1", "groups": ["web"]}, headers=h), 201)
    ok(client.post("/v1/compliance/rules", json={"name": "perm", "kind": "file", "group": "web",
                                                 "params": {"path": "/etc/x", "mode": "0600"}}, headers=h), 201)
    with WebhookSink() as sink:
        ok(client.post("/v1/handlers", json={"name": "chat", "kind": "webhook", "group": "web",
                                             "target": sink.url("/hooks/SECRET")}, headers=h), 201)
        job = finished(client, h, client.post("/v1/compliance/runs", json={}, headers=h))
        assert job["status"] == "success", job
        assert job["result"]["totals"] == {"drifted": 1} and job["result"]["dry_run"] is False
        assert salt.published[-1] == (["m-web1"], "state.high", True, ["compliance/perm/1", "compliance/perm/2"])
        [row] = state_of(client, heads["val"])["items"]
        assert (row["rule"], row["host"], row["status"], row["mode"]) == ("perm", "web1", "drifted", "audit")
        assert row["detail"] == [{"state": "compliance/perm/2: file.f", "comment": "mode 0644, not 0600",
                                  "changes": {"mode": "0600"}}]
        assert [path for path, _body in sink.posts] == ["/hooks/SECRET"]
        assert "drifted" in sink.posts[0][1]["text"] and "compliance/perm" in sink.posts[0][1]["text"]

        # Still drifted: no news, no second notification.
        finished(client, h, client.post("/v1/compliance/runs", json={"mode": "audit"}, headers=h))
        assert len(sink.posts) == 1

        # A waiver: the drift shows waived at once, and an enforce run leaves it alone (audits it).
        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
        assert error(client.post("/v1/compliance/waivers", json={"rule": "perm", "reason": "vendor needs it",
                                                                 "until": until}, headers=h), 400) == \
            "A waiver is on a host or on a group: name one of them."
        waiver = ok(client.post("/v1/compliance/waivers", json={"rule": "perm", "host": "web1",
                                                                "reason": "vendor needs it", "until": until},
                                headers=h), 201)
        assert waiver["who"] == "alice" and waiver["in_force"] is True
        [row] = state_of(client, h)["items"]
        assert row["status"] == "waived" and row["waiver"]["reason"] == "vendor needs it"
        assert state_of(client, h, status="drifted")["total"] == 0
        job = finished(client, h, client.post("/v1/compliance/runs", json={"mode": "enforce"}, headers=h))
        assert salt.published[-1][2] is True and not salt.fixed
        assert job["result"]["results"] == [{"host": "web1", "rule": "perm", "status": "waived", "mode": "audit",
                                             "impact": 0.5}]

        # Ended: the drift shows again, without a run.
        ok(client.delete("/v1/compliance/waivers/{}".format(waiver["id"]), headers=h))
        assert state_of(client, h)["items"][0]["status"] == "drifted"
        assert ok(client.get("/v1/compliance/waivers", headers=h))["total"] == 0

        job = finished(client, h, client.post("/v1/compliance/runs", json={"mode": "enforce", "rule": "perm"},
                                              headers=h))
        assert salt.published[-1][2] is False and salt.fixed
        assert state_of(client, h)["items"][0]["status"] == "fixed"
        assert len(sink.posts) == 1

    history = ok(client.get("/v1/compliance/history", params={"rule": "perm"}, headers=h))
    assert [item["status"] for item in history["items"]] == ["fixed", "waived", "drifted", "drifted"]
    runs = ok(client.get("/v1/compliance/runs", headers=h))
    assert runs["total"] == 4 and runs["items"][0]["totals"] == {"fixed": 1} and runs["items"][0]["who"] == "alice"
    last = ok(client.get("/v1/compliance/history", params={"run": runs["items"][0]["id"]}, headers=h))
    assert [(item["host"], item["status"]) for item in last["items"]] == [("web1", "fixed")]
    assert ok(client.get("/v1/compliance/state", headers=heads["bob"]))["total"] == 0
