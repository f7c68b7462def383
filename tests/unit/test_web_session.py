"""The web page in process (FastAPI's TestClient) over an SQLite inventory: logins and
logouts, the session cookie's flags, CSRF on every form, the redirects to the login
page, another tenant's objects refused as in the REST API, and what the pages show."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project import jobs
from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.web import live
from mc_project.inventory.models import AuditEntry, ComputeNode, Environment, Job, JobStep, Project, Tenant

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(opts, ctl):
    made = create_app(opts, ctl=ctl)
    url = ctl.url
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "victor", "victor-pw", "alpha", "viewer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with db.session(url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        beta = sess.scalar(select(Tenant).where(Tenant.name == "beta"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=4, tenant_id=alpha.id, dns_name="node1.test")
        sess.add(node)
        sess.flush()
        for number, (name, tenant, kind) in enumerate((("a1", alpha, "dev"), ("a2", alpha, "prod"),
                                                       ("b1", beta, "dev")), 1):
            env = Environment(name=name, env_type=kind, status="active", tenant_id=tenant.id, node_id=node.id,
                              ip="10.0.0.{}".format(number), ssh_nat_port=40000 + number,
                              domains=["{}.corpus.test".format(name)], minion_id="env-" + name, project=name)
            env.projects.append(Project(name=name))
            sess.add(env)
    return made


def client_of(app, https=False):
    return TestClient(app, base_url="https://testserver" if https else "http://testserver", follow_redirects=False)


@pytest.fixture
def client(app):
    with client_of(app) as test_client:
        yield test_client


def log_in(client, user, password=None):
    form = client.get("/web/login")
    token = CSRF_RE.search(form.text).group(1)
    answer = client.post("/web/login", data={"username": user, "password": password or user + "-pw",
                                             "csrf_token": token, "next": "/web/"})
    return answer


def csrf_of(client, path="/web/"):
    return CSRF_RE.search(client.get(path).text).group(1)


def make_job(url, target, status, steps, error=None):
    """A job in the inventory; a running one is this process's (else it reads as interrupted)."""
    with db.session(url) as sess:
        env_tenant = sess.scalar(select(Environment.tenant_id).where(Environment.name == target))
        owner = jobs.this_owner() if status == "running" else {}
        job = Job(kind="init_env", target=target, status=status, clipboard={}, error=error, tenant_id=env_tenant,
                  **owner,
                  steps=[JobStep(index=number, name=name, status=state, log=log, undo_data={})
                         for number, (name, state, log) in enumerate(steps, 1)])
        sess.add(job)
        sess.flush()
        return job.id


@pytest.mark.parametrize("path", ["/web/", "/web/environments/a1", "/web/jobs", "/web/jobs/1", "/web/activity",
                                  "/web/environments/a1/projects/a1/panel"])
def test_pages_answer_303_to_the_login_page_without_a_session(client, path):
    answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/web/login?next=" + path


def test_a_form_sent_without_a_session_leads_to_the_login_page_then_the_fleet(client):
    answer = client.post("/web/environments/a1/destroy", data={"confirm_name": "a1"})
    assert answer.status_code == 303 and answer.headers["location"] == "/web/login?next=/web/"


def test_the_root_leads_to_the_page(client):
    assert client.get("/").headers["location"] == "/web/"
    assert client.get("/web").headers["location"] == "/web/"
    assert client.get("/v1/health").json() == {"status": "ok"}  # the API is untouched


def test_login_sets_an_httponly_samesite_cookie_and_logout_revokes_it(client):
    answer = log_in(client, "alice")
    assert answer.status_code == 303 and answer.headers["location"] == "/web/"
    cookie = [value for value in answer.headers.get_list("set-cookie") if value.startswith("corpus_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    page = client.get("/web/")
    assert page.status_code == 200 and "alice" in page.text and page.headers["x-frame-options"] == "DENY"
    token = client.cookies.get("corpus_session")
    assert token not in page.text  # the session token never shows in the page
    logout = client.post("/web/logout", data={"csrf_token": csrf_of(client)})
    assert logout.status_code == 303 and logout.headers["location"] == "/web/login"
    client.cookies.set("corpus_session", token)
    assert client.get("/web/").status_code == 303  # revoked: back to the login page
    assert client.get("/v1/whoami", headers={"Authorization": "Bearer " + token}).status_code == 401


def test_the_cookie_is_secure_over_tls(app):
    with client_of(app, https=True) as client:
        answer = log_in(client, "alice")
        cookie = [value for value in answer.headers.get_list("set-cookie") if value.startswith("corpus_session=")][0]
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_wrong_password_is_one_sentence_and_no_cookie(client):
    answer = log_in(client, "alice", "nope")
    assert answer.status_code == 401 and "Wrong user name or password." in answer.text
    assert "Traceback" not in answer.text
    assert not any(value.startswith("corpus_session=") for value in answer.headers.get_list("set-cookie"))


def test_the_login_form_needs_its_csrf_token(client):
    client.get("/web/login")
    answer = client.post("/web/login", data={"username": "alice", "password": "alice-pw", "csrf_token": "forged"})
    assert answer.status_code == 403 and "reload the page" in answer.text
    assert "corpus_session" not in client.cookies


def test_after_login_the_page_asked_for_opens_and_never_another_site(client):
    form = client.get("/web/login?next=/web/environments/a1")
    token = CSRF_RE.search(form.text).group(1)
    assert 'value="/web/environments/a1"' in form.text
    answer = client.post("/web/login", data={"username": "alice", "password": "alice-pw", "csrf_token": token,
                                             "next": "/web/environments/a1"})
    assert answer.headers["location"] == "/web/environments/a1"
    token = CSRF_RE.search(client.get("/web/login?next=//evil.example").text).group(1)
    answer = client.post("/web/login", data={"username": "alice", "password": "alice-pw", "csrf_token": token,
                                             "next": "//evil.example"})
    assert answer.headers["location"] == "/web/"


@pytest.mark.parametrize("path", ["/web/environments/a1/destroy", "/web/environments", "/web/logout",
                                  "/web/environments/a1/resize", "/web/jobs/1/undo"])
def test_every_form_needs_the_session_csrf_token(client, ctl, path):
    log_in(client, "alice")
    for fields in ({}, {"csrf_token": "forged"}):
        answer = client.post(path, data=dict(fields, confirm_name="a1", name="x1", size="4G"))
        assert answer.status_code == 403, path
        assert "did not come from this page" in answer.text
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Environment.status).where(Environment.name == "a1")) == "active"
    # A form of another session's token does not pass either.
    other = TestClient(client.app, follow_redirects=False)
    log_in(other, "victor")
    answer = client.post(path, data={"csrf_token": csrf_of(other), "confirm_name": "a1"})
    assert answer.status_code == 403


def test_another_tenants_objects_are_404_as_in_the_api(client, ctl):
    job_id = make_job(ctl.url, "b1", "success", [("env:register", "success", "")])
    log_in(client, "alice")
    page = client.get("/web/environments/b1")
    assert page.status_code == 404 and "No environment named b1." in page.text
    assert client.get("/web/environments/zz").status_code == 404
    assert client.get("/web/jobs/{}".format(job_id)).status_code == 404
    assert client.get("/web/jobs/{}/events".format(job_id)).status_code == 404
    assert client.get("/web/environments/b1/projects/b1/panel").status_code == 404
    token = csrf_of(client)
    destroy = client.post("/web/environments/b1/destroy", data={"csrf_token": token, "confirm_name": "b1"})
    assert destroy.status_code == 404 and "No environment named b1." in destroy.text
    fleet = client.get("/web/").text
    assert "a1" in fleet and "a2" in fleet and "/web/environments/b1" not in fleet


def test_the_fleet_shows_nodes_environments_counts_and_filters(client):
    log_in(client, "alice")
    page = client.get("/web/").text
    assert "node1.test" in page and "192.0.2.1" in page and "1 free / 3 used" in page
    assert "<b>2</b> environments" in page and "40001" in page and "a1.corpus.test" in page
    assert '<svg class="chart"' in page and "Slots used per node" in page
    prod = client.get("/web/?type=prod").text
    assert "/web/environments/a2" in prod and "/web/environments/a1" not in prod
    assert "/web/environments/a1" not in client.get("/web/?node=other").text
    assert client.get("/web/?type=nonsense").status_code == 200


def test_the_environment_page_gives_access_details_and_actions_by_role(client):
    log_in(client, "alice")
    page = client.get("/web/environments/a1").text
    assert "ssh -p 40001 root@a1.corpus.test" in page and "http://a1.corpus.test/" in page
    assert "ssh://root@a1.corpus.test:40001/srv/projects/a1/git/project.git" in page
    assert "Destroy" in page and "/web/environments/a1/projects/a1/panel" in page
    viewer = TestClient(client.app, follow_redirects=False)
    log_in(viewer, "victor")
    assert "Destroy" not in viewer.get("/web/environments/a1").text


def test_a_refused_change_goes_back_with_one_sentence(client, ctl):
    log_in(client, "alice")
    token = csrf_of(client)
    answer = client.post("/web/environments/a1/destroy", data={"csrf_token": token, "confirm_name": "a2"})
    assert answer.status_code == 303 and answer.headers["location"] == "/web/environments/a1"
    page = client.get("/web/environments/a1").text
    assert "Type the environment&#39;s name, a1, to destroy it." in page
    assert "to destroy it." not in client.get("/web/environments/a1").text  # shown once
    bad_size = client.post("/web/environments/a1/resize", data={"csrf_token": token, "size": "lots"})
    assert bad_size.status_code == 303
    assert "Bad size &#39;lots&#39;" in client.get("/web/environments/a1").text
    bad_name = client.post("/web/environments", data={"csrf_token": token, "name": "x" * 41})
    assert bad_name.status_code == 303 and "Invalid name" in client.get("/web/").text
    viewer = TestClient(client.app, follow_redirects=False)
    log_in(viewer, "victor")
    refused = viewer.post("/web/environments/a1/destroy", data={"csrf_token": csrf_of(viewer), "confirm_name": "a1"})
    assert refused.status_code == 303
    assert "deployer is needed" in viewer.get("/web/environments/a1").text
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Environment.status).where(Environment.name == "a1")) == "active"
        entry = sess.scalars(select(AuditEntry).where(AuditEntry.action == "POST /web/environments/a1/destroy")
                             .order_by(AuditEntry.id.desc())).first()
        assert entry.user == "victor" and entry.tenant == "alpha"
        assert entry.result == "refused (403): Your role in this tenant is viewer; deployer is needed."


def test_a_failed_job_shows_its_failing_step_and_reason(client, ctl):
    job_id = make_job(ctl.url, "a1", "failed", [
        ("env:register", "undone", "registered\nundone"),
        ("lxc:clone", "failed", "failed: lxc-copy exited 1: no space left"),
        ("env:activate", "pending", "")], error="failed at step 2/3 lxc:clone: lxc-copy exited 1: no space left")
    log_in(client, "alice")
    page = client.get("/web/jobs/{}".format(job_id)).text
    assert "failed at step 2/3 lxc:clone: lxc-copy exited 1: no space left" in page
    failing = re.search(r'<li id="step-2".*?</li>', page, re.S).group(0)
    assert "failing" in failing and "<details class=\"log-box\" open>" in failing
    assert "sse-connect" not in page  # ended: nothing to listen to
    events = client.get("/web/jobs/{}/events".format(job_id)).text
    assert "event: step-2" in events and "event: end" in events and "data: <div class=\"step bad failing\"" in events
    listed = client.get("/web/jobs").text
    assert "#{}".format(job_id) in listed


def test_an_interrupted_job_offers_resume_and_undo_and_a_running_one_listens(client, ctl):
    interrupted = make_job(ctl.url, "a1", "interrupted", [("env:register", "success", ""),
                                                          ("lxc:clone", "running", "")])
    running = make_job(ctl.url, "a2", "running", [("env:register", "running", "")])
    log_in(client, "alice")
    page = client.get("/web/jobs/{}".format(interrupted)).text
    assert "/web/jobs/{}/resume".format(interrupted) in page and "/web/jobs/{}/undo".format(interrupted) in page
    live = client.get("/web/jobs/{}".format(running)).text
    assert 'sse-connect="/web/jobs/{}/events"'.format(running) in live and 'sse-swap="step-1"' in live


def test_the_activity_is_for_admins_and_filters(client):
    log_in(client, "alice")
    assert client.get("/web/activity").status_code == 403
    admin = TestClient(client.app, follow_redirects=False)
    log_in(admin, "bob")
    token = csrf_of(admin)
    admin.post("/web/environments/b1/destroy", data={"csrf_token": token, "confirm_name": "wrong"})
    page = admin.get("/web/activity").text
    assert "POST /web/environments/b1/destroy" in page and "bob" in page
    assert "POST /web/environments/b1/destroy" not in admin.get("/web/activity?user=nobody").text
    assert "POST /web/environments/b1/destroy" in admin.get("/web/activity?q=destroy").text


def test_unknown_pages_and_bad_values_are_one_sentence_pages(client):
    log_in(client, "alice")
    missing = client.get("/web/nothing-here")
    assert missing.status_code == 404 and "There is no page at /web/nothing-here." in missing.text
    bad = client.get("/web/jobs/notanumber")
    assert bad.status_code == 400 and "Traceback" not in bad.text and "<html" in bad.text
    assert client.get("/v1/nothing").json()["error"]["status"] == 404  # the API keeps its JSON errors


def test_static_files_and_vendored_htmx_are_served(client):
    for path in ("/web/static/corpus.css", "/web/static/vendor/htmx-2.0.11.min.js",
                 "/web/static/vendor/htmx-ext-sse-2.2.4.min.js", "/web/static/corpus.js"):
        assert client.get(path).status_code == 200, path


RELEASES = [{"id": "r1", "commit": "a" * 40, "mode": "cooking", "status": "success", "time": "2026-12-01T10:00:00",
             "live": False},
            {"id": "r2", "commit": "b" * 40, "mode": "cooking", "status": "success", "time": "2026-12-01T11:00:00",
             "live": True}]


def minion_answers(statuses, calls):
    """A stand-in for the Salt calls to an environment's minion: ``statuses`` in turn for
    ``mc_project.status`` (the last one repeated), the releases, a rollback record."""
    def call(self, minion, fun, *args, **kwargs):
        calls.append((minion, fun, args))
        if fun == "mc_project.status":
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]
        if fun == "mc_project.releases":
            return RELEASES
        if fun == "mc_project.rollback":
            return {"id": "x", "kind": "rollback", "from": "r2", "to": args[1] if len(args) > 1 else "r1",
                    "result": True}
        raise AssertionError(fun)
    return call


def status(deploying=False, last=None):
    return {"name": "a1", "env": "staging", "mode": "cooking", "live": True, "release": "r2", "commit": "b" * 40,
            "since": "2026-12-01T11:00:00", "url": "http://127.0.0.1:8000/", "app": {"web-a": "RUNNING"},
            "deploying": deploying, "interrupted": [], "last": last}


def test_the_project_panel_shows_the_live_release_and_rollback_is_confirmed_first(client, monkeypatch):
    calls = []
    monkeypatch.setattr(Controller, "call", minion_answers([status(last={
        "id": "r2", "kind": "deploy", "status": "success", "who": "alice", "ended": "2026-12-01T11:00:00"})], calls))
    log_in(client, "alice")
    panel = client.get("/web/environments/a1/projects/a1/panel").text
    assert "<b>r2</b>" in panel and "by alice" in panel and "running" in panel
    assert panel.count("Roll back to this") == 1  # not on the live release
    token = csrf_of(client)
    confirm = client.post("/web/environments/a1/projects/a1/rollback", data={"csrf_token": token, "release": "r1"})
    assert confirm.status_code == 200 and "Roll back a1/a1?" in confirm.text
    assert not [call for call in calls if call[1] == "mc_project.rollback"]  # nothing done yet
    done = client.post("/web/environments/a1/projects/a1/rollback",
                       data={"csrf_token": token, "release": "r1", "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"].startswith("/web/jobs/")
    job_path = done.headers["location"]
    assert "event: end" in client.get(job_path + "/events").text  # the job ran to its end
    page = client.get(job_path).text
    assert "Rolling a1/a1 back to r1: job {}.".format(job_path.rsplit("/", 1)[1]) in page
    assert 'id="job-status">success' in page and "project:rollback" in page
    assert '<a href="/web/environments/a1">a1</a>' in page
    assert ("env-a1", "mc_project.rollback", ("a1", "r1")) in calls


def test_a_refused_rollback_goes_back_with_its_sentence_and_makes_no_job(client, ctl, monkeypatch):
    calls = []
    monkeypatch.setattr(Controller, "call", minion_answers([status()], calls))
    log_in(client, "alice")
    refused = client.post("/web/environments/a1/projects/a1/rollback",
                          data={"csrf_token": csrf_of(client), "release": "r9", "confirmed": "yes"})
    assert refused.status_code == 303 and refused.headers["location"] == "/web/environments/a1"
    assert "Release r9 is not a kept good release of a1; kept: r1, r2." in client.get("/web/environments/a1").text
    assert not [call for call in calls if call[1] == "mc_project.rollback"]
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Job.id)) is None
    asked = len(calls)
    other = client.post("/web/environments/b1/projects/b1/rollback",
                        data={"csrf_token": csrf_of(client), "release": "r1", "confirmed": "yes"})
    assert other.status_code == 404 and len(calls) == asked  # another tenant's: its minion is not asked


def test_a_project_panel_whose_minion_does_not_answer_says_so(client, monkeypatch):
    def silent(self, minion, fun, *args, **kwargs):
        raise CorpusError("Minion {} did not answer {} within 60 s.".format(minion, fun))
    monkeypatch.setattr(Controller, "call", silent)
    log_in(client, "alice")
    panel = client.get("/web/environments/a1/projects/a1/panel")
    assert panel.status_code == 200 and "Minion env-a1 did not answer mc_project.status within 60 s." in panel.text


def test_a_deploy_streams_its_steps_as_they_are_recorded(client, monkeypatch):
    before = {"id": "r2", "kind": "deploy", "status": "success"}
    running = {"id": "r3", "kind": "deploy", "status": "running", "commit": "c" * 40, "mode": "cooking",
               "steps": [{"step": "snapshot_data", "state": "done"}, {"step": "make_release", "state": "doing"}]}
    ended = dict(running, status="success", steps=[{"step": "snapshot_data", "state": "done"},
                                                   {"step": "make_release", "state": "done"},
                                                   {"step": "move_traffic", "state": "done"}])
    monkeypatch.setattr(Controller, "call", minion_answers(
        [status(last=before), status(True, running), status(False, ended)], []))
    monkeypatch.setattr(live, "DEPLOY_POLL", 0)
    log_in(client, "alice")
    lines = []
    with client.stream("GET", "/web/environments/a1/projects/a1/deploys?after=r2") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            lines.append(line)
            if line.startswith("event: deployed"):
                break
    shown = [line[len("data: "):] for line in lines if line.startswith("data: ")]
    assert shown == ['<div class="line">deploy r3 of cccccccccccc (cooking)</div>',
                     '<div class="line">-----&gt; snapshot_data</div>',
                     '<div class="line">       snapshot_data done</div>',
                     '<div class="line">-----&gt; make_release</div>',
                     '<div class="line">       make_release done</div>',
                     '<div class="line">-----&gt; move_traffic</div>',
                     '<div class="line">       move_traffic done</div>',
                     '<div class="line">deploy success</div>']
    assert lines[-1] == "event: deployed"
    watch = client.get("/web/environments/a1/projects/a1/watch?after=r2").text
    assert 'sse-connect="/web/environments/a1/projects/a1/deploys?after=r2"' in watch


def test_a_deploy_that_ended_before_the_stream_was_up_is_still_shown(client, monkeypatch):
    ended = {"id": "r3", "kind": "deploy", "status": "failed", "commit": "c" * 40, "mode": "cooking",
             "error": "phase build failed", "steps": [{"step": "make_release", "state": "doing"}]}
    monkeypatch.setattr(Controller, "call", minion_answers([status(False, ended)], []))
    monkeypatch.setattr(live, "DEPLOY_POLL", 0)
    log_in(client, "alice")
    with client.stream("GET", "/web/environments/a1/projects/a1/deploys?after=r2") as answer:
        lines = []
        for line in answer.iter_lines():
            lines.append(line)
            if line.startswith("event: deployed"):
                break
    assert "data: <div class=\"line\">deploy failed: phase build failed</div>" in lines


def test_an_editable_project_offers_no_rollback(client, monkeypatch):
    editable = dict(status(), mode="editable", release=None)
    monkeypatch.setattr(Controller, "call", minion_answers([editable], []))
    log_in(client, "alice")
    panel = client.get("/web/environments/a1/projects/a1/panel").text
    assert "Roll back to this" not in panel and "keeps no releases to roll back to" in panel


def test_the_deploy_watch_targets_itself(client, monkeypatch):
    """The panel's details element targets its .watch, and htmx passes hx-target down to
    what is swapped in: the stream's elements must name their own target."""
    monkeypatch.setattr(Controller, "call", minion_answers([status()], []))
    log_in(client, "alice")
    watch = client.get("/web/environments/a1/projects/a1/watch?after=").text
    assert watch.count('hx-target="this"') == 2
