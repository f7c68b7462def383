"""A real controller for the environment tests (tests/integration/controller/ and the web page's
flow, tests/integration/web/flow/): salt-master, PowerDNS, SMTP sink, nodes. One of each per
test process (a plugin of tests/conftest.py: both directories share them; a second controller
would link this machine as node1 again).

* the controller is a salt-master from pytest-salt-factories with corpus's state
  tree, the corpus ext_pillar and a ``corpus:`` mapping pointing at a real
  ``pdns_server`` and an aiosmtpd sink, all on this machine;
* ``node1`` is this machine, linked over a real sshd listening on its own
  (non-loopback) address, so containers' NATed ports are reached as from outside;
* ``node2`` is a second host in a network namespace with its own address, sshd
  and minion (tests/support/netns.py).

Containers live under their own LXC path and are all destroyed at the end; unlinking the
nodes takes away their golden containers, nftables tables (each node's own,
``nodes.nft_table_for``) and bridges, unless ``CORPUS_TESTS_KEEP_NODES=1`` asks to keep
them for a faster next run (the nodes are then not unlinked, only their minions and
proxies stopped; tests/support/leftovers.py removes what a failed unlink left).
"""

import json
import os
import shutil
import subprocess
import uuid

import pytest
import salt.client
import salt.config

from mc_project import resources
from mc_project.controller import config, nodes, wheelhouse
from mc_project.controller.runtime import Controller
from mc_project.node import proxy
from support import leftovers, needs
from support.netns import NetnsHost
from support.ports import free_port
from support.services import PdnsServer, SmtpSink

LXC_ROOT = "/var/lib/corpus-test"
DOMAIN = "corpus.test"
NODE1_SUBNET = "10.91.0.0/24"
NODE2_SUBNET = "10.92.0.0/24"
NODE1_TABLE = nodes.nft_table_for("node1")


# A real LXC node on this machine, a second one in a network namespace, PowerDNS.
NEEDS = needs.LXC_NODE + ("sshd", "pdns")


def mark_needs(items, directory):
    """Every test under ``directory`` needs what these fixtures use (a ``pytestmark`` in a
    conftest.py applies to nothing: pytest reads marks from test modules only)."""
    for item in items:
        if str(item.path).startswith(directory + os.sep):
            item.add_marker(pytest.mark.needs(*NEEDS, group=directory))


@pytest.fixture(scope="session")
def pdns(tmp_path_factory):
    with PdnsServer(str(tmp_path_factory.mktemp("pdns"))) as server:
        yield server


@pytest.fixture(scope="session")
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def node2_host(tmp_path_factory):
    _remove_stale_namespaces("cn2-")
    host = NetnsHost("cn2-{}".format(uuid.uuid4().hex[:4]), "10.93.0.1/24", "10.93.0.2/24",
                     workdir=str(tmp_path_factory.mktemp("node2-host")))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="session")
def controller(salt_factories, tmp_path_factory, pdns, smtp, node2_host):
    root = tmp_path_factory.mktemp("controller")
    corpus = {
        "db_url": "sqlite:///{}".format(root / "inventory.sqlite"),
        # reachable from this machine, its containers, the netns node and its containers
        "master_address": node2_host.host_address,
        "wheelhouse": wheelhouse.ensure_wheelhouse(wheelhouse.shared_cache()),
        "domain": DOMAIN,
        "dns": {"api_url": pdns.api_url, "api_key": pdns.api_key, "zone": DOMAIN + "."},
        "smtp": {"host": smtp.host, "port": smtp.port, "sender": "corpus@" + DOMAIN},
    }
    overrides = {
        "interface": "0.0.0.0",
        "file_roots": {"base": [resources.salt_tree()]},
        "ext_pillar": [{"corpus_inventory": {}}],
        "corpus": corpus,
        "timeout": 60,
        "runner_returns": False,  # as corpus-controller init writes it
    }
    factory = salt_factories.salt_master_daemon("corpus-ctl-{}".format(uuid.uuid4().hex[:6]),
                                                overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="session")
def salt_run(controller):
    return controller.salt_run_cli(timeout=1800)


@pytest.fixture(scope="session")
def ctl(controller):
    """The controller as the runners see it, for reading the inventory and Salt."""
    opts = salt.config.master_config(controller.config_file)
    client = salt.client.get_local_client(mopts=opts)
    try:
        yield Controller(opts, client=client)
    finally:
        client.destroy()  # its event bus connection, before the master stops


@pytest.fixture(scope="session")
def sshd(salt_factories, tmp_path_factory):
    # on every address (salt-factories checks the port on loopback); linked by the non-loopback one
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    factory = salt_factories.get_sshd_daemon(
        script_name=shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin"),
        listen_address="0.0.0.0", listen_port=free_port(),
        sshd_config_dict={"StrictModes": "no", "PermitRootLogin": "prohibit-password",
                          "Subsystem": "sftp /usr/lib/openssh/sftp-server"})
    with factory.started():
        yield {"port": factory.listen_port, "key": str(factory.client_key)}


def link(salt_run, name, address, port, key, prefix, subnet, slots, http_port):
    # NAT ports of their own: another node on this machine (a benchmark) shares the nft table
    ret = salt_run.run("mc_cloud.link_node", address, "user=root", "key={}".format(key), "port={}".format(port),
                       "nat_ports=42000-42099",
                       "name={}".format(name), "slots={}".format(slots), "subnet={}".format(subnet),
                       "http_port={}".format(http_port), "prefix={}".format(prefix),
                       "lxc_path={}/{}/lxc".format(LXC_ROOT, name))
    assert ret.returncode == 0, ret
    return ret


@pytest.fixture(scope="session")
def node1(salt_run, sshd, tmp_path_factory):
    lxc_path = "{}/node1/lxc".format(LXC_ROOT)
    _remove_stale_containers(lxc_path, NODE1_SUBNET)
    # Linking this machine makes the default bridge and the node's nft tables; unlinking takes them away.
    before = leftovers.node_network(NODE1_TABLE)
    http_port = free_port()
    address = config.local_ipv4()
    prefix = str(tmp_path_factory.mktemp("node1"))
    try:
        ret = link(salt_run, "node1", address, sshd["port"], sshd["key"], prefix, NODE1_SUBNET, 2, http_port)
        yield {"name": "node1", "address": address, "http_port": http_port, "subnet": NODE1_SUBNET,
               "lxc_path": lxc_path, "nft_table": NODE1_TABLE, "link": ret.data}
        _cleanup(salt_run, "node1", lxc_path, prefix)
    finally:
        if not leftovers.keep_nodes():
            leftovers.remove_golden(lxc_path)
            leftovers.remove_node_network(before, NODE1_TABLE)


@pytest.fixture(scope="session")
def node2(salt_run, node2_host, node1, tmp_path_factory):
    http_port = 8080
    prefix = str(tmp_path_factory.mktemp("node2"))
    lxc_path = "{}/node2/lxc".format(LXC_ROOT)
    try:
        ret = link(salt_run, "node2", node2_host.address, node2_host.ssh_port, node2_host.key_path, prefix,
                   NODE2_SUBNET, 2, http_port)
        yield {"name": "node2", "address": node2_host.address, "http_port": http_port, "host": node2_host,
               "lxc_path": lxc_path, "link": ret.data}
        _cleanup(salt_run, "node2", lxc_path, prefix, node2_host)
    finally:
        if not leftovers.keep_nodes():
            # its bridge and nft tables live in node2_host's namespace, which goes with it
            leftovers.remove_golden(lxc_path)


def _remove_stale_namespaces(prefix):
    """Namespaces a killed test run left: their veth would take this run's addresses."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    for name in [line.split()[0] for line in listed if line.startswith(prefix)]:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)


def _remove_stale_containers(lxc_path, subnet):
    """Containers and NAT mappings a killed test run left on this machine."""
    listed = subprocess.run(["lxc-ls", "-P", lxc_path], capture_output=True, text=True).stdout.split()
    for container in listed:
        if container != "corpus-golden":
            subprocess.run(["lxc-destroy", "-f", "-P", lxc_path, "-n", container], capture_output=True)
    for table in ("corpus", NODE1_TABLE):  # the table nodes of a machine once shared, node1's own
        shown = subprocess.run(["nft", "-j", "list", "map", "ip", table, "tcp_ports"], capture_output=True,
                               text=True).stdout
        prefix = subnet.rsplit(".", 1)[0] + "."
        for item in (json.loads(shown)["nftables"] if shown else []):
            for port, target in (item.get("map") or {}).get("elem", []) if isinstance(item, dict) else []:
                if target["concat"][0].startswith(prefix):
                    subprocess.run(["nft", "delete", "element", "ip", table, "tcp_ports",
                                    "{{ {} }}".format(port)], capture_output=True)


def _cleanup(salt_run, name, lxc_path, prefix, host=None):
    """Destroy what the tests left on a node, unlink it (which takes its network, proxy and
    golden container away; kept nodes only have their minion and proxy stopped)."""
    for env in (salt_run.run("mc_cloud.list_envs").data or []):
        if isinstance(env, dict) and env.get("node") == name:
            salt_run.run("mc_cloud.destroy_env", env["name"])
    if leftovers.keep_nodes():
        subprocess.run(["sh", "-c", nodes.stop_minion_command(nodes.node_paths(prefix))], capture_output=True)
    else:
        salt_run.run("mc_cloud.unlink_node", name, "force=True")
    proxy.stop(nodes.node_paths(prefix)["state_dir"])
    prefix = ["ip", "netns", "exec", host.name] if host else []
    listed = subprocess.run(prefix + ["lxc-ls", "-P", lxc_path], capture_output=True, text=True)
    for container in listed.stdout.split():
        if container != "corpus-golden":
            subprocess.run(prefix + ["lxc-destroy", "-f", "-P", lxc_path, "-n", container], capture_output=True)
