"""The chat bridge without Salt: commands parsed, progress texts, the shared secret kept
as a hash and compared, the routes in process (FastAPI's TestClient) over an SQLite
inventory, bounded retries against a real HTTP sink, and signed events only."""

import json
import os
import re

import pytest
from fastapi.testclient import TestClient

from mc_project import jobs
from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.chat import actions, commands, messages, outgoing, settings
from mc_project.cli import main
from mc_project.controller import events, operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.chat_models import ChatSettings
from mc_project.inventory.models import ComputeNode, Environment, Project, Secret, Tenant
from support.api_answers import error, login
from support.wait import wait_for
from support.webhook import WebhookSink

SECRET = "s3cret-of-alpha-chat"
HOOK_PATH = "/hooks/T000/B000/credential-part"


# --------------------------------------------------------------------------- commands

@pytest.mark.parametrize("text, trigger, parsed", [
    ("status web", None, ("status", "web")),
    ("corpus deploy web-1", "corpus", ("deploy", "web-1")),
    ("  REDEPLOY   shop.prod ", None, ("redeploy", "shop.prod")),
    ("/corpus status web", None, ("status", "web")),
    ("@corpus status `web`", None, ("status", "web")),
    ("status", None, None),
    ("status web now", None, None),
    ("destroy web", None, None),
    ("status ../etc", None, None),
    ("", None, None),
    (None, None, None),
])
def test_commands_are_parsed(text, trigger, parsed):
    assert commands.parse(text, trigger) == parsed


# --------------------------------------------------------------------------- messages

JOB = {"id": 7, "kind": "site_walk", "target": "node1", "steps": 2, "error": None, "seconds": 1.24,
       "step_seconds": 0.31}


def test_progress_texts_name_the_job_its_kind_target_and_step():
    started = messages.event_of("corpus/job/7/running", {"job": 7, "status": "running"})
    step = messages.event_of("corpus/job/7/step/1/success", {"job": 7, "step": 1, "name": "walk:fetch"})
    done = messages.event_of("corpus/job/7/success", {})
    assert messages.text(started, JOB) == "[corpus] Job 7 (site_walk node1) started: 2 steps."
    assert messages.text(step, JOB) == "[corpus] Job 7 (site_walk node1) step 1/2 walk:fetch done in 0.3 s."
    assert messages.text(done, JOB) == "[corpus] Job 7 (site_walk node1) done: 2 steps in 1.2 s."
    failed = messages.event_of("corpus/job/7/failed", {})
    assert messages.text(failed, dict(JOB, error="failed at step 2/2 walk:verdict: 1 of 2 targets failed")) == \
        "[corpus] Job 7 (site_walk node1) FAILED at step 2/2 walk:verdict: 1 of 2 targets failed."


@pytest.mark.parametrize("tag", ["corpus/job/7/pending", "corpus/job/7/step/1/running",
                                 "corpus/job/7/step/1/failed", "corpus/job/7/step/1/undone",
                                 "corpus/check/m1/http", "corpus/job/x/running"])
def test_events_chat_is_not_told_of(tag):
    assert messages.event_of(tag, {}) is None


# --------------------------------------------------------------------------- settings

@pytest.fixture
def url(ctl):
    with db.session(ctl.url) as sess:
        sess.add_all([Tenant(name="alpha"), Tenant(name="beta")])
    yield ctl.url
    db.dispose()


def _tenant(url, name):
    with db.session(url) as sess:
        return sess.query(Tenant).filter_by(name=name).one().id


def test_the_secret_is_kept_as_a_hash_and_the_webhook_encrypted(url, opts):
    alpha, beta = _tenant(url, "alpha"), _tenant(url, "beta")
    with settings_writing(opts) as keyring, db.session(url) as sess:
        settings.put(sess, keyring, alpha, webhook="https://chat.example/hooks/abc", secret=SECRET,
                     users={"al": "alice"}, who="bob")
    with db.session(url) as sess:
        stored = sess.get(ChatSettings, alpha).secret_hash
        assert SECRET not in stored and stored == settings.secret_hash(SECRET)
        assert all("chat.example" not in row.value for row in sess.query(Secret))
        assert settings.tenant_of_secret(sess, SECRET) == alpha
        assert settings.tenant_of_secret(sess, SECRET + "x") is None
        assert settings.tenant_of_secret(sess, "") is None
        assert settings.login_of(sess, alpha, "al") == "alice" and settings.login_of(sess, alpha, "bo") is None
        shown = settings.shown(sess, opts["corpus"]["secrets_key"], alpha, "alpha")
    assert shown["webhook"] == "https://chat.example/…" and shown["users"] == {"al": "alice"}
    for bad, words in (({"secret": "short"}, "16 to 256"), ({"secret": SECRET}, "another tenant"),
                       ({"secret": SECRET + "-b", "webhook": "ftp://x/y"}, "http"),
                       ({"secret": SECRET + "-b", "users": {"a b": "x"}}, "chat user name"),
                       ({}, "first chat settings")):
        with pytest.raises(CorpusError, match=words), settings_writing(opts) as keyring, db.session(url) as sess:
            settings.put(sess, keyring, beta, **bad)
    with db.session(url) as sess:
        assert sess.get(ChatSettings, beta) is None


def settings_writing(opts):
    return secrets_crypto.writing(opts["corpus"]["secrets_key"])


# --------------------------------------------------------------------------- the routes

@pytest.fixture
def client(opts, ctl, monkeypatch):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(ctl.url, "val", "val-pw", "alpha", "viewer")
    users.add_local_user(ctl.url, "ada", "ada-pw", "alpha", "admin")
    users.add_local_user(ctl.url, "bob", "bob-pw", "beta", "admin")
    with db.session(ctl.url) as sess:
        alpha = sess.query(Tenant).filter_by(name="alpha").one()
        node = ComputeNode(name="node1", address="192.0.2.1", slots=4, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        env = Environment(name="web", env_type="dev", status="active", tenant_id=alpha.id, node_id=node.id,
                          ip="10.0.0.2", minion_id="env-web", project="shop")
        env.projects.append(Project(name="shop"))
        sess.add(env)
    with TestClient(app) as test_client:
        yield test_client
    db.dispose()


def ok(answer, status=200):
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def chat(client, text, user="al", secret=SECRET, **extra):
    return client.post("/v1/chat", data=dict({"token": secret, "user_name": user, "text": text}, **extra))


def test_admins_set_show_and_remove_a_tenants_chat(client):
    ada, alice, bob = login(client, "ada"), login(client, "alice"), login(client, "bob")
    body = {"webhook": "https://chat.example" + HOOK_PATH, "secret": SECRET, "users": {"al": "alice"}}
    assert "admin is needed" in error(client.put("/v1/tenants/alpha/chat", json=body, headers=alice), 403)
    assert "No tenant" in error(client.put("/v1/tenants/alpha/chat", json=body, headers=bob), 404)
    assert "no chat settings" in error(client.get("/v1/tenants/alpha/chat", headers=ada), 404)
    shown = ok(client.put("/v1/tenants/alpha/chat", json=body, headers=ada))
    assert shown["webhook"] == "https://chat.example/…" and shown["secret"] == "set"
    assert SECRET not in str(shown) and HOOK_PATH not in str(shown)
    # The webhook and the secret are kept when a new PUT leaves them out.
    shown = ok(client.put("/v1/tenants/alpha/chat", json={"users": {"al": "alice", "v": "val"}}, headers=ada))
    assert shown["webhook"] == "https://chat.example/…" and shown["users"] == {"al": "alice", "v": "val"}
    assert ok(client.get("/v1/tenants/alpha/chat", headers=ada)) == shown
    assert "16" in str(client.put("/v1/tenants/alpha/chat", json={"secret": "short"}, headers=ada).json())
    ok(client.delete("/v1/tenants/alpha/chat", headers=ada), 204)
    error(client.delete("/v1/tenants/alpha/chat", headers=ada), 404)


def test_chat_commands_check_the_secret_then_the_user(client, monkeypatch, ctl):
    ada = login(client, "ada")
    ok(client.put("/v1/tenants/alpha/chat", json={"secret": SECRET, "users": {"al": "alice", "v": "val",
                                                                              "ghost": "nobody"}}, headers=ada))
    wrong = chat(client, "status web", secret="not-the-secret-at-all")
    assert error(wrong, 401) == "Wrong or missing chat secret."
    assert chat(client, "status web", secret="").status_code == 401
    assert chat(client, "status web", user="mallory").status_code == 403
    assert "acts as nobody, who is not a member" in error(chat(client, "status web", user="ghost"), 403)
    assert ok(chat(client, "reboot web"))["text"] == commands.HELP

    answer = ok(chat(client, "corpus status web", trigger_word="corpus"))["text"]
    assert answer == "Environment web (dev, tenant alpha) is active on node node1; projects: shop. " \
                     "No job has run on it."

    def fail(ctx):
        raise CorpusError("the disk is full")

    jobs.Jobs(ctl.url, registry={"disk:grow": (fail, None)}).submit("resize_env", "web", ["disk:grow"])
    answer = ok(client.post("/v1/chat", json={"user_name": "v", "text": "status web"},
                            headers={"Authorization": "Token " + SECRET}))["text"]
    assert answer.endswith("Last job: Job 1 (resize_env web) failed at step 1/1 disk:grow: the disk is full.")
    assert ok(chat(client, "status nope"))["text"] == "No environment named nope."

    # A viewer may not deploy; a deployer may, once the environment's minion answers.
    assert ok(chat(client, "deploy web", user="v"))["text"] == "Your role in this tenant is viewer; deployer is needed."
    monkeypatch.setattr(Controller, "ping", lambda self, minion, timeout=5: False)
    assert ok(chat(client, "deploy web"))["text"] == "Environment web's minion does not answer; nothing was started."
    # The minion answering, the deploy is a job of the environment's tenant: project:deploy.
    monkeypatch.setattr(Controller, "ping", lambda self, minion, timeout=5: True)
    asked = []
    monkeypatch.setattr(Controller, "call", lambda self, minion, fun, *args, **kwargs: asked.append(
        (minion, fun, args, kwargs.get("who"))) or {"id": "r2", "status": "success"})
    assert ok(chat(client, "deploy web"))["text"] == "Deploy of project shop on environment web started: job 2."
    wait_for(lambda: jobs.Jobs(ctl.url).status(2)["status"] == "success", timeout=10, what="the deploy job")
    state = jobs.Jobs(ctl.url).status(2)
    assert state["kind"] == "deploy" and state["clipboard"]["release"] == "r2"
    assert asked == [("env-web", "mc_project.deploy", ("shop",), "alice")]
    with db.session(ctl.url) as sess:
        assert sess.get(jobs.Job, 2).tenant_id == _tenant(ctl.url, "alpha")
    monkeypatch.delattr(operations, "redeploy", raising=False)
    assert ok(chat(client, "redeploy web"))["text"] == actions.NO_REDEPLOY


# --------------------------------------------------------------------------- outgoing

def test_a_webhook_is_tried_a_bounded_number_of_times():
    poster = outgoing.Poster(attempts=3, backoff=0.01)
    with WebhookSink(status=503) as sink:
        assert poster.post(sink.url(HOOK_PATH), "hello") is False
        assert [body for _path, body in sink.posts] == [{"text": "hello"}] * 3
    with WebhookSink(status=404) as sink:  # a webhook that is gone is not asked again
        assert poster.post(sink.url(HOOK_PATH), "hello") is False
        assert len(sink.posts) == 1
    with WebhookSink() as sink:
        assert poster.post(sink.url(HOOK_PATH), "hello") is True


def test_only_signed_events_of_a_tenant_with_a_webhook_make_messages(url, opts, caplog):
    alpha = _tenant(url, "alpha")
    os.makedirs(opts["cachedir"], exist_ok=True)
    notifier = outgoing.Notifier(opts, url, opts["corpus"]["secrets_key"])
    fired = []
    manager = jobs.Jobs(url, registry={"a:b": (lambda ctx: None, None)}, fire=lambda tag, data: fired.append(
        (tag, events.sign(events.key(opts), tag, data))))
    job_id = manager.create("site_walk", "node1", ["a:b"])
    with db.session(url) as sess:
        sess.get(jobs.Job, job_id).tenant_id = alpha
    manager.run(job_id)
    assert [notifier.message(tag, data) for tag, data in fired] == [None] * len(fired)  # no webhook yet
    with settings_writing(opts) as keyring, db.session(url) as sess:
        settings.put(sess, keyring, alpha, webhook="https://chat.example" + HOOK_PATH, secret=SECRET)
    found = [notifier.message(tag, data) for tag, data in fired]
    assert {one[0] for one in found if one} == {"https://chat.example" + HOOK_PATH}
    texts = [one[1] for one in found if one]
    assert len(texts) == 3 and texts[0] == "[corpus] Job 1 (site_walk node1) started: 1 step."
    assert re.fullmatch(r"\[corpus\] Job 1 \(site_walk node1\) step 1/1 a:b done in [0-9.]+ s\.", texts[1])
    assert re.fullmatch(r"\[corpus\] Job 1 \(site_walk node1\) done: 1 step in [0-9.]+ s\.", texts[2])
    tag, data = fired[-1]
    assert notifier.message(tag, dict(data, corpus_signature="0" * 64)) is None
    assert HOOK_PATH not in caplog.text


# --------------------------------------------------------------------------- the CLI

def test_the_chat_verbs(client, monkeypatch, capsys, tmp_path):
    token = client.post("/v1/login", json={"username": "ada", "password": "ada-pw"}).json()["token"]
    monkeypatch.setattr(main, "TRANSPORT", client._transport)

    def corpus(*args):
        code = main.run(["--url", "http://testserver", "--token", token, *args])
        out, err = capsys.readouterr()
        return code, out, err

    secret_file = tmp_path / "chat.secret"
    secret_file.write_text(SECRET + "\n")
    code, out, err = corpus("chat", "set", "--webhook", "https://chat.example" + HOOK_PATH, "--secret-file",
                            str(secret_file), "--user", "al=alice", "--user", "v=val")
    assert code == 0, err
    assert "https://chat.example/…" in out and "al=alice, v=val" in out and HOOK_PATH not in out
    assert SECRET not in out
    assert chat(client, "status web").status_code == 200  # the secret read from the file is the one
    code, out, _err = corpus("--json", "chat", "show")
    assert code == 0 and json.loads(out)["users"] == {"al": "alice", "v": "val"}
    assert corpus("chat", "set", "--user", "al") == (2, "", "corpus: --user takes CHATNAME=LOGIN, not 'al'.\n")
    code, _out, err = corpus("chat", "set", "--secret-file", str(tmp_path / "none"))
    assert code == 2 and "Cannot read the secret file" in err
    code, _out, err = corpus("chat", "set", "--secret-file", str(secret_file), "--tenant", "beta")
    assert code == 2 and err == "corpus: No tenant named beta.\n"
    assert corpus("chat", "rm") == (0, "Chat settings of alpha removed.\n", "")
    code, _out, err = corpus("chat", "show")
    assert code == 2 and err == "corpus: Tenant alpha has no chat settings.\n"
