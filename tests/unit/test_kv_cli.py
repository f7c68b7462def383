"""``corpus kv`` over the API in process (its transport handed to the CLI): a raw value
printed as stored, --json, --recurse, --cas refused with exit 1, rm, and bad input."""

import json

import pytest
from fastapi.testclient import TestClient

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.cli import main
from mc_project.controller.runtime import Controller
from mc_project.inventory import db


@pytest.fixture
def corpus(opts, ctl, monkeypatch, capsysbinary):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "alice", "alice-pw", "alpha", "deployer")
    with TestClient(app) as client:
        token = client.post("/v1/login", json={"username": "alice", "password": "alice-pw"}).json()["token"]
        monkeypatch.setattr(main, "TRANSPORT", client._transport)

        def run(*args):
            code = main.run(["--url", "http://testserver", "--token", token, *args])
            out, err = capsysbinary.readouterr()
            return code, out, err
        yield run
    db.dispose()


def test_the_kv_verbs(corpus):
    assert corpus("kv", "put", "app/db/host", "db1") == (0, b"Key app/db/host set (index 1).\n", b"")
    assert corpus("kv", "get", "app/db/host") == (0, b"db1\n", b"")
    code, out, _err = corpus("kv", "get", "app/db/host", "--json")
    assert code == 0 and json.loads(out)["modify_index"] == 1
    code, out, err = corpus("kv", "put", "app/db/host", "db2", "--cas", "7")
    assert code == 1 and err == b"corpus: Key app/db/host was not set: its modify index is 1, not 7.\n"
    code, out, err = corpus("--json", "kv", "put", "app/db/host", "db2", "--cas", "1")
    assert code == 0 and json.loads(out) == {"key": "app/db/host", "written": True, "index": 2}
    code, out, _err = corpus("kv", "get", "app/", "--recurse")
    assert code == 0 and b"app/db/host" in out and b"db2" in out
    assert corpus("kv", "rm", "app/db/host", "--cas", "1")[0] == 1
    assert corpus("kv", "rm", "app/", "--recurse") == (0, b"Keys under app/ deleted.\n", b"")
    assert corpus("kv", "get", "app/db/host") == (2, b"", b"corpus: No key app/db/host in this store.\n")
    code, _out, err = corpus("kv", "rm", "app/", "--recurse", "--cas", "1")
    assert code == 2 and b"not with --recurse" in err
    code, _out, err = corpus("kv", "put", "/abs", "x")
    assert code == 2 and b"does not start with '/'" in err
