"""``corpus-controller init`` starts corpus-api beside the master, makes the first
admin, ``user add`` adds local users, ``status`` reports the API, ``stop`` stops it."""

import os
import stat
import subprocess
import sys

import httpx
import pytest

from mc_project.api import process as api_process
from support import lxc_cache
from support.ports import LOOPBACK, free_ports

BIN = os.path.dirname(sys.executable)


def run(*command, stdin=None, timeout=300):
    return subprocess.run([os.path.join(BIN, command[0]), *command[1:]], capture_output=True, text=True,
                          timeout=timeout, check=False, input=stdin)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ctl"))
    publish, ret, api = free_ports(3)
    result = run("corpus-controller", "init", "--root", root, "--interface", LOOPBACK, "--publish-port", str(publish),
                 "--ret-port", str(ret), "--wheelhouse", lxc_cache.wheelhouse_dir(), "--api-port", str(api),
                 "--api-bind", LOOPBACK)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield {"root": root, "url": "http://{}:{}".format(LOOPBACK, api), "init": result.stdout, "port": api}
    finally:
        run("corpus-controller", "stop", "--root", root)


def test_init_starts_the_api_and_makes_the_first_admin(controller):
    assert "api: started (pid " in controller["init"] and controller["url"] in controller["init"]
    path = os.path.join(controller["root"], "admin-password")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as fh:
        password = fh.read().strip()
    assert "password {} (also in {}; shown once)".format(password, path) in controller["init"]
    answer = httpx.post(controller["url"] + "/v1/login", json={"username": "admin", "password": password})
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["tenants"] == [{"name": "default", "role": "admin"}]
    again = run("corpus-controller", "init", "--root", controller["root"], "--wheelhouse",
                lxc_cache.wheelhouse_dir())
    assert again.returncode == 0 and "api: already running" in again.stdout and "admin:" not in again.stdout


def test_user_add_and_status(controller):
    result = run("corpus-controller", "user", "add", "dora", "--root", controller["root"], "--tenant", "shop",
                 "--role", "deployer", stdin="dora-secret\n")
    assert result.returncode == 0 and "user dora: created (deployer of tenant shop)" in result.stdout, result.stderr
    answer = httpx.post(controller["url"] + "/v1/login", json={"username": "dora", "password": "dora-secret"})
    assert answer.json()["user"] == {"name": "dora", "tenants": [{"name": "shop", "role": "deployer"}]}
    bad = run("corpus-controller", "user", "add", "dora", "--root", controller["root"], "--role", "king",
              stdin="x\n")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    status = run("corpus-controller", "status", "--root", controller["root"])
    assert "api: running (pid {}, {})".format(api_process.running(controller["root"]).pid,
                                              controller["url"]) in status.stdout


def test_a_taken_api_port_is_one_sentence(controller, tmp_path_factory):
    other = tmp_path_factory.mktemp("o")  # short: the master's sockets would live under it
    publish, ret = free_ports(2)
    result = run("corpus-controller", "init", "--root", str(other), "--interface", LOOPBACK,
                 "--publish-port", str(publish), "--ret-port", str(ret), "--wheelhouse", lxc_cache.wheelhouse_dir(),
                 "--api-port", str(controller["port"]), "--api-bind", LOOPBACK)
    assert result.returncode == 2 and result.stderr.strip() == (
        "Port {} on {} is already in use; choose another with --api-port.".format(controller["port"], LOOPBACK))
    assert not (other / "etc").exists()


def test_stop_stops_the_api(controller):
    result = run("corpus-controller", "stop", "--root", controller["root"])
    assert result.returncode == 0 and "api: stopped" in result.stdout and "salt-master: stopped" in result.stdout
    assert api_process.running(controller["root"]) is None
    with pytest.raises(httpx.HTTPError):
        httpx.get(controller["url"] + "/v1/health", timeout=2)
