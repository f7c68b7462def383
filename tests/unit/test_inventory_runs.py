"""Runs on the inventory without Salt or Ansible: targets resolved to a tenant's hosts,
Salt state returns and ansible-runner events turned into host events, the report kept
by a failed job, the event stream's host frames, the CLI's lines and recap, and the
routes' refusals (one sentence, no job made)."""

import io
import json

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import func, select

from mc_project import jobs
from mc_project.api import sse, users
from mc_project.api.app import create_app
from mc_project.cli.progress import StepProgress
from mc_project.controller import inventory_runs, playbook_events, playbooks, salt_state_events
from mc_project.controller.runtime import Controller
from mc_project.controller.steps import state_run
from mc_project.errors import CorpusError
from mc_project.inventory import db, run_targets
from mc_project.inventory.fleet_rules import NotFound
from mc_project.inventory.models import Job, Tenant
from support.api_answers import error, login

PLAYBOOK = "- hosts: all\n  tasks:\n    - ping:\n"


@pytest.fixture
def client(opts, ctl, monkeypatch):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    app = create_app(opts, ctl=ctl)
    for user, tenant, role in (("ada", "alpha", "admin"), ("alice", "alpha", "deployer"), ("val", "alpha", "viewer"),
                               ("bob", "beta", "admin")):
        users.add_local_user(ctl.url, user, user + "-pw", tenant, role)
    with TestClient(app) as test_client:
        yield test_client
    db.dispose()


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("ada", "alice", "val", "bob")}


def made(answer, status=201):
    assert answer.status_code == status, answer.text
    return answer.json()


@pytest.fixture
def fleet(client, heads):
    """alpha: region eu (cell r1), groups web > frontend, hosts web1 (frontend, role=web), web2
    (web, a minion), db1 (region eu, no group) and lab (a group and a region both named lab);
    beta: group web with host other."""
    h = heads["alice"]
    made(client.post("/v1/regions", json={"name": "eu"}, headers=h))
    made(client.post("/v1/regions", json={"name": "lab"}, headers=h))
    made(client.post("/v1/cells", json={"name": "r1", "region": "eu"}, headers=h))
    made(client.post("/v1/groups", json={"name": "frontend"}, headers=h))
    made(client.post("/v1/groups", json={"name": "web", "children": ["frontend"]}, headers=h))
    made(client.post("/v1/groups", json={"name": "lab"}, headers=h))
    made(client.post("/v1/groups", json={"name": "empty"}, headers=h))
    made(client.post("/v1/hosts", json={"name": "web1", "address": "192.0.2.1", "groups": ["frontend"],
                                        "labels": ["role=web"], "region": "eu", "cell": "r1"}, headers=h))
    made(client.post("/v1/hosts", json={"name": "web2", "minion_id": "m-web2", "groups": ["web"]}, headers=h))
    made(client.post("/v1/hosts", json={"name": "db1", "address": "192.0.2.3", "region": "eu"}, headers=h))
    made(client.post("/v1/groups", json={"name": "web"}, headers=heads["bob"]))
    made(client.post("/v1/hosts", json={"name": "other", "minion_id": "m-other", "groups": ["web"]},
                     headers=heads["bob"]))


def names_of(url, tenant, target):
    with db.session(url) as sess:
        tenant_id = sess.scalar(select(Tenant.id).where(Tenant.name == tenant))
        return [host["name"] for host in run_targets.hosts(sess, tenant_id, target)]


# --------------------------------------------------------------------------- targets

def test_a_target_names_a_group_with_its_inner_groups_a_label_or_a_region_of_one_tenant(ctl, fleet):
    assert names_of(ctl.url, "alpha", "web") == ["web1", "web2"]
    assert names_of(ctl.url, "alpha", "group:frontend") == ["web1"]
    assert names_of(ctl.url, "alpha", "role=web") == ["web1"]
    assert names_of(ctl.url, "alpha", "label:role=web") == ["web1"]
    assert names_of(ctl.url, "alpha", "eu") == ["db1", "web1"]
    assert names_of(ctl.url, "alpha", "cell:r1") == ["web1"]
    assert names_of(ctl.url, "alpha", "host:db1") == ["db1"]
    assert names_of(ctl.url, "beta", "web") == ["other"]


BAD_TARGETS = [
    ("lab", "lab is both a group and a region: say group:lab or region:lab."),
    ("nowhere", "No group or region named nowhere; a label is key=value."),
    ("region:nowhere", "No region named nowhere."),
    ("empty", "Target empty matches no host."),
    ("role=db", "Target role=db matches no host."),
    ("group:", "Target 'group:' names no group."),
    ("../etc", "Target '../etc' is not valid: name a group, a region or a label (key=value), or say group:NAME, "
               "region:NAME, cell:NAME, label:LABEL or host:NAME."),
]


def test_a_bad_target_is_one_sentence_and_another_tenants_group_is_not_found(ctl, fleet):
    for target, refusal in BAD_TARGETS:  # one fleet for all: it takes seconds to make
        with pytest.raises(CorpusError) as caught:
            names_of(ctl.url, "alpha", target)
        assert str(caught.value) == refusal
    with pytest.raises(NotFound):
        names_of(ctl.url, "beta", "frontend")


# --------------------------------------------------------------------------- translations

def test_a_state_return_becomes_events_in_run_order():
    ret = {
        "pkg_|-nginx_|-nginx_|-installed": {"result": True, "changes": {}, "comment": "ok", "__run_num__": 1,
                                            "__id__": "nginx"},
        "file_|-conf_|-/etc/x_|-managed": {"result": True, "changes": {"diff": "secret line"}, "comment": "Updated",
                                           "__run_num__": 0, "__id__": "conf"},
        "cmd_|-boom_|-false_|-run": {"result": False, "changes": {}, "comment": "exit 1", "__run_num__": 2},
        "svc_|-web_|-web_|-running": {"result": None, "changes": {}, "comment": "would start", "__run_num__": 3},
    }
    assert salt_state_events.events(ret) == [
        ("changed", "conf: file.managed", "Updated"),
        ("ok", "nginx: pkg.installed", "ok"),
        ("failed", "boom: cmd.run", "exit 1"),
        ("changed", "web: svc.running", "would start"),
    ]
    assert "secret line" not in json.dumps(salt_state_events.events(ret))
    assert salt_state_events.events(["No matching sls found for 'nope' in env 'base'"]) == [
        ("failed", None, "No matching sls found for 'nope' in env 'base'")]
    assert salt_state_events.events({}) == []


def test_runner_events_become_host_events():
    def event(kind, **data):
        return {"event": kind, "event_data": dict(data, task="t")}
    assert playbook_events.host_event(event("runner_on_ok", host="a", res={"changed": False})) == ("a", "ok", "t", None)
    assert playbook_events.host_event(event("runner_on_ok", host="a", res={"changed": True, "content": "x"})) == (
        "a", "changed", "t", None)
    assert playbook_events.host_event(event("runner_on_failed", host="a", res={"msg": "boom"})) == (
        "a", "failed", "t", "boom")
    assert playbook_events.host_event(event("runner_on_failed", host="a", ignore_errors=True, res={"msg": "x"}))[1] \
        == "ok"
    assert playbook_events.host_event(event("runner_on_unreachable", host="a", res={"msg": "no route"})) == (
        "a", "unreachable", "t", "no route")
    assert playbook_events.host_event(event("runner_on_skipped", host="a"))[1] == "skipped"
    assert playbook_events.host_event(event("playbook_on_task_start")) is None
    assert playbook_events.host_event({"event": "verbose", "stdout": "x"}) is None


def test_the_generated_inventory_holds_only_the_runs_hosts_with_their_groups():
    export = {"_meta": {"hostvars": {"a": {"ansible_host": "10.0.0.1"}, "b": {}, "c": {}}},
              "all": {"children": ["web", "ungrouped"]}, "web": {"hosts": ["a", "c"], "children": ["front"]},
              "front": {"hosts": ["b"]}, "ungrouped": {"hosts": []}}
    found = playbooks.inventory_for(export, ["a", "b"])
    assert found["all"]["hosts"] == {"a": {"ansible_host": "10.0.0.1"}, "b": {}}
    assert found["all"]["children"]["web"] == {"hosts": {"a": None}, "children": {"front": None}}
    assert found["all"]["children"]["front"]["hosts"] == {"b": None}


@pytest.mark.parametrize("content, refusal", [
    ("", "The playbook is empty."),
    ("- hosts: [all\n", "The playbook is not valid YAML at line 2"),
    ("hosts: all\n", "The playbook must be a YAML list of plays."),
    ("x" * (playbooks.MAX_BYTES + 1), "The playbook is over 256 KiB; send a smaller one."),
])
def test_a_bad_playbook_is_one_sentence(content, refusal):
    with pytest.raises(CorpusError) as caught:
        playbooks.check_playbook(content)
    assert str(caught.value).startswith(refusal)


# --------------------------------------------------------------------------- the job and its stream

class FakeSalt:
    """What a state run needs of the controller: answers as they come, and fire."""

    def __init__(self, answers):
        self.given = answers
        self.fired = []
        self.published = None

    def answers_as_they_come(self, minions, fun, *args, timeout=300, **kwargs):
        self.published = (list(minions), fun, list(args), kwargs)
        for minion, ret in self.given:
            yield minion, {"ret": ret, "retcode": 0}

    def fire(self, tag, data):
        self.fired.append((tag, data))


def state_job(ctl, fake, hosts, test=False):
    manager = jobs.Jobs(ctl.url, registry={"run:salt_state": (lambda ctx: state_run.salt_state(fake, ctx), None)},
                        fire=fake.fire)
    clipboard = {"target": "web", "tenant_id": 1, "function": "state.apply", "sls": ["nginx"], "test": test,
                 "timeout": 5, "hosts": hosts}
    return manager, manager.submit("salt_run", "web", inventory_runs.RUN_STATE, clipboard)


def test_a_state_run_reports_each_host_and_fails_keeping_its_summary(ctl):
    ok_ret = {"pkg_|-nginx_|-nginx_|-installed": {"result": True, "changes": {"nginx": "1.2"}, "comment": "done",
                                                  "__run_num__": 0, "__id__": "nginx"}}
    bad_ret = {"cmd_|-x_|-x_|-run": {"result": False, "changes": {}, "comment": "exit 2", "__run_num__": 0}}
    fake = FakeSalt([("m1", ok_ret), ("m2", bad_ret), ("stranger", ok_ret)])
    hosts = [{"name": "one", "minion_id": "m1"}, {"name": "two", "minion_id": "m2"},
             {"name": "three", "minion_id": "m3"}, {"name": "bare", "minion_id": None}]
    _manager, state = state_job(ctl, fake, hosts, test=True)
    assert fake.published == (["m1", "m2", "m3"], "state.apply", ["nginx"], {"test": True})
    assert state["status"] == "failed"
    assert state["error"] == ("failed at step 1/1 run:salt_state: state.apply (test=True) failed on 3 of 4 hosts: "
                              "bare (unreachable), three (unreachable), two (failed)")
    summary = state["clipboard"]["summary"]
    assert summary["one"] == {"ok": 0, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 0, "status": "changed"}
    assert summary["two"]["status"] == "failed" and summary["three"]["status"] == "unreachable"
    assert summary["bare"]["status"] == "unreachable"
    host_tags = [tag for tag, _data in fake.fired if "/host/" in tag]
    job_id = state["id"]
    assert host_tags == ["corpus/job/{}/host/{}".format(job_id, end)
                         for end in ("1/unreachable", "2/changed", "3/failed", "4/unreachable")]
    # Each host event was fired before the step's end was.
    tags = [tag for tag, _data in fake.fired]
    assert tags.index(host_tags[-1]) < tags.index("corpus/job/{}/step/1/failed".format(job_id))
    assert [event["host"] for event in state["clipboard"]["host_events"]] == ["bare", "one", "two", "three"]
    report = inventory_runs.report(state)
    assert report["dry_run"] is True and report["totals"] == {"unreachable": 2, "changed": 1, "failed": 1}


def test_a_run_whose_hosts_all_worked_succeeds(ctl):
    fake = FakeSalt([("m1", {})])
    _manager, state = state_job(ctl, fake, [{"name": "one", "minion_id": "m1"}])
    assert state["status"] == "success"
    assert state["clipboard"]["summary"]["one"]["status"] == "ok"


def test_the_event_stream_sends_host_events_then_the_summary(ctl):
    fake = FakeSalt([("m1", {"a_|-b_|-c_|-d": {"result": True, "changes": {}, "comment": "", "__run_num__": 0}})])
    _manager, state = state_job(ctl, fake, [{"name": "one", "minion_id": "m1"}])
    frames = [frame.decode() for frame in sse.stream(ctl, state["id"])]  # no master: the inventory alone
    kinds = [frame.split("\n")[0] for frame in frames]
    assert kinds == ["event: host", "event: step", "event: end"]
    host = json.loads(frames[0].split("\n")[1][len("data: "):])
    assert host == {"job": state["id"], "seq": 1, "host": "one", "status": "ok", "task": "b: a.d", "message": None}
    end = json.loads(frames[2].split("\n")[1][len("data: "):])
    assert end["result"]["hosts"]["one"]["status"] == "ok"


def test_the_cli_prints_a_line_per_host_event_and_a_recap():
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    with StepProgress(console, live=False) as shown:
        shown.host({"host": "web1", "status": "failed", "task": "x: cmd.run", "message": "exit 1"})
        shown.host({"host": "web2", "status": "ok", "task": "y", "message": "quiet"})
        shown.recap({"dry_run": True, "hosts": {"web1": {"status": "failed", "failed": 1},
                                                "web2": {"status": "ok", "ok": 1}}})
    text = buffer.getvalue()
    assert "web1 failed: x: cmd.run -- exit 1\n" in text and "web2 ok: y\n" in text
    assert "Recap (dry run: nothing was changed):" in text
    assert [line.split() for line in text.splitlines()[-2:]] == [["web1", "failed", "0", "0", "1", "0", "0"],
                                                                 ["web2", "ok", "1", "0", "0", "0", "0"]]


# --------------------------------------------------------------------------- the routes' refusals

def jobs_made(url):
    with db.session(url) as sess:
        return sess.scalar(select(func.count(Job.id)))


def test_the_routes_refuse_bad_runs_in_one_sentence_and_make_no_job(client, heads, fleet, ctl):
    h = heads["alice"]
    assert error(client.post("/v1/runs", json={"target": "nowhere", "sls": ["x"]}, headers=h), 404) == \
        "No group or region named nowhere; a label is key=value."
    assert error(client.post("/v1/runs", json={"target": "frontend"}, headers=heads["bob"]), 404) == \
        "No group or region named frontend; a label is key=value."
    assert error(client.post("/v1/runs", json={"target": "web", "sls": ["../x"]}, headers=h), 400) == \
        "SLS name '../x' is not valid: use letters, digits and '_.-'."
    assert error(client.post("/v1/runs", json={"target": "web", "function": "state.highstate", "sls": ["a"]},
                             headers=h), 400) == "state.highstate takes no SLS name: use state.apply SLS for those."
    assert error(client.post("/v1/runs", json={"target": "web", "function": "cmd.run"}, headers=h), 422)
    assert error(client.post("/v1/runs", json={"target": "web"}, headers=heads["val"]), 403) == \
        "You may not run states: you are deployer of no tenant."
    # A playbook runs lookups on the controller: admins only.
    assert error(client.post("/v1/playbooks", json={"target": "web", "playbook": PLAYBOOK}, headers=h), 403) == \
        "You may not run playbooks: you are admin of no tenant."
    assert error(client.post("/v1/playbooks", json={"target": "web", "playbook": "a: b"}, headers=heads["ada"]),
                 400) == "The playbook must be a YAML list of plays."
    assert error(client.post("/v1/playbooks", json={"target": "web", "playbook": PLAYBOOK, "path": "/etc/shadow"},
                             headers=heads["ada"]), 422)
    assert jobs_made(ctl.url) == 0
