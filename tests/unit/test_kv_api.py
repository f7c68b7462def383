"""``/v1/kv`` in process (FastAPI's TestClient) over an SQLite inventory: values as bytes,
compare-and-set, prefixes, the index header, blocking reads, roles and tenants."""

import base64
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.health import kv, kv_wait
from mc_project.inventory import db
from mc_project.inventory.models import Tenant
from support.api_answers import error, login


@pytest.fixture(scope="module")
def app_and_url(tmp_path_factory):
    """One app for the module (logins are slow); each test uses keys of its own."""
    base = tmp_path_factory.mktemp("kv-api")
    opts = {"corpus": {"db_url": "sqlite:///{}".format(base / "inventory.sqlite"),
                       "secrets_key": str(base / "secrets.key"), "master_address": "127.0.0.1"},
            "cachedir": str(base / "cache"), "sock_dir": str(base / "sock")}
    ctl = Controller(opts)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(ctl.url, "val", "val-pw", "alpha", "viewer")
    users.add_local_user(ctl.url, "bob", "bob-pw", "beta", "admin")
    yield app, ctl.url
    db.dispose()


@pytest.fixture(scope="module")
def client(app_and_url):
    with TestClient(app_and_url[0]) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def heads(client):
    return {user: login(client, user) for user in ("alice", "val", "bob")}


def index(answer):
    return int(answer.headers["X-Corpus-Index"])


def test_put_get_raw_and_json(client, heads):
    h = heads["alice"]
    answer = client.put("/v1/kv/app/config.yaml?flags=3", content=b"\x00binary\xff", headers=h)
    assert answer.status_code == 200 and answer.json() is True
    made = index(answer)
    got = client.get("/v1/kv/app/config.yaml", headers=h)
    assert got.status_code == 200 and index(got) == made
    body = got.json()
    assert base64.b64decode(body["value"]) == b"\x00binary\xff"
    assert {k: body[k] for k in ("key", "flags", "create_index", "modify_index")} == {
        "key": "app/config.yaml", "flags": 3, "create_index": made, "modify_index": made}
    raw = client.get("/v1/kv/app/config.yaml?raw=true", headers=h)
    assert raw.content == b"\x00binary\xff" and raw.headers["content-type"] == "application/octet-stream"
    missing = client.get("/v1/kv/app/nothing", headers=h)
    assert "No key app/nothing" in error(missing, 404) and index(missing) == 0


def test_cas_answers_true_or_false(client, heads):
    h = heads["alice"]
    made = client.put("/v1/kv/lock?cas=0", content=b"me", headers=h)
    assert made.json() is True
    refused = client.put("/v1/kv/lock?cas=0", content=b"you", headers=h)
    assert refused.json() is False and index(refused) == index(made)
    taken = client.put("/v1/kv/lock?cas={}".format(index(made)), content=b"you", headers=h)
    assert taken.json() is True and index(taken) > index(made)
    assert client.delete("/v1/kv/lock?cas={}".format(index(made)), headers=h).json() is False
    assert client.delete("/v1/kv/lock?cas={}".format(index(taken)), headers=h).json() is True
    assert client.get("/v1/kv/lock", headers=h).status_code == 404


def test_recurse_keys_and_delete_a_prefix(client, heads):
    h = heads["alice"]
    for key in ("tree/web/a", "tree/web/b/c", "tree/db/x"):
        client.put("/v1/kv/" + key, content=key.encode(), headers=h)
    items = client.get("/v1/kv/tree/web/?recurse=true", headers=h).json()["items"]
    assert [item["key"] for item in items] == ["tree/web/a", "tree/web/b/c"]
    assert client.get("/v1/kv/tree/?keys=true&separator=/", headers=h).json() == {"keys": ["tree/db/", "tree/web/"]}
    deleted = client.delete("/v1/kv/tree/web/?recurse=true", headers=h)
    assert deleted.json() is True
    listed = client.get("/v1/kv/tree/?recurse=true", headers=h)
    assert [item["key"] for item in listed.json()["items"]] == ["tree/db/x"]
    assert index(listed) == index(deleted)


def test_a_blocking_read_is_woken_by_a_write(client, heads):
    h = heads["alice"]
    first = client.put("/v1/kv/feature", content=b"off", headers=h)
    seen = {}

    def watch():
        started = time.monotonic()
        answer = client.get("/v1/kv/feature?raw=true&wait=20s&index={}".format(index(first)), headers=h)
        seen.update(answer=answer, seconds=time.monotonic() - started)

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(1.0)
    assert watcher.is_alive()  # still waiting: nothing changed
    client.put("/v1/kv/feature", content=b"on", headers=h)
    watcher.join(20)
    assert seen["answer"].content == b"on" and index(seen["answer"]) > index(first)
    assert seen["seconds"] < 5


def test_a_blocking_read_ends_with_its_wait_and_sees_other_keys_change_nothing(client, heads):
    h = heads["alice"]
    known = index(client.put("/v1/kv/watched", content=b"1", headers=h))
    started = time.monotonic()
    done = {}

    def watch():
        done["answer"] = client.get("/v1/kv/watched?index={}&wait=1500ms".format(known), headers=h)

    watcher = threading.Thread(target=watch)
    watcher.start()
    client.put("/v1/kv/unrelated", content=b"x", headers=h)
    watcher.join(20)
    assert time.monotonic() - started >= 1.4
    assert done["answer"].status_code == 200 and index(done["answer"]) == known
    # An index the key no longer has (it went back) is answered at once.
    quick = time.monotonic()
    assert client.get("/v1/kv/watched?index={}&wait=10s".format(known + 99), headers=h).status_code == 200
    assert time.monotonic() - quick < 5


def test_a_blocking_read_sees_another_process_write_by_polling(client, heads, app_and_url):
    """A write this process did not signal (another API process's) is seen by the poll."""
    h = heads["alice"]
    known = index(client.put("/v1/kv/polled", content=b"1", headers=h))
    done = {}

    def watch():
        done["answer"] = client.get("/v1/kv/polled?raw=true&index={}&wait=20s".format(known), headers=h)
        done["at"] = time.monotonic()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.5)
    with db.session(app_and_url[1]) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
        kv.put(sess, alpha, "polled", b"2")
    written = time.monotonic()
    watcher.join(20)
    assert done["answer"].content == b"2"
    assert done["at"] - written < 1 + kv_wait.POLL_SECONDS


def test_roles_and_tenants(client, heads):
    assert client.put("/v1/kv/shared", content=b"alpha", headers=heads["alice"]).json() is True
    # A viewer reads and may not write.
    assert client.get("/v1/kv/shared?raw=true", headers=heads["val"]).content == b"alpha"
    assert "deployer is needed" in error(client.put("/v1/kv/shared?tenant=alpha", content=b"v",
                                                    headers=heads["val"]), 403)
    assert "deployer or admin of no tenant" in error(client.put("/v1/kv/shared", content=b"v",
                                                                headers=heads["val"]), 403)
    # Another tenant's store does not exist for bob; his own has its own key of that name.
    assert "No tenant named alpha" in error(client.get("/v1/kv/shared?tenant=alpha", headers=heads["bob"]), 404)
    assert client.get("/v1/kv/shared", headers=heads["bob"]).status_code == 404
    assert client.put("/v1/kv/shared", content=b"beta", headers=heads["bob"]).json() is True
    assert client.get("/v1/kv/?keys=true", headers=heads["bob"]).json() == {"keys": ["shared"]}
    assert client.get("/v1/kv/shared?raw=true", headers=heads["alice"]).content == b"alpha"
    assert error(client.get("/v1/kv/shared"), 401)


def test_bad_requests_are_one_sentence(client, heads):
    h = heads["alice"]
    assert "must not be empty" in error(client.put("/v1/kv/", content=b"x", headers=h), 400)
    assert "does not start with" in error(client.put("/v1/kv//abs", content=b"x", headers=h), 400)
    assert "wait is a duration" in error(client.get("/v1/kv/x?index=1&wait=soon", headers=h), 400)
    assert "separator goes with keys" in error(client.get("/v1/kv/x?separator=/", headers=h), 400)
    assert error(client.put("/v1/kv/x?cas=-1", content=b"x", headers=h), 422)
    assert "at most" in error(client.put("/v1/kv/big", content=b"x" * (512 * 1024 + 1), headers=h), 413)
    assert "not to a prefix" in error(client.delete("/v1/kv/x?recurse=true&cas=3", headers=h), 400)
    assert client.get("/v1/kv/none/?recurse=true", headers=h).json() == {"items": []}
