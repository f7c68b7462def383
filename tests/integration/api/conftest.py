"""A real controller API for the tests of this directory, shared by all of them:

* a real OpenLDAP ``slapd`` (tests/support/slapd.py) with two tenants' groups and
  three users: alice (deployer of alpha), carol (viewer of alpha), bob (admin of beta);
* a real salt-master from pytest-salt-factories whose ``corpus`` options point at an
  SQLite inventory and whose ``corpus_api`` options at that directory;
* ``corpus-api`` itself, a real uvicorn on a free port, started from that master's
  configuration file as ``corpus-controller init`` starts it.
"""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
import salt.config

from mc_project.controller.runtime import Controller
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Project, Tenant
from support import slapd
from support.ports import LOOPBACK, free_port
from support.wait import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
GROUPS = {"alpha-deployers": ["alice"], "alpha-viewers": ["carol"], "beta-admins": ["bob"]}
GRANTS = {"alpha-deployers": {"tenant": "alpha", "role": "deployer"},
          "alpha-viewers": {"tenant": "alpha", "role": "viewer"},
          "beta-admins": {"tenant": "beta", "role": "admin"}}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test here needs slapd; under pytest-xdist they share one worker (one
    directory, one master, one API server)."""
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.needs("slapd"))


@pytest.fixture(scope="package")
def directory(tmp_path_factory):
    with slapd.Slapd(tmp_path_factory.mktemp("slapd"), USERS, GROUPS) as server:
        yield server


@pytest.fixture(scope="package")
def master(salt_factories, tmp_path_factory, directory):
    root = tmp_path_factory.mktemp("api-controller")
    overrides = {
        "interface": LOOPBACK,
        "corpus": {"db_url": "sqlite:///{}".format(root / "inventory.sqlite"), "master_address": LOOPBACK,
                   "secrets_key": str(root / "secrets.key")},
        "corpus_api": {"bind": LOOPBACK, "port": free_port(), "token_hours": 1,
                       "ldap": {"url": directory.url, "user_dn": "uid={username}," + slapd.PEOPLE,
                                "group_base": slapd.GROUPS, "groups": GRANTS, "timeout": 3}},
    }
    factory = salt_factories.salt_master_daemon("corpus-api-{}".format(uuid.uuid4().hex[:6]), overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="package")
def ctl(master):
    """The controller as the API process sees it (same options), in the test process."""
    return Controller(salt.config.master_config(master.config_file))


@pytest.fixture(scope="package")
def inventory(ctl):
    """Tenants alpha and beta, a node of alpha, environments a1, a2 (alpha) and b1 (beta)."""
    with db.session(ctl.url) as sess:
        alpha, beta = Tenant(name="alpha"), Tenant(name="beta")
        sess.add_all([alpha, beta])
        sess.flush()
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        for number, (name, tenant) in enumerate((("a1", alpha), ("a2", alpha), ("b1", beta)), 1):
            env = Environment(name=name, env_type="dev", status="active", tenant_id=tenant.id, node_id=node.id,
                              ip="10.0.0.{}".format(number), ssh_nat_port=40000 + number, disk_size_mb=2048,
                              domains=["{}.corpus.test".format(name)], minion_id="env-" + name, project=name)
            env.projects.append(Project(name=name))
            sess.add(env)
    return ctl.url


@pytest.fixture(scope="package")
def api(master, inventory, tmp_path_factory):
    """``corpus-api`` serving on its own port: its base URL."""
    opts = salt.config.master_config(master.config_file)
    port = opts["corpus_api"]["port"]
    log = open(tmp_path_factory.mktemp("api-log") / "api.log", "wb")
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


@pytest.fixture(scope="package")
def http(api):
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def login(http):
    """``login(user)``: the Authorization header of a fresh token of ``user``."""
    def make(user):
        answer = http.post("/v1/login", json={"username": user, "password": USERS[user]})
        assert answer.status_code == 200, answer.text
        return {"Authorization": "Bearer " + answer.json()["token"]}
    return make
