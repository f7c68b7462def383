"""Chat through the real corpus-api (and its salt-master's event bus): tenant beta's
admin sets its chat; a site walk's progress reaches the webhook sink in order
(started, each step, done), a failed walk's message names the failed step and why;
``POST /v1/chat`` answers ``status`` and refuses a wrong secret, changing nothing."""

import random
import re
import uuid

import pytest
from sqlalchemy import delete, select

from mc_project.common.vocabulary import APP_PORT
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job, Project, Tenant
from support.http_backends import backend
from support.webhook import WebhookSink
from support.wait import wait_for

SECRET = "beta-chat-" + uuid.uuid4().hex
HOOK_PATH = "/hooks/TBETA/BCHAT/credential-" + uuid.uuid4().hex[:8]
STEP = r"[0-9.]+ s"


@pytest.fixture(scope="module")
def sink():
    with WebhookSink() as server:
        yield server


@pytest.fixture(scope="module")
def site(inventory):
    """Node chatnode-<tag> of beta and its environment chat-<tag>, whose app answers on a
    loopback address of its own."""
    tag = uuid.uuid4().hex[:6]
    address = "127.0.{}.{}".format(random.randint(100, 199), random.randint(2, 250))
    node_name, env_name = "chatnode-" + tag, "chat-" + tag
    with db.session(inventory) as sess:
        beta = sess.scalar(select(Tenant.id).where(Tenant.name == "beta"))
        node = ComputeNode(name=node_name, address=address, slots=2, tenant_id=beta)
        sess.add(node)
        sess.flush()
        env = Environment(name=env_name, env_type="dev", status="active", tenant_id=beta, node_id=node.id,
                          ip=address, minion_id="env-" + env_name, project="shop", domains=[])
        env.projects.append(Project(name="shop"))
        sess.add(env)
    app = backend(env_name, host=address, port=APP_PORT)
    try:
        yield node_name, env_name, app
    finally:
        app.shutdown()
        app.server_close()
        # The other tests of this directory share the inventory: leave it as it was.
        with db.session(inventory) as sess:
            sess.execute(delete(Job).where(Job.target == node_name))
            sess.execute(delete(Environment).where(Environment.name == env_name))
            sess.execute(delete(ComputeNode).where(ComputeNode.name == node_name))


@pytest.fixture(scope="module")
def chat_set(http, login, sink):
    bob = login("bob")
    body = {"webhook": sink.url(HOOK_PATH), "secret": SECRET, "users": {"bobby": "bob", "caro": "carol"}}
    assert http.put("/v1/tenants/beta/chat", json=body, headers=login("alice")).status_code == 404
    answer = http.put("/v1/tenants/beta/chat", json=body, headers=bob)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["webhook"] == "http://127.0.0.1:{}/…".format(sink.port) and shown["secret"] == "set"
    assert HOOK_PATH not in answer.text and SECRET not in answer.text
    yield bob
    assert http.delete("/v1/tenants/beta/chat", headers=bob).status_code == 204


def _walk(http, headers, node_name):
    answer = http.put("/v1/sites/{}/walks".format(node_name), json={"timeout": 3}, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()["walk_id"]


def _texts(sink, walk_id, count):
    """The texts of job ``walk_id`` the sink received, once it has ``count`` of them."""
    label = "[corpus] Job {} (".format(walk_id)

    def arrived():
        found = [body["text"] for path, body in list(sink.posts)
                 if path == HOOK_PATH and body["text"].startswith(label)]
        return found if len(found) >= count else None
    return wait_for(arrived, timeout=60, what="{} chat messages of job {}".format(count, walk_id))


def test_a_walk_posts_its_progress_in_order_and_a_failed_one_its_step_and_reason(http, chat_set, site, sink):
    node_name, env_name, app = site
    walk_id = _walk(http, chat_set, node_name)
    texts = _texts(sink, walk_id, 4)
    head = r"\[corpus\] Job {} \(site_walk {}\) ".format(walk_id, node_name)
    patterns = [head + r"started: 2 steps\.", head + r"step 1/2 walk:fetch done in " + STEP + r"\.",
                head + r"step 2/2 walk:verdict done in " + STEP + r"\.", head + r"done: 2 steps in " + STEP + r"\."]
    assert len(texts) == 4 and all(re.fullmatch(p, t) for p, t in zip(patterns, texts)), texts

    app.shutdown()
    app.server_close()
    walk_id = _walk(http, chat_set, node_name)
    texts = _texts(sink, walk_id, 3)
    assert texts[0].endswith("started: 2 steps.") and "step 1/2 walk:fetch done" in texts[1]
    assert texts[2].startswith("[corpus] Job {} (site_walk {}) FAILED at step 2/2 walk:verdict: "
                               "1 of 1 targets failed: backend {} (".format(walk_id, node_name, env_name)), texts[2]
    assert len(texts) == 3


def test_chat_commands_answer_status_and_refuse_a_wrong_secret(http, chat_set, site, sink):
    _node_name, env_name, _app = site
    answer = http.post("/v1/chat", data={"token": SECRET, "user_name": "bobby", "trigger_word": "corpus",
                                         "text": "corpus status " + env_name})
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "Environment {} (dev, tenant beta) is active on node chatnode-{}; " \
                                    "projects: shop. No job has run on it.".format(env_name, env_name[5:])
    assert http.post("/v1/chat", json={"user_name": "bobby", "text": "help"},
                     headers={"X-Corpus-Chat-Secret": SECRET}).json()["text"].startswith("I know: `status NAME`")
    # carol is no member of beta; nobody is user mallory.
    assert http.post("/v1/chat", data={"token": SECRET, "user_name": "caro", "text": "status x"}).status_code == 403
    assert http.post("/v1/chat", data={"token": SECRET, "user_name": "mallory", "text": "status x"}).status_code == 403

    jobs_before = http.get("/v1/jobs", headers=chat_set).json()["total"]
    posts_before = len(sink.posts)
    shown_before = http.get("/v1/tenants/beta/chat", headers=chat_set).json()
    for secret in ("wrong-" + SECRET, "", SECRET[:-1]):
        refused = http.post("/v1/chat", data={"token": secret, "user_name": "bobby", "text": "deploy " + env_name})
        assert refused.status_code == 401 and refused.json()["error"]["message"] == "Wrong or missing chat secret."
    assert http.post("/v1/chat", json={"user_name": "bobby", "text": "deploy " + env_name}).status_code == 401
    assert http.get("/v1/jobs", headers=chat_set).json()["total"] == jobs_before
    assert http.get("/v1/tenants/beta/chat", headers=chat_set).json() == shown_before
    assert len(sink.posts) == posts_before

    # A deploy is refused in one sentence when the environment's minion does not answer.
    answer = http.post("/v1/chat", data={"token": SECRET, "user_name": "bobby", "text": "deploy " + env_name})
    assert answer.json()["text"] == "Environment {}'s minion does not answer; nothing was started.".format(env_name)
    assert http.get("/v1/jobs", headers=chat_set).json()["total"] == jobs_before
