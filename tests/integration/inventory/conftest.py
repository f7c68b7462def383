"""A real controller for the inventory's tests: a salt-master from pytest-salt-factories
serving the corpus ext_pillar over an SQLite inventory, ``corpus-api`` started from
its configuration as ``corpus-controller init`` starts it, and local users: ada
(admin of tenant ``default``) and val (its viewer). ``corpus_cli(*args)`` runs the
real ``corpus`` command as ada; ``cli_env`` is the environment it runs in (so
``corpus-inventory`` and ``ansible-playbook`` read the same URL and token)."""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
import salt.config

from mc_project.api import users
from mc_project.inventory import db
from support.ports import LOOPBACK, free_port
from support.wait import wait_for

PASSWORDS = {"ada": "ada-inventory-pw", "val": "val-inventory-pw"}
BIN = os.path.dirname(sys.executable)
DETECT_MARKER = "detect-marker"
DETECT_INTERVAL = 10


def detector_rules(marker):
    return [{"name": "linux", "apply_if": "grains['kernel'] == 'Linux'", "add_groups": ["linux"]},
            {"name": "marked", "apply_if": "'{}' in files".format(marker), "add_groups": ["marked"]}]


@pytest.fixture(scope="package")
def master(salt_factories, tmp_path_factory):
    root = tmp_path_factory.mktemp("inventory-controller")
    overrides = {
        "interface": LOOPBACK,
        "ext_pillar": [{"corpus_inventory": {}}],
        "corpus": {"db_url": "sqlite:///{}".format(root / "inventory.sqlite"), "master_address": LOOPBACK,
                   "secrets_key": str(root / "secrets.key"),
                   # The checks' test (test_inventory_checks_on_minions.py) listens here with an SMTP sink.
                   "smtp": {"host": LOOPBACK, "port": free_port(), "sender": "corpus@controller.test", "timeout": 5}},
        "corpus_api": {"bind": LOOPBACK, "port": free_port(), "token_hours": 1},
        # The detectors' test (test_inventory_detectors.py) makes and removes the marker file.
        "corpus_detectors": {"rules": detector_rules(root / DETECT_MARKER), "interval": DETECT_INTERVAL},
    }
    factory = salt_factories.salt_master_daemon("corpus-inv-{}".format(uuid.uuid4().hex[:6]), overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="package")
def url(master):
    opts = salt.config.master_config(master.config_file)
    db.init(opts["corpus"]["db_url"], secrets_key=opts["corpus"]["secrets_key"])
    users.add_local_user(opts["corpus"]["db_url"], "ada", PASSWORDS["ada"], "default", "admin")
    users.add_local_user(opts["corpus"]["db_url"], "val", PASSWORDS["val"], "default", "viewer")
    yield opts["corpus"]["db_url"]
    db.dispose()


@pytest.fixture(scope="package")
def detect_marker(url):
    """The file whose presence the detector ``marked`` looks for (under the master's root)."""
    return os.path.join(os.path.dirname(url[len("sqlite:///"):]), DETECT_MARKER)


@pytest.fixture(scope="package")
def api(master, url, tmp_path_factory):
    """``corpus-api`` serving on its own port: its base URL."""
    port = salt.config.master_config(master.config_file)["corpus_api"]["port"]
    log = open(tmp_path_factory.mktemp("inventory-api-log") / "api.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "mc_project.api.server", "--config", master.config_file],
                               stdout=log, stderr=subprocess.STDOUT)
    base = "http://{}:{}".format(LOOPBACK, port)

    def healthy():
        if process.poll() is not None:
            raise AssertionError("corpus-api exited with {}; see {}".format(process.returncode, log.name))
        try:
            return httpx.get(base + "/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=60, what="corpus-api to answer")
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def token_of(api, user):
    answer = httpx.post(api + "/v1/login", json={"username": user, "password": PASSWORDS[user]}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


@pytest.fixture(scope="package")
def cli_env(api, tmp_path_factory):
    home = tmp_path_factory.mktemp("inventory-home")
    config = home / ".makinastates.conf"
    config.write_text("[corpus]\nurl = {}\nuser = ada\ntoken = {}\n".format(api, token_of(api, "ada")))
    os.chmod(config, 0o600)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CORPUS_", "ANSIBLE_"))}
    env.update(HOME=str(home), CORPUS_CONFIG=str(config), XDG_CONFIG_HOME=str(home / ".config"),
               PATH=BIN + os.pathsep + env.get("PATH", ""))
    return env


@pytest.fixture(scope="package")
def corpus_cli(cli_env):
    def run(*args, check=True):
        result = subprocess.run([os.path.join(BIN, "corpus"), *args], env=cli_env, capture_output=True, text=True,
                                timeout=120)
        assert "Traceback" not in result.stdout + result.stderr
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result
    return run
