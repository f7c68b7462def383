"""A site planned and applied with the ``corpus`` command through the real REST API, on the
real nodes and PowerDNS of this package: ``corpus plan`` of 3 environments and 2 domains
(exit 2 with --detailed-exitcode, every object ``+``), ``corpus apply`` of that plan (the
environments answer SSH and are listed, PowerDNS answers the records), the same blueprint
planned again gives no change, a changed one gives ``~`` for a size and a record and
``-/+`` for a type, and applying it resizes and replaces; ``corpus site destroy`` removes
the environments, their containers and the domains."""

import json
import subprocess

import pytest
import salt.config

from mc_project.api import users
from mc_project.api.app import create_app
from support.api_stub import run_corpus
from support.api_server import served
from support.services import dns_query

ENVS = ("shopa", "shopb", "shopc")


def blueprint(node1, size="2G", c_type="dev", www=None):
    return """
site: shop
environments:
  - name: shopa
    type: dev
    node: node1
    size: {size}
    projects:
      - {{name: shopa, git: "https://git.example.org/shop.git", pillar: {{workers: 2}}}}
  - {{name: shopb, type: dev, node: node1}}
  - {{name: shopc, type: {c_type}, node: node2}}
domains:
  - name: shop.test
    nameservers: [ns1.shop.test]
    records:
      - {{name: www, type: A, content: {www}}}
      - {{name: "@", type: TXT, content: "site shop"}}
  - name: shop-static.test
    nameservers: [ns1.shop.test]
    records:
      - {{name: cdn, type: CNAME, content: www.shop.test.}}
""".format(size=size, c_type=c_type, www=www or node1["address"])


@pytest.fixture(scope="module")
def api(controller, node1, node2):
    opts = salt.config.master_config(controller.config_file)
    app = create_app(opts)
    users.add_local_user(app.state.url, "ops", "ops-password", "default", "admin")
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def home(api, tmp_path_factory):
    home = tmp_path_factory.mktemp("ops")
    login = run_corpus(["--url", api, "login", "--user", "ops", "--password-stdin"], home, stdin="ops-password\n")
    assert login.returncode == 0, login.stderr
    yield home
    # The nodes' slots are shared with the other modules: leave none taken.
    if corpus(home, "site", "status", "shop").returncode != 2:
        corpus(home, "site", "destroy", "shop", "--yes", timeout=1800)


def corpus(home, *args, timeout=1800, **kwargs):
    return run_corpus(list(args), home, timeout=timeout, **kwargs)


def write(tmp_path, text):
    path = tmp_path / "site.yml"
    path.write_text(text)
    return str(path)


def planned(home, path):
    result = corpus(home, "plan", path, "--detailed-exitcode")
    plan = json.loads(corpus(home, "--json", "plan", path).stdout)
    return result, plan


def listed(home):
    rows = json.loads(corpus(home, "--json", "envs").stdout)["items"]
    return {row["name"]: row for row in rows if row["name"] in ENVS}


def answers_ssh(home, node, name, tmp_path):
    key = tmp_path / (name + ".key")
    assert corpus(home, "credentials", name, "--key-file", str(key)).returncode == 0
    port = listed(home)[name]["ssh"].rsplit(":", 1)[1]
    command = ["ssh", "-i", str(key), "-p", port, "-o", "StrictHostKeyChecking=no", "-o",
               "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "root@" + node["address"], "hostname"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout.strip()


def test_plan_and_apply_a_site(home, node1, node2, pdns, tmp_path):
    path = write(tmp_path, blueprint(node1))
    result, plan = planned(home, path)
    assert result.returncode == 2, result.stdout + result.stderr
    for name in ENVS:
        assert "  + environment {}".format(name) in result.stdout
    assert "  + domain shop.test" in result.stdout and "  + domain shop-static.test" in result.stdout
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in result.stdout
    applied = corpus(home, "apply", str(plan["id"]))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete (plan {}".format(plan["id"]) in applied.stdout
    # What a user sees: the environments listed and answering SSH, the records served.
    envs = listed(home)
    assert sorted(envs) == list(ENVS) and {row["status"] for row in envs.values()} == {"active"}
    assert (envs["shopa"]["node"], envs["shopc"]["node"], envs["shopa"]["disk_size_mb"]) == ("node1", "node2", 2048)
    assert answers_ssh(home, node1, "shopa", tmp_path) and answers_ssh(home, node2, "shopc", tmp_path)
    assert dns_query("www.shop.test", "A", pdns.dns_port) == [node1["address"]]
    assert dns_query("shop.test", "TXT", pdns.dns_port) == ['"site shop"']
    assert dns_query("cdn.shop-static.test", "CNAME", pdns.dns_port) == ["www.shop.test."]
    # Applied once; the same blueprint now plans nothing, and the site has no drift.
    again = corpus(home, "apply", str(plan["id"]))
    assert again.returncode != 0 and "applied already" in again.stderr
    result, _plan = planned(home, path)
    assert result.returncode == 0 and "No changes." in result.stdout, result.stdout + result.stderr
    status = corpus(home, "site", "status", "shop")
    assert status.returncode == 0 and "matches what was applied" in status.stdout, status.stdout + status.stderr


def test_a_changed_blueprint_changes_in_place_and_replaces(home, node1, node2, pdns, tmp_path):
    path = write(tmp_path, blueprint(node1, size="3G", c_type="staging", www="192.0.2.80"))
    result, plan = planned(home, path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "~ environment shopa" in lines and "size: 2048 -> 3072" in lines
    assert "-/+ environment shopc" in lines and 'type: "dev" -> "staging"' in lines
    assert "~ domain shop.test" in lines and "+record www.shop.test A 192.0.2.80" in lines
    assert "environment shopb" not in result.stdout
    assert "Plan: 1 to add, 2 to change, 1 to destroy." in result.stdout
    applied = corpus(home, "apply", str(plan["id"]))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    envs = listed(home)
    assert envs["shopa"]["disk_size_mb"] == 3072 and envs["shopc"]["type"] == "staging"
    assert answers_ssh(home, node2, "shopc", tmp_path)
    assert dns_query("www.shop.test", "A", pdns.dns_port) == ["192.0.2.80"]


def test_destroy_removes_what_the_site_owns(home, node1, pdns):
    destroyed = corpus(home, "site", "destroy", "shop", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "Plan: 0 to add, 0 to change, 5 to destroy." in destroyed.stdout
    assert "Site shop destroyed." in destroyed.stdout
    assert listed(home) == {}
    containers = subprocess.run(["lxc-ls", "-P", node1["lxc_path"]], capture_output=True, text=True).stdout.split()
    assert not set(ENVS) & set(containers)
    assert dns_query("www.shop.test", "A", pdns.dns_port) == []
    assert dns_query("cdn.shop-static.test", "CNAME", pdns.dns_port) == []
    gone = corpus(home, "site", "status", "shop")
    assert gone.returncode == 2 and "No site shop." in gone.stderr
