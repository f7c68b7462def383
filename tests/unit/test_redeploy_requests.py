"""Redeploy requests refused in one sentence before any job exists (unknown environment, one
not active, one being redeployed or whose redeploy was cut off), through the operation, the
API and the ``corpus`` command; the plan; and the old containers destroyed once kept long enough.

The redeploy itself, on real containers, is tests/integration/controller/test_redeploy.py.
"""

import datetime
import os

import pytest
from sqlalchemy import select

from mc_project import jobs
from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller import operations, retired_reaper, steps
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job, Project, Tenant
from support.api_answers import error, login, ok
from support.api_server import served
from support.api_stub import run_corpus
from support.wait import wait_for


@pytest.fixture
def calls(ctl, monkeypatch):
    made = []

    def call(self, minion, fun, *args, **kwargs):
        made.append((minion, fun, args, kwargs))
        return {"changed": True}

    monkeypatch.setattr(Controller, "call", call)
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    db.init(ctl.url)
    yield made
    db.dispose()


def add_env(ctl, name="shop", status="active", tenant=None):
    with db.session(ctl.url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == "node1"))
        if node is None:
            node = ComputeNode(name="node1", address="192.0.2.1", minion_id="node1", subnet="10.91.0.0/24",
                               lxc_path="/var/lib/lxc", prefix="/srv/corpus", status="active", slots=4)
            sess.add(node)
            sess.flush()
        tenant_id = sess.scalar(select(Tenant.id).where(Tenant.name == tenant)) if tenant else None
        env = Environment(name=name, env_type="staging", status=status, node_id=node.id, ip="10.91.0.2",
                          container=name, minion_id="{}.corpus.test".format(name), project=name,
                          domains=["{}.corpus.test".format(name)], tenant_id=tenant_id)
        env.projects = [Project(name=name)]
        sess.add(env)


def add_job(ctl, status, owner_pid, clipboard=None, ended=None):
    with db.session(ctl.url) as sess:
        job = Job(kind="redeploy", target="shop", status=status, clipboard=clipboard or {}, steps=[],
                  owner_pid=owner_pid, owner_host=jobs.this_owner()["owner_host"], ended=ended)
        sess.add(job)
        sess.flush()
        return job.id


def job_count(ctl):
    with db.session(ctl.url) as sess:
        return len(sess.scalars(select(Job.id)).all())


def refusal(ctl, *args, **kwargs):
    before = job_count(ctl)
    with pytest.raises(CorpusError) as raised:
        operations.redeploy(ctl, *args, **kwargs)
    message = str(raised.value)
    assert message.endswith(".") and "\n" not in message
    assert job_count(ctl) == before
    return message


def test_the_plan_has_every_step_registered_with_the_switch_undone(ctl):
    registry = steps.registry(ctl)
    names = jobs.flatten(operations.REDEPLOY)
    assert names[0] == "redeploy:silence" and names[-1] == "redeploy:retire"
    assert all(name in registry for name in names)
    assert registry["redeploy:switch"][1] is not None and registry["redeploy:clone"][1] is not None
    assert operations.PLANS["redeploy"] is operations.REDEPLOY


def test_an_unknown_or_inactive_environment_is_refused(ctl, calls):
    assert refusal(ctl, "nowhere") == "No environment named nowhere."
    add_env(ctl, status="creating")
    assert refusal(ctl, "shop") == "Environment shop is creating, not active."
    assert calls == []  # nothing was asked of any minion


def test_a_redeploy_running_or_cut_off_is_refused(ctl, calls):
    add_env(ctl)
    running = add_job(ctl, "running", os.getpid())
    assert refusal(ctl, "shop") == "Environment shop is being redeployed already (job {}).".format(running)
    with db.session(ctl.url) as sess:
        sess.get(Job, running).status = "failed"
    dead = add_job(ctl, "running", 2 ** 22 + 7)  # no such process: the job shows as interrupted
    assert refusal(ctl, "shop") == ("Redeploy job {} of environment shop was interrupted: resume or undo it "
                                    "first.".format(dead))
    assert refusal(ctl, "shop", image="  ") == ("Redeploy job {} of environment shop was interrupted: resume "
                                               "or undo it first.".format(dead))
    assert calls == []


def test_a_blank_image_is_refused(ctl, calls):
    add_env(ctl)
    assert refusal(ctl, "shop", image=" ") == "An image is named by a non-empty string."


def test_old_containers_are_destroyed_once_kept_long_enough(ctl, calls):
    add_env(ctl)
    since = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc)
    retired = {"container": "shop", "node": "node1", "since": since.isoformat()}
    job_id = add_job(ctl, "success", None, clipboard={"retired": retired})
    ctl.settings["redeploy_keep_hours"] = 24
    assert operations.destroy_retired(ctl, now=since + datetime.timedelta(hours=23)) == []
    assert calls == []
    assert operations.destroy_retired(ctl, now=since + datetime.timedelta(hours=24)) == ["shop"]
    assert [(minion, fun, kwargs["name"]) for minion, fun, _args, kwargs in calls] == [
        ("node1", "mc_lxc.destroy", "shop")]
    with db.session(ctl.url) as sess:
        assert sess.get(Job, job_id).clipboard["retired"]["destroyed"]
    assert operations.destroy_retired(ctl, now=since + datetime.timedelta(hours=48)) == []  # once
    assert len(calls) == 1


def test_the_api_refuses_in_one_sentence_and_makes_no_job(ctl, calls, api_client):
    client = api_client({"alice": ("alpha", "deployer"), "val": ("alpha", "viewer")})
    add_env(ctl, tenant="alpha")
    head = login(client, "alice")
    assert error(client.post("/v1/environments/nowhere/redeploy", json={}, headers=head), 404) == \
        "No environment named nowhere."
    assert "deployer" in error(client.post("/v1/environments/shop/redeploy", json={},
                                           headers=login(client, "val")), 403)
    add_job(ctl, "running", os.getpid())
    before = job_count(ctl)
    message = error(client.post("/v1/environments/shop/redeploy", json={"image": "golden-2"}, headers=head), 409)
    assert message.startswith("Environment shop is being redeployed already")
    assert job_count(ctl) == before
    assert ok(client.get("/v1/environments/shop", headers=head))["status"] == "active"


def test_the_corpus_command_says_the_refusal_in_one_sentence(ctl, calls, opts, tmp_path):
    users.add_local_user(ctl.url, "alice", "alice-pw", "alpha", "deployer")
    add_env(ctl, tenant="alpha")
    add_job(ctl, "running", os.getpid())
    with served(create_app(opts, ctl=ctl)) as url:
        home = tmp_path / "home"
        home.mkdir()
        assert run_corpus(["--url", url, "login", "--user", "alice", "--password-stdin"], home,
                          stdin="alice-pw\n").returncode == 0
        before = job_count(ctl)
        for args, message in ((["redeploy", "nowhere"], "No environment named nowhere."),
                              (["redeploy", "shop", "--image", "golden-2"], "is being redeployed already")):
            result = run_corpus(args, home)
            assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and message in lines[0] and lines[0].endswith("."), result.stderr
        assert job_count(ctl) == before


def test_a_new_environment_keeps_off_a_running_redeploys_container_and_address(ctl, calls):
    add_env(ctl)
    add_job(ctl, "running", os.getpid(), clipboard={
        "node": {"name": "node1"}, "next": {"container": "shop-2", "ip": "10.91.0.3", "minion_id": "r2.shop"}})
    before = job_count(ctl)
    with pytest.raises(CorpusError) as raised:
        operations.init_env(ctl, "shop-2", "dev")
    assert str(raised.value) == ("The name shop-2 is taken by the container of a redeployed environment; "
                                 "choose another.")
    assert job_count(ctl) == before
    with db.session(ctl.url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == "node1"))
        sess.add(Environment(name="web", env_type="dev", status="creating", node_id=node.id, container="web"))

    class Step:
        clipboard = {"env_name": "web"}
        log = staticmethod(lambda line: None)

    steps.registry(ctl)["ip:allocate"][0](Step)
    assert Step.clipboard["ip"] == "10.91.0.4"  # .2 is shop's, .3 its redeploy's new container's


def test_the_api_process_destroys_old_containers_on_its_own(ctl, calls):
    add_env(ctl)
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=25)
    add_job(ctl, "success", None, clipboard={"retired": {"container": "shop", "node": "node1",
                                                          "since": since.isoformat()}})
    ctl.settings["redeploy_keep_hours"] = 24
    reaper = retired_reaper.Reaper(ctl, interval=0.1).start()
    try:
        wait_for(lambda: calls, timeout=10, what="the old container destroyed")
    finally:
        reaper.stop()
    assert [(minion, fun, kwargs["name"]) for minion, fun, _args, kwargs in calls] == [
        ("node1", "mc_lxc.destroy", "shop")]
