"""Fixtures of the API's unit tests: a controller over a fresh SQLite inventory, no Salt."""

import pytest

from mc_project.controller.runtime import Controller


@pytest.fixture
def opts(tmp_path):
    """Master options of a controller whose inventory and secrets key are under ``tmp_path``."""
    return {"corpus": {"db_url": "sqlite:///{}".format(tmp_path / "inventory.sqlite"),
                       "secrets_key": str(tmp_path / "secrets.key"), "master_address": "127.0.0.1"},
            "cachedir": str(tmp_path / "cache"), "sock_dir": str(tmp_path / "sock")}


@pytest.fixture
def ctl(opts):
    return Controller(opts)
