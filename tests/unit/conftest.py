"""Fixtures of the API's unit tests: a controller over a fresh SQLite inventory, no Salt."""

import pytest
from fastapi.testclient import TestClient

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.inventory import db


@pytest.fixture
def opts(tmp_path):
    """Master options of a controller whose inventory and secrets key are under ``tmp_path``."""
    return {"corpus": {"db_url": "sqlite:///{}".format(tmp_path / "inventory.sqlite"),
                       "secrets_key": str(tmp_path / "secrets.key"), "master_address": "127.0.0.1"},
            "cachedir": str(tmp_path / "cache"), "sock_dir": str(tmp_path / "sock")}


@pytest.fixture
def ctl(opts):
    return Controller(opts)


@pytest.fixture
def api_client(opts, ctl, monkeypatch):
    """``start({user: (tenant, role)})``: the API over ``ctl`` in a test client (Salt events
    dropped), with those local users, each one's password ``<user>-pw``."""
    started = []

    def start(people):
        monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
        app = create_app(opts, ctl=ctl)
        for name, (tenant, role) in people.items():
            users.add_local_user(ctl.url, name, name + "-pw", tenant, role)
        client = TestClient(app)
        started.append(client.__enter__())
        return started[-1]

    yield start
    for client in started:
        client.__exit__(None, None, None)
    db.dispose()
