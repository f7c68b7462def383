"""Linking compute nodes over SSH to a real salt-master (pytest-salt-factories).

Two nodes: this machine, through a real sshd on 127.0.0.1, and a second host in
a network namespace (its own address and sshd, ``tests/netns.py``). Each gets
corpus and a salt-minion from the controller's wheelhouse, its minion key
pre-seeded and accepted, and answers ``test.ping``; the second one is linked
through ``salt-run mc_cloud.link_node``. Re-linking changes nothing; a changed
host key, a refused key, an unreachable host, a host without python3 or a
minion that never answers is one sentence with nothing recorded (and nothing
left on the node). A link killed mid-way resumes in another process (the node
then answers) and its undo leaves nothing; each node has nftables tables of its
own, and a node linked again without ``nft_table`` moves off the table it had.
Unlinking is refused while an environment lives on the node; forced, it takes
away the node's haproxy, nft tables, bridge and golden container, stops the
minion and removes its key.
"""

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import psutil
import pytest
import salt.config
import yaml
from sqlalchemy import select


from mc_project.controller import config, nodes, operations, wheelhouse
from mc_project.controller.runtime import Controller
from mc_project.controller.steps import node as node_steps
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job, SshKey
from mc_project.node import host, nat, proxy
from support import needs
from support.jobs import kill_when_running
from support.netns import NetnsHost
from support.ports import free_port

SSHD = needs.command("sshd")

pytestmark = pytest.mark.needs("root", "sshd", "ip")  # a network namespace, sshd as root

HOST_SIDE = "10.78.0.1/24"
NS_SIDE = "10.78.0.2/24"


def short_dir(prefix):
    """A directory with a short path: a minion's sockets live under its prefix."""
    return tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The controller's wheelhouse: a copy of the machine's, which other runs may rebuild."""
    shared = wheelhouse.ensure_wheelhouse(wheelhouse.shared_cache())
    copy = tmp_path_factory.mktemp("controller") / "wheelhouse"
    shutil.copytree(shared, copy)
    return str(copy)


@pytest.fixture(scope="module")
def netns_host(tmp_path_factory):
    namespace = NetnsHost("corpus-ln{}".format(uuid.uuid4().hex[:4]), HOST_SIDE, NS_SIDE,
                          tmp_path_factory.mktemp("netns"))
    yield namespace
    namespace.close()


@pytest.fixture(scope="module")
def master(salt_factories, netns_host, wheels, tmp_path_factory):
    url = "sqlite:///" + str(tmp_path_factory.mktemp("inventory") / "inventory.sqlite")
    db.init(url)
    # Minions in the namespace reach the master at the veth's host side.
    corpus = {"db_url": url, "wheelhouse": wheels, "master_address": netns_host.host_address}
    factory = salt_factories.salt_master_daemon(
        "corpus-ctl-{}".format(uuid.uuid4().hex[:6]), overrides={"interface": "0.0.0.0", "corpus": corpus})
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def master_opts(master):
    return salt.config.master_config(master.config_file)


@pytest.fixture(scope="module")
def settings(master_opts):
    return config.controller_settings(master_opts)


@pytest.fixture(scope="module")
def ctl(master_opts):
    return Controller(master_opts)


@pytest.fixture(scope="module")
def local_sshd(salt_factories):
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    daemon = salt_factories.get_sshd_daemon(
        script_name=SSHD,
        sshd_config_dict={"StrictModes": "no", "PermitRootLogin": "prohibit-password",
                          "Subsystem": "sftp /usr/lib/openssh/sftp-server"})
    with daemon.started():
        yield daemon


@pytest.fixture(scope="module")
def places():
    """Short per-node directories (prefix and LXC path), removed at the end."""
    made = {}

    def place(node):
        if node not in made:
            made[node] = short_dir("cn-{}-".format(node))
        return made[node]

    yield place
    for path in made.values():
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def local_node(ctl, local_sshd, places):
    root = places("local")
    suffix = uuid.uuid4().hex[:6]
    bridge, table = "cln" + suffix, "corpus_ln" + suffix  # not the names of a real node here
    started = time.monotonic()
    try:
        record = operations.link_node(ctl, "127.0.0.1", key=str(local_sshd.client_key),
                                      port=local_sshd.listen_port, name="node-local", slots=3,
                                      http_port=free_port(), prefix=root + "/corpus",
                                      lxc_path=root + "/lxc", bridge=bridge, nft_table=table)
        record["seconds"] = time.monotonic() - started
        yield record
    finally:
        state_dir = nodes.node_paths(root + "/corpus")["state_dir"]
        stop_minion(root + "/corpus")
        proxy.stop(state_dir)
        nat.teardown(table, state_dir)
        host.remove_bridge(bridge)


@pytest.fixture(scope="module")
def ns_node(master, netns_host, places):
    """The namespace's host, linked as an operator does: through the mc_cloud runner."""
    root = places("ns")
    started = time.monotonic()
    ret = master.salt_run_cli(timeout=600).run(
        "mc_cloud.link_node", netns_host.address, "key=" + netns_host.key_path, "name=node-ns", "slots=5",
        "http_port=8080", "prefix={}/corpus".format(root), "lxc_path={}/lxc".format(root))
    assert ret.returncode == 0, ret
    record = ret.data
    record["seconds"] = time.monotonic() - started
    yield record
    # Stopped before its directories go (the namespace would only kill them later).
    stop_minion(root + "/corpus")
    proxy.stop(nodes.node_paths(root + "/corpus")["state_dir"])


def stop_minion(prefix):
    subprocess.run(["sh", "-c", nodes.stop_minion_command(nodes.node_paths(prefix))], check=True)


def minion_pids(prefix):
    """The pids of the live processes of the minion installed under ``prefix``."""
    program = nodes.node_paths(prefix)["salt_minion"]
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if program in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


def job_steps(settings, job_id):
    from mc_project import jobs
    return {step["name"]: step for step in jobs.Jobs(settings["db_url"]).status(job_id)["steps"]}


def timings(record, steps):
    return "{:.1f}s ({})".format(record["seconds"], ", ".join(
        "{} {:.1f}s".format(name, step["seconds"]) for name, step in steps.items()))


def ping(salt_cli, minion_id):
    ret = salt_cli.run("test.ping", minion_tgt=minion_id, _timeout=30)
    return ret.data


def accepted(master):
    ret = master.salt_key_cli().run("--list", "accepted")
    return ret.data["minions"]


def inventory(settings):
    with db.session(settings["db_url"]) as sess:
        return {node.name: node for node in sess.scalars(select(ComputeNode))}


@pytest.fixture(scope="module")
def salt_cli(master):
    return master.salt_cli(timeout=60)


def local_node_table(node):
    """The nftables table the node's minion is configured with."""
    with open(nodes.node_paths(node["prefix"])["config"], encoding="utf-8") as fh:
        return nodes.configured_nft_table(fh.read())


def nft_tables():
    """The lines of ``nft list tables``: ``table ip NAME``, ``table bridge NAME``..."""
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout.split("\n")


def bridge_exists(bridge):
    return subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0


def haproxy_pids(prefix):
    """The haproxy processes running the proxy of the node installed under ``prefix``."""
    config = os.path.join(nodes.node_paths(prefix)["state_dir"], "haproxy.cfg")
    return [proc.pid for proc in psutil.process_iter(["name", "cmdline"])
            if proc.info["name"] == "haproxy" and config in (proc.info["cmdline"] or [])]


def node_traces(prefix, bridge, table, lxc_path=None):
    """What a node linked under ``prefix`` shows on this machine, by what a user lists."""
    found = ["nft " + line for line in nft_tables()
             if line in ("table ip {}".format(table), "table bridge {}".format(table))]
    if bridge_exists(bridge):
        found.append("bridge " + bridge)
    found += ["haproxy {}".format(pid) for pid in haproxy_pids(prefix)]
    found += ["minion {}".format(pid) for pid in minion_pids(prefix)]
    listed = subprocess.run(["lxc-ls", "-P", lxc_path], capture_output=True, text=True).stdout.split() \
        if lxc_path else []
    found += ["{} container".format(kind) for kind, name in (("golden", "corpus-golden"), ("spare", "corpus-spare"))
              if name in listed]
    return found


# --------------------------------------------------------------------------- linking


def test_this_machine_links_over_ssh_and_answers_as_a_minion(local_node, settings, master, salt_cli,
                                                            local_sshd, capsys):
    assert local_node["name"] == "node-local" and local_node["minion_id"] == "node-local"
    assert local_node["address"] == "127.0.0.1" and local_node["ssh_port"] == local_sshd.listen_port
    assert local_node["status"] == "active" and local_node["slots"] == 3
    assert ping(salt_cli, "node-local") is True
    assert "node-local" in accepted(master)
    paths = nodes.node_paths(local_node["prefix"])
    # corpus came from the shipped wheelhouse, into the node's own venv.
    shipped = sorted(name for name in os.listdir(paths["wheelhouse"]) if name.endswith(".whl"))
    assert shipped == sorted(name for name in os.listdir(settings["wheelhouse"]) if name.endswith(".whl"))
    check = subprocess.run([paths["python"], "-c", "import mc_project, salt.version; "
                            "print(mc_project.__file__, salt.version.__version__)"],
                           capture_output=True, text=True, check=False, cwd="/")
    assert check.returncode == 0, check.stderr
    module, version = check.stdout.split()
    assert module.startswith(paths["venv"] + "/") and version.startswith("3008")
    # The private key is the node's only, readable by root alone.
    pem = os.path.join(paths["pki_dir"], "minion.pem")
    assert os.stat(pem).st_mode & 0o777 == 0o600
    with open(os.path.join(paths["pki_dir"], "minion.pub"), encoding="utf-8") as fh:
        node_public = fh.read()
    with open(os.path.join(master.config["pki_dir"], "minions", "node-local"), encoding="utf-8") as fh:
        assert fh.read().strip() == node_public.strip()
    with open(paths["config"], encoding="utf-8") as fh:
        config = fh.read()
    written = yaml.safe_load(config)
    assert written["file_client"] == "remote" and written["master"] == settings["master_address"]
    assert "BEGIN" not in config
    steps = job_steps(settings, local_node["job_id"])
    assert [name for name in steps] == list(operations.LINK_NODE)
    assert all(step["status"] == "success" for step in steps.values())
    assert not any("PRIVATE KEY" in (step["log"] or "") for step in steps.values())
    # mc_lxc.setup_node ran: the bridge has the subnet's first address, haproxy runs.
    gateway = "{}/24".format(ipaddress.ip_network(local_node["subnet"])[1])
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", local_node["bridge"]],
                           capture_output=True, text=True, check=False).stdout
    assert " {} ".format(gateway) in shown
    assert proxy.running_pid(paths["state_dir"])
    with socket.create_connection(("127.0.0.1", local_node["http_port"]), timeout=5):
        pass
    with capsys.disabled():
        print("\nlink this machine: " + timings(local_node, steps))


def test_a_node_in_a_network_namespace_links_with_its_own_address(ns_node, local_node, netns_host,
                                                                   settings, master, salt_cli, capsys):
    assert ns_node["address"] == netns_host.address and ns_node["name"] == "node-ns"
    assert ping(salt_cli, "node-ns") is True
    assert {"node-local", "node-ns"} <= set(accepted(master))
    # Its minion runs inside the namespace and sees the namespace's address only.
    pids = minion_pids(ns_node["prefix"])
    assert pids and set(pids) <= set(netns_host.pids())
    ret = salt_cli.run("network.ip_addrs", minion_tgt="node-ns")
    assert netns_host.address in ret.data and "192.0.2.2" not in ret.data
    # Its subnet is not the other node's; its bridge and proxy are the namespace's own.
    assert ns_node["subnet"] and ns_node["subnet"] != local_node["subnet"]
    gateway = "{}/24".format(ipaddress.ip_network(ns_node["subnet"])[1])
    assert " {} ".format(gateway) in netns_host.exec("ip -o -4 addr show dev corpusbr0").stdout
    haproxy = proxy.running_pid(nodes.node_paths(ns_node["prefix"])["state_dir"])
    assert haproxy in netns_host.pids()
    with socket.create_connection((netns_host.address, 8080), timeout=5):
        pass
    with db.session(settings["db_url"]) as sess:
        host_key = sess.scalar(select(SshKey.public_key).join(ComputeNode, SshKey.node_id == ComputeNode.id)
                               .where(ComputeNode.name == "node-ns", SshKey.name == nodes.HOST_KEY_NAME))
    with open(os.path.join(netns_host.workdir, "ssh_host_ed25519_key.pub"), encoding="utf-8") as fh:
        assert host_key == " ".join(fh.read().split()[:2])
    steps = job_steps(settings, ns_node["job_id"])
    with capsys.disabled():
        print("\nlink a netns node through salt-run: " + timings(ns_node, steps))


def test_list_hosts_shows_both_nodes_with_free_slots(ns_node, local_node, ctl, master):
    ret = master.salt_run_cli(timeout=120).run("mc_cloud.list_hosts")
    assert ret.returncode == 0, ret
    assert ret.data == operations.list_hosts(ctl)
    hosts = {host["name"]: host for host in ret.data}
    assert set(hosts) == {"node-local", "node-ns"}
    assert hosts["node-local"] == {
        "name": "node-local", "address": "127.0.0.1", "dns_name": None, "slots": 3, "free_slots": 3,
        "guest_type": "lxc", "status": "active", "subnet": local_node["subnet"]}
    assert hosts["node-ns"]["free_slots"] == 5 and hosts["node-ns"]["address"] == "10.78.0.2"


def test_relinking_a_node_is_harmless(ns_node, netns_host, settings, ctl, master, salt_cli):
    paths = nodes.node_paths(ns_node["prefix"])
    with open(os.path.join(paths["pki_dir"], "minion.pub"), encoding="utf-8") as fh:
        key_before = fh.read()
    running_before = minion_pids(ns_node["prefix"])
    again = operations.link_node(ctl, netns_host.address, key=netns_host.key_path,
                                 name="node-ns", slots=6, http_port=8080, prefix=ns_node["prefix"],
                                 lxc_path=ns_node["lxc_path"])
    assert again["subnet"] == ns_node["subnet"] and again["slots"] == 6
    varying = ("slots", "free_slots", "job_id", "seconds")
    assert {key: value for key, value in again.items() if key not in varying} == \
        {key: value for key, value in ns_node.items() if key not in varying}
    with open(os.path.join(paths["pki_dir"], "minion.pub"), encoding="utf-8") as fh:
        assert fh.read() == key_before  # the accepted key is kept
    steps = job_steps(settings, again["job_id"])
    assert ", 0 bytes sent" in steps["node:ship"]["log"]  # nothing shipped twice
    assert ping(salt_cli, "node-ns") is True
    running = minion_pids(ns_node["prefix"])  # restarted: new code, key and config apply
    assert running and not set(running) & set(running_before)
    assert len(inventory(settings)) == 2


# --------------------------------------------------------------------------- refusals


def test_a_changed_host_key_is_refused(ns_node, netns_host, settings, ctl, salt_cli):
    # The namespace's sshd comes back with a new host key.
    key = os.path.join(netns_host.workdir, "ssh_host_ed25519_key")
    with open(os.path.join(netns_host.workdir, "sshd.pid"), encoding="utf-8") as fh:
        os.kill(int(fh.read()), signal.SIGTERM)
    os.remove(key)
    os.remove(key + ".pub")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    time.sleep(0.5)
    subprocess.run(["ip", "netns", "exec", netns_host.name, SSHD, "-f", netns_host.sshd_config,
                    "-E", netns_host.sshd_log], check=True)
    time.sleep(0.5)
    before = {name: node.slots for name, node in inventory(settings).items()}
    with pytest.raises(CorpusError, match=r"host key of 10\.78\.0\.2:22 changed since it was linked"):
        operations.link_node(ctl, netns_host.address, key=netns_host.key_path,
                             name="node-ns", slots=9, prefix=ns_node["prefix"], lxc_path=ns_node["lxc_path"])
    assert {name: node.slots for name, node in inventory(settings).items()} == before
    assert ping(salt_cli, "node-ns") is True


@pytest.mark.parametrize("case", ["bad key", "port closed", "no route"])
def test_an_unreachable_node_or_a_refused_key_records_nothing(case, local_node, local_sshd, settings,
                                                              ctl, master, places, tmp_path):
    kwargs = {"name": "node-bad", "prefix": places("bad") + "/corpus"}
    if case == "bad key":
        other_key = str(tmp_path / "other_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key], check=True)
        host, kwargs["key"], kwargs["port"] = "127.0.0.1", other_key, local_sshd.listen_port
        expected = r"refused the SSH key"
    elif case == "port closed":
        host, kwargs["key"], kwargs["port"] = "127.0.0.1", str(local_sshd.client_key), \
            free_port()
        expected = r"Cannot reach 127\.0\.0\.1:\d+ over SSH"
    else:
        host, kwargs["key"] = "10.78.0.99", str(local_sshd.client_key)  # nobody there
        expected = r"Cannot reach 10\.78\.0\.99:22 over SSH"
    with pytest.raises(CorpusError, match=expected) as failure:
        operations.link_node(ctl, host, **kwargs)
    assert "Traceback" not in str(failure.value) and "\n" not in str(failure.value)
    assert "node-bad" not in inventory(settings)
    assert "node-bad" not in accepted(master)
    with db.session(settings["db_url"]) as sess:
        job = sess.scalars(select(Job).order_by(Job.id.desc())).first()
        assert job.status == "failed" and "ssh:connect" in job.error


# --------------------------------------------------------------------------- unlinking


def test_unlink_is_refused_while_an_environment_lives_there_then_forced(local_node, settings, ctl,
                                                                       master, salt_cli):
    # The node's first environment would have copied the golden container into its LXC path.
    golden = salt_cli.run("mc_lxc.golden", "lxc_path=" + local_node["lxc_path"], minion_tgt="node-local",
                          _timeout=1800)
    assert golden.returncode == 0, golden
    table = local_node_table(local_node)
    assert table.startswith("corpus_ln")  # the link's nft_table= option
    before = node_traces(local_node["prefix"], local_node["bridge"], table, local_node["lxc_path"])
    assert {"nft table ip " + table, "nft table bridge " + table, "bridge " + local_node["bridge"],
            "golden container"} <= set(before), before
    assert haproxy_pids(local_node["prefix"]) and minion_pids(local_node["prefix"])
    with db.session(settings["db_url"]) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == "node-local"))
        sess.add(Environment(name="app-staging", node_id=node.id, env_type="staging", status="active"))
    assert {h["name"]: h["free_slots"] for h in operations.list_hosts(ctl)}["node-local"] == 2

    with pytest.raises(CorpusError, match=r"Node node-local still holds 1 environment\(s\) \(app-staging\)"):
        operations.unlink_node(ctl, "node-local")
    assert "node-local" in inventory(settings) and "node-local" in accepted(master)
    assert minion_pids(local_node["prefix"])

    result = operations.unlink_node(ctl, "node-local", force=True)
    assert result["minion_stopped"] is True and result["orphaned"] == ["app-staging"]
    # What linking set up is gone; what stays is said, with why.
    assert node_traces(local_node["prefix"], local_node["bridge"], table, local_node["lxc_path"]) == []
    removed = " / ".join(result["removed"])
    for what in ("haproxy (pid ", "nft tables ip {0} and bridge {0} removed".format(table),
                 "golden container corpus-golden removed", "bridge {} removed".format(local_node["bridge"])):
        assert what in removed, result
    assert result["kept"] == ["{} kept: corpus's virtualenv and wheelhouse there make a new link "
                              "quicker".format(local_node["prefix"])]
    assert "node-local" not in inventory(settings)
    assert "node-local" not in accepted(master)
    assert not os.path.exists(os.path.join(master.config["pki_dir"], "minions", "node-local"))
    assert minion_pids(local_node["prefix"]) == []
    with db.session(settings["db_url"]) as sess:
        env = sess.scalar(select(Environment).where(Environment.name == "app-staging"))
        assert env.node_id is None and env.status == "orphaned"
    assert [h["name"] for h in operations.list_hosts(ctl)] == ["node-ns"]

    with pytest.raises(CorpusError, match="No compute node named node-local"):
        operations.unlink_node(ctl, "node-local")


# --------------------------------------------------------------------------- resuming and moving tables


def link_in_background(master, sshd, name, prefix, bridge, *options):
    """``salt-run mc_cloud.link_node`` for this machine in a process group of its own."""
    cmdline = master.salt_run_cli(timeout=900).cmdline(
        "mc_cloud.link_node", "127.0.0.1", "key={}".format(sshd.client_key), "port={}".format(sshd.listen_port),
        "name=" + name, "slots=1", "http_port={}".format(free_port()), "prefix=" + prefix,
        "lxc_path={}/lxc".format(os.path.dirname(prefix)), "bridge=" + bridge, *options)
    return subprocess.Popen(cmdline, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_a_link_killed_mid_way_resumes_in_another_process_then_undoes_to_nothing(
        master, local_sshd, ctl, settings, salt_cli, places):
    # This machine's sshd is free again: node-local was unlinked above.
    root = places("resume")
    prefix, bridge = root + "/corpus", "clr" + uuid.uuid4().hex[:6]
    table = nodes.nft_table_for("node-resume")  # no nft_table=: the node's own
    proc = link_in_background(master, local_sshd, "node-resume", prefix, bridge)
    try:
        job_id, killed_at = kill_when_running(settings["db_url"], "node-resume",
                                              operations.LINK_NODE.index("salt:start_minion") + 1, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    salt_run = master.salt_run_cli(timeout=900)
    status = salt_run.run("mc_jobs.status", str(job_id))
    assert status.returncode == 1 and status.data["status"] == "interrupted", status
    assert "node-resume" not in inventory(settings)

    resumed = salt_run.run("mc_jobs.resume", str(job_id))
    assert resumed.returncode == 0, resumed
    assert resumed.data["status"] == "success", resumed.data
    steps = job_steps(settings, job_id)
    assert all(step["status"] == "success" for step in steps.values())
    assert ping(salt_cli, "node-resume") is True
    record = inventory(settings)["node-resume"]
    with socket.create_connection(("127.0.0.1", record.http_port), timeout=5):
        pass
    traces = node_traces(prefix, bridge, table)
    assert {"nft table ip " + table, "nft table bridge " + table, "bridge " + bridge} <= set(traces)
    assert haproxy_pids(prefix) and minion_pids(prefix)

    undone = salt_run.run("mc_jobs.undo", str(job_id))
    assert undone.returncode == 0, undone
    assert undone.data["status"] == "undone", undone.data
    assert node_traces(prefix, bridge, table, root + "/lxc") == []
    assert "node-resume" not in inventory(settings) and "node-resume" not in accepted(master)
    assert not os.path.exists(prefix)  # made by this link, removed by its undo


def test_a_node_moves_off_the_table_it_was_linked_with(master, local_sshd, ctl, settings, places):
    """A node linked with another table (as every node was with ``corpus``) gets its own when it
    is linked again without ``nft_table``; the old table goes, and unlinking takes the new one."""
    root = places("move")
    prefix, bridge = root + "/corpus", "clm" + uuid.uuid4().hex[:6]
    old, new = "corpus_old" + uuid.uuid4().hex[:6], nodes.nft_table_for("node-move")
    options = {"key": str(local_sshd.client_key), "port": local_sshd.listen_port, "name": "node-move",
               "slots": 1, "prefix": prefix, "lxc_path": root + "/lxc", "bridge": bridge}
    try:
        operations.link_node(ctl, "127.0.0.1", http_port=free_port(), nft_table=old, **options)
        assert {"table ip " + old, "table bridge " + old} <= set(nft_tables())
        operations.link_node(ctl, "127.0.0.1", http_port=free_port(), **options)
        assert {"table ip " + new, "table bridge " + new} <= set(nft_tables())
        assert not {"table ip " + old, "table bridge " + old} & set(nft_tables())
        result = operations.unlink_node(ctl, "node-move")
        assert "nft tables ip {0} and bridge {0} removed".format(new) in result["removed"]
        assert node_traces(prefix, bridge, new, root + "/lxc") == []
    finally:
        stop_minion(prefix)
        state_dir = nodes.node_paths(prefix)["state_dir"]
        proxy.stop(state_dir)
        for table in (old, new):
            nat.teardown(table)
        host.remove_bridge(bridge)


def test_a_minion_that_never_answers_leaves_nothing(local_node, local_sshd, settings, master_opts, master,
                                                    monkeypatch):
    monkeypatch.setattr(node_steps, "PING_TIMEOUT", 5)
    root = short_dir("cn-deaf-")
    try:
        # This machine is unlinked (above), and its minion now looks for a master where nobody is.
        deaf = Controller(master_opts)
        deaf.settings = dict(deaf.settings, master_address="10.78.0.99")
        with pytest.raises(CorpusError, match=r"minion node-deaf on 127\.0\.0\.1 did not answer test\.ping"):
            operations.link_node(deaf, "127.0.0.1", key=str(local_sshd.client_key),
                                 port=local_sshd.listen_port, name="node-deaf", prefix=root + "/corpus",
                                 lxc_path=root + "/lxc", bridge="cld" + uuid.uuid4().hex[:6])
        assert "node-deaf" not in inventory(settings)
        assert "node-deaf" not in accepted(master)
        assert not os.path.exists(root + "/corpus")  # made by this link, removed by its undo
        assert minion_pids(root + "/corpus") == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_node_without_python3_is_refused_in_one_sentence(salt_factories, settings, ctl, master,
                                                            places, tmp_path):
    # A host whose sessions find the tools corpus asks for first, but no python3.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "hostname", "ip", "sh"):
        os.symlink(shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin"), str(bin_dir / tool))
    sshd = salt_factories.get_sshd_daemon(
        script_name=SSHD,
        sshd_config_dict={"StrictModes": "no", "PermitRootLogin": "prohibit-password",
                          "Subsystem": "sftp /usr/lib/openssh/sftp-server", "SetEnv": "PATH=" + str(bin_dir)})
    with sshd.started():
        with pytest.raises(CorpusError, match=r"127\.0\.0\.1 has no usable python3 \(corpus needs python3 "
                                              r"and python3-venv there\)"):
            operations.link_node(ctl, "127.0.0.1", key=str(sshd.client_key),
                                 port=sshd.listen_port, name="node-nopython", prefix=places("nopy") + "/corpus",
                                 bridge="clp" + uuid.uuid4().hex[:6])
    assert "node-nopython" not in inventory(settings)
    assert "node-nopython" not in accepted(master)
