"""``corpus inventory ...`` and ``corpus-inventory`` as processes of their own against the
real API application (uvicorn in a thread, an SQLite inventory): exit codes, one
sentence for bad input, the Ansible JSON with ``_meta``."""

import json
import os
import subprocess
import sys
import threading

import httpx
import pytest
import uvicorn

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.runtime import Controller
from mc_project.inventory import db
from support.api_stub import run_corpus
from support.ports import LOOPBACK, free_port
from support.wait import wait_for


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("inventory-cli")
    opts = {"corpus": {"db_url": "sqlite:///{}".format(root / "inventory.sqlite"),
                       "secrets_key": str(root / "secrets.key"), "master_address": LOOPBACK},
            "cachedir": str(root / "cache"), "sock_dir": str(root / "sock")}
    ctl = Controller(opts)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "ada", "ada-pw", "default", "admin")
    users.add_local_user(ctl.url, "val", "val-pw", "default", "viewer")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="the API to start")
    base = "http://{}:{}".format(LOOPBACK, port)
    yield base
    server.should_exit = True
    thread.join(10)
    db.dispose()


def home_of(tmp_path, api, user):
    token = httpx.post(api + "/v1/login", json={"username": user, "password": user + "-pw"}).json()["token"]
    home = tmp_path / user
    home.mkdir()
    (home / ".makinastates.conf").write_text("[corpus]\nurl = {}\ntoken = {}\n".format(api, token))
    return home


def corpus(home, *args):
    result = run_corpus(list(args), home)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_verbs_and_the_inventory_script(api, tmp_path):
    ada = home_of(tmp_path, api, "ada")
    for args in (("inventory", "add", "region", "eu"), ("inventory", "add", "cell", "eu/r1"),
                 ("inventory", "add", "group", "frontend"), ("inventory", "add", "group", "web", "--child", "frontend"),
                 ("inventory", "add", "host", "web1", "--address", "192.0.2.5", "--region", "eu", "--cell", "r1",
                  "--group", "frontend", "--label", "ssd"),
                 ("inventory", "set", "tenant", "default", "ntp=pool", 'hardware={"disk": "hdd"}'),
                 ("inventory", "set", "cell", "eu/r1", "rack=7"),
                 ("inventory", "set", "host", "web1", 'hardware={"disk": "ssd"}', "--secret", "token=abc")):
        result = corpus(ada, *args)
        assert result.returncode == 0, (args, result.stderr)
    shown = corpus(ada, "inventory", "vars", "host", "web1", "--resolved")
    assert shown.returncode == 0
    lines = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:]}
    assert lines["hardware"][-2:] == ["host", "web1"] and lines["rack"][-2:] == ["cell", "r1"]
    assert lines["token"][1] == "********"
    listed = json.loads(corpus(ada, "--json", "inventory", "list", "host", "--var", "rack:7").stdout)
    assert [host["name"] for host in listed["items"]] == ["web1"]

    environ = {key: value for key, value in os.environ.items() if not key.startswith("CORPUS_")}
    environ.update(HOME=str(ada), XDG_CONFIG_HOME=str(ada / ".config"))
    script = [sys.executable, "-c", "from mc_project.cli.ansible_inventory import main; main()"]
    listed = subprocess.run(script + ["--list"], env=environ, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    inventory = json.loads(listed.stdout)
    assert inventory["_meta"]["hostvars"]["web1"]["hardware"] == {"disk": "ssd"}
    assert "token" not in inventory["_meta"]["hostvars"]["web1"]
    assert inventory["cell_eu_r1"] == {"hosts": ["web1"]}
    one = subprocess.run(script + ["--host", "web1"], env=environ, capture_output=True, text=True, timeout=60)
    assert json.loads(one.stdout)["rack"] == 7

    # Bad input: exit 2 and one sentence; a viewer: exit 3.
    cycle = corpus(ada, "inventory", "change", "group", "frontend", "--child", "web")
    assert cycle.returncode == 2
    assert cycle.stderr.strip() == ("corpus: Group frontend cannot contain group web: that would make a cycle "
                                    "(frontend > web > frontend).")
    assert corpus(ada, "inventory", "show", "host", "nosuch").returncode == 2
    val = home_of(tmp_path, api, "val")
    refused = corpus(val, "inventory", "add", "host", "web2")
    assert refused.returncode == 3 and refused.stderr.startswith("corpus: You may not change the inventory")
    bad_cell = corpus(ada, "inventory", "add", "cell", "r2")
    assert bad_cell.returncode == 2 and "REGION/CELL" in bad_cell.stderr
