"""A real compute node on this machine: bridge, nftables NAT, haproxy and LXC containers.

Everything lives under names of its own (bridge ``ctbr<x>``, nft table ``corpus_t<x>``, an
``lxc_path`` and a state dir in the pytest tmp dir, haproxy on a free port of 127.0.0.1), so
the test never touches another node's containers, rules or routes. The golden image comes
from the machine's cache (``tests/support/lxc_cache.py``).
"""

import http.client
import ipaddress
import os
import random
import subprocess
import threading
import time

import paramiko
import pytest
import salt.utils.crypt

from mc_project.errors import CorpusError
from mc_project.node import firewall, host, images, inside, lxc, minion, nat, proxy, spares
from support import lxc_cache, needs
from support.ports import free_port
from support.wait import wait_port

pytestmark = pytest.mark.needs(*needs.LXC_NODE)


def unused_subnet():
    """A /24 under 10.0.0.0/8 that no interface of this machine is on."""
    shown = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    used = [
        ipaddress.IPv4Interface(word).network for word in shown.split() if "/" in word and word[0].isdigit()
    ]
    while True:
        subnet = ipaddress.IPv4Network(
            "10.{}.{}.0/24".format(random.randrange(200, 250), random.randrange(256))
        )
        if not any(subnet.overlaps(network) for network in used):
            return subnet


def node_addresses():
    """This machine's own global IPv4 addresses (what a client outside would connect to)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3].split("/")[0] for line in shown.splitlines()]


def openssl_hash(password):
    """A SHA-512 crypt hash, made as the controller makes it."""
    made = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


class Node:
    def __init__(self, root):
        suffix = "{:04x}".format(random.randrange(1 << 16))
        self.suffix = suffix
        self.bridge = "ctbr" + suffix
        self.subnet = unused_subnet()
        self.table = "corpus_t" + suffix
        self.lxc_path = str(root / "lxc")
        self.state_dir = str(root / "state")
        self.http_port = free_port()
        self.domain = "web{}.corpus.test".format(suffix)

    def address(self, host_number):
        return "{}/24".format(self.subnet.network_address + host_number)

    def name(self, short):
        return "ct-{}-{}".format(self.suffix, short)

    def http_get(self, host_header, path="/"):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host_header})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("node"))
    try:
        host.setup_node(
            node.bridge,
            str(node.subnet),
            node.http_port,
            node.lxc_path,
            node.state_dir,
            node.table,
            "127.0.0.1",
        )
        lxc_cache.golden(node.lxc_path)
        yield node
    finally:
        spares.remove(node.lxc_path)
        for container in lxc.list_containers(node.lxc_path):
            lxc.destroy(container["name"], node.lxc_path)
        lxc.destroy(lxc.GOLDEN_NAME, node.lxc_path)
        proxy.stop(node.state_dir)
        nat.teardown(node.table, node.state_dir)
        host.remove_bridge(node.bridge)


@pytest.fixture(scope="module")
def web(node):
    """A started container with a configured address, shared by the tests below in order."""
    name = node.name("web")
    lxc.clone(name, node.lxc_path)
    lxc.configure(name, node.domain, node.address(10), None, node.bridge, node.lxc_path)
    # As mc_lxc.configure does: pinned to its port, MAC and address, else the bridge drops its frames.
    firewall.allow_container(lxc.network_identity(name, node.lxc_path), node.table, node.state_dir)
    lxc.start(name, node.lxc_path)
    return name


def ssh_run(host_address, port, pkey, command):
    """Run ``command`` over SSH as root; returns (output, the server's host key line)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    # A connection that times out is tried again (twice): on a machine busy with other
    # nodes a first SYN can go unanswered; a NAT that is wrong times out every time.
    for attempt in range(3):
        try:
            client.connect(host_address, port=port, username="root", pkey=pkey, look_for_keys=False,
                           allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
            break
        except TimeoutError:
            if attempt == 2:
                raise
    try:
        key = client.get_transport().get_remote_server_key()
        _, stdout, _ = client.exec_command(command, timeout=10)
        return stdout.read().decode().strip(), "{} {}".format(key.get_name(), key.get_base64())
    finally:
        client.close()


def test_setup_node_is_idempotent(node):
    again = host.setup_node(
        node.bridge, str(node.subnet), node.http_port, node.lxc_path, node.state_dir, node.table, "127.0.0.1"
    )
    assert again["bridge"]["changed"] is False
    assert again["nat"]["created"] is False
    assert again["proxy"]["changed"] is False
    assert lxc_cache.golden(node.lxc_path)["built"] is False


def test_a_clone_is_a_stopped_container_with_host_keys_of_its_own(node, web):
    other = node.name("other")
    result = lxc.clone(other, node.lxc_path)
    assert result["disk_size_mb"] == images.DEFAULT_DISK_SIZE_MB
    # Two containers, two id ranges.
    assert result["id_base"] == lxc.id_base(other, node.lxc_path) != lxc.id_base(web, node.lxc_path)
    assert lxc.info(other, node.lxc_path)["state"] == "STOPPED"
    lxc.configure(other, "other.corpus.test", node.address(11), None, node.bridge, node.lxc_path)
    web_keys, other_keys = inside.host_keys(web, node.lxc_path), inside.host_keys(other, node.lxc_path)
    assert any(key.startswith("ssh-ed25519 ") for key in web_keys)
    assert not set(web_keys) & set(other_keys)
    # Configuring again keeps the keys (SSHFP records stay true) and the address.
    lxc.configure(other, "other.corpus.test", node.address(11), None, node.bridge, node.lxc_path)
    assert inside.host_keys(other, node.lxc_path) == other_keys
    assert lxc.list_containers(node.lxc_path) == [
        {"name": other, "state": "STOPPED", "ip": node.address(11).split("/")[0]},
        {"name": web, "state": "RUNNING", "ip": node.address(10).split("/")[0]},
    ]
    # A stopped container is changed through its image.
    password_hash = openssl_hash("stopped")
    inside.set_root_password(other, password_hash, node.lxc_path)
    shadow = inside.run(other, node.lxc_path, ["getent", "shadow", "root"], "Reading shadow")
    assert shadow.split(":")[1] == password_hash
    with pytest.raises(CorpusError, match="Container {} already exists".format(other)):
        lxc.clone(other, node.lxc_path)
    assert lxc.clone(other, node.lxc_path, exist_ok=True)["changed"] is False
    assert inside.host_keys(other, node.lxc_path) == other_keys
    lxc.destroy(other, node.lxc_path)
    assert not os.path.exists(os.path.join(node.lxc_path, other))
    # Made again, it gets its id range back.
    assert lxc.clone(other, node.lxc_path)["id_base"] == result["id_base"]
    lxc.destroy(other, node.lxc_path)


def wait_for_spare(lxc_path, timeout=120):
    """The node's spare once a refill made it ready."""
    deadline = time.monotonic() + timeout
    ready = os.path.join(lxc.container_dir(spares.SPARE_NAME, lxc_path), spares.READY_FILE)
    while not os.path.isfile(ready):
        assert time.monotonic() < deadline, "no spare container after {}s".format(timeout)
        time.sleep(0.2)
    return spares.SPARE_NAME


def loop_devices_of(lxc_path):
    """The backing files under ``lxc_path`` of the loop devices in use."""
    shown = subprocess.run(["losetup", "-l", "-n", "-O", "BACK-FILE"], capture_output=True, text=True,
                           check=True).stdout
    return [line for line in shown.split() if line.startswith(lxc_path)]


def test_the_spare_becomes_the_next_container_and_the_next_spare_is_made(node):
    assert spares.refill(node.lxc_path) == "made"
    assert spares.refill(node.lxc_path) == "ready"
    spare_base = lxc.id_base(spares.SPARE_NAME, node.lxc_path)
    assert lxc.read_config(spares.SPARE_NAME, node.lxc_path)["lxc.start.auto"] == "0"
    spare_keys = inside.host_keys(spares.SPARE_NAME, node.lxc_path)
    assert any(key.startswith("ssh-ed25519 ") for key in spare_keys)
    assert spares.SPARE_NAME not in [c["name"] for c in lxc.list_containers(node.lxc_path)]

    name = node.name("spare")
    made = spares.clone(name, node.lxc_path)
    assert made["spare"] is True and made["id_base"] == spare_base
    assert made["disk_size_mb"] == images.DEFAULT_DISK_SIZE_MB
    with open(os.path.join(lxc.container_dir(name, node.lxc_path), "config"), encoding="utf-8") as fh:
        config = fh.read()
    assert "loop:{}".format(lxc.rootdev_path(name, node.lxc_path)) in config
    assert spares.SPARE_NAME not in config
    assert lxc.read_config(name, node.lxc_path)["lxc.start.auto"] == "1"
    assert inside.host_keys(name, node.lxc_path) == spare_keys
    # It is a container like any other: configured, it boots and answers as its own root.
    lxc.configure(name, "spare.corpus.test", node.address(30), None, node.bridge, node.lxc_path)
    firewall.allow_container(lxc.network_identity(name, node.lxc_path), node.table, node.state_dir)
    lxc.start(name, node.lxc_path)
    assert inside.run(name, node.lxc_path, ["id", "-u"], "Asking who runs").strip() == "0"
    assert inside.host_keys(name, node.lxc_path) == spare_keys

    # The next spare is made in the background, in an id range of its own.
    wait_for_spare(node.lxc_path)
    assert lxc.id_base(spares.SPARE_NAME, node.lxc_path) not in (spare_base, None)
    assert inside.host_keys(spares.SPARE_NAME, node.lxc_path) != spare_keys
    lxc.destroy(name, node.lxc_path)
    firewall.forget_container(name, node.table, node.state_dir)


def test_a_spare_of_another_golden_image_or_size_is_not_taken(node):
    if spares.refill(node.lxc_path) == "busy":  # the one the last clone started
        wait_for_spare(node.lxc_path)
    name = node.name("sized")
    bigger = images.DEFAULT_DISK_SIZE_MB + 256
    made = spares.clone(name, node.lxc_path, disk_size_mb=bigger, spare=False)
    assert made["spare"] is False and made["disk_size_mb"] == bigger
    lxc.destroy(name, node.lxc_path)
    # The golden image was made again since the spare was: the spare is stale.
    golden = lxc.rootdev_path(lxc.GOLDEN_NAME, node.lxc_path)
    stat = os.stat(golden)
    os.utime(golden, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert spares.take(name, node.lxc_path) is False
    assert spares.refill(node.lxc_path) == "made"
    assert spares.take(name, node.lxc_path) is True
    lxc.destroy(name, node.lxc_path)
    with pytest.raises(CorpusError, match="corpus-spare is a spare container's name"):
        spares.clone(spares.SPARE_NAME, node.lxc_path)


def test_removing_the_spare_stops_its_refill_and_leaves_nothing(node):
    spares.remove(node.lxc_path)
    pid = spares.refill_in_background(node.lxc_path)
    pid_file = os.path.join(node.lxc_path, spares.REFILL_PID)
    deadline = time.monotonic() + 30
    while not os.path.isfile(pid_file):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    removed = spares.remove(node.lxc_path)
    assert "refill process {}".format(pid) in removed
    assert not os.path.exists(lxc.container_dir(spares.SPARE_NAME, node.lxc_path))
    assert not [path for path in loop_devices_of(node.lxc_path)
                if path.startswith(lxc.container_dir(spares.SPARE_NAME, node.lxc_path))]
    assert not [entry for entry in os.listdir(node.lxc_path) if entry.startswith(".corpus-spare")]


def test_ssh_reaches_the_container_through_the_nated_port(node, web):
    key = paramiko.ECDSAKey.generate()
    inside.authorize_key(web, "{} {} test".format(key.get_name(), key.get_base64()), node.lxc_path)
    port = free_port()
    address = node.address(10).split("/")[0]
    assert nat.map_port(port, address, 22, table=node.table, state_dir=node.state_dir)["changed"] is True
    assert nat.map_port(port, address, 22, table=node.table, state_dir=node.state_dir)["changed"] is False
    with pytest.raises(CorpusError, match="already mapped to {}:22".format(address)):
        nat.map_port(port, node.address(11).split("/")[0], 22, table=node.table, state_dir=node.state_dir)
    # From the node itself: to its own address (as from outside) and to its bridge address.
    for target in node_addresses()[:1] + [str(node.subnet.network_address + 1)]:
        out, server_key = ssh_run(target, port, key, "cat /etc/hostname; ip -4 -o addr show dev eth0")
        assert out.splitlines()[0] == node.domain.split(".")[0]
        assert " {} ".format(node.address(10)) in out
        assert server_key in inside.host_keys(web, node.lxc_path)
    assert {"external_port": port, "address": address, "internal_port": 22, "protocol": "tcp"} in nat.ports(
        node.table
    )


def test_the_container_boots_clean_with_its_route_through_the_node(node, web):
    route = inside.attach(web, "ip route show default", node.lxc_path)["stdout"]
    assert "default via {} dev eth0".format(node.subnet.network_address + 1) in route
    # No failed unit: the static address does not trip networking.service.
    running = inside.attach(web, "timeout 60 systemctl is-system-running --wait", node.lxc_path)
    assert running["stdout"].strip() == "running", running


def test_the_container_is_unprivileged_in_an_id_range_of_its_own(node, web):
    base = lxc.id_base(web, node.lxc_path)
    assert base is not None and base >= lxc.ID_POOL_START
    for id_map in ("uid_map", "gid_map"):
        mapped = inside.attach(web, "cat /proc/self/" + id_map, node.lxc_path)["stdout"].split()
        assert mapped == ["0", str(base), "65536"]
    mounted = inside.attach(web, "mount -t tmpfs none /mnt", node.lxc_path)
    assert mounted["retcode"] != 0 and "permission denied" in mounted["stderr"].lower()
    assert inside.attach(web, "dmesg", node.lxc_path)["retcode"] != 0
    # Root's file in the container is the container's base on the node.
    made = inside.attach(web, "touch /root/made-inside && stat -c '%u %g' /root/made-inside", node.lxc_path)
    assert made["stdout"].split() == ["0", "0"]
    init = lxc.lxc_info(web, node.lxc_path)["pid"]
    seen = os.stat("/proc/{}/root/root/made-inside".format(init))
    assert (seen.st_uid, seen.st_gid) == (base, base)
    # The shift kept setuid programs setuid; init has none of the dropped capabilities.
    passwd = os.stat("/proc/{}/root/usr/bin/passwd".format(init))
    assert passwd.st_uid == base and passwd.st_mode & 0o4000
    with open("/proc/{}/status".format(init), encoding="utf-8") as fh:
        bounding = int(next(line for line in fh if line.startswith("CapBnd:")).split()[1], 16)
    # sys_module 16, sys_rawio 17, sys_admin 21, sys_time 25, mac_override 32, mac_admin 33, syslog 34
    assert not bounding & sum(1 << bit for bit in (16, 17, 21, 25, 32, 33, 34))
    assert bounding & (1 << 18)  # sys_chroot: sshd's privilege separation needs it


def test_a_container_made_privileged_becomes_unprivileged_when_it_starts(node, web):
    # As clone made them before: the golden's files as they are, no id range (and no network).
    legacy = node.name("legacy")
    directory = os.path.join(node.lxc_path, legacy)
    os.makedirs(os.path.join(directory, "rootfs"))
    images.copy_sparse(lxc.rootdev_path(lxc.GOLDEN_NAME, node.lxc_path), os.path.join(directory, "rootdev"))
    with open(os.path.join(directory, "config"), "w", encoding="utf-8") as fh:
        fh.write(lxc.render_config(legacy, os.path.join(directory, "rootdev")))
    assert lxc.id_base(legacy, node.lxc_path) is None
    # Host keys made by the node's root, as configure made them.
    inside.run(legacy, node.lxc_path, ["ssh-keygen", "-A"], "Making host keys")
    try:
        lxc.start(legacy, node.lxc_path)
        base = lxc.id_base(legacy, node.lxc_path)
        assert base not in (None, lxc.id_base(web, node.lxc_path))
        mapped = inside.attach(legacy, "cat /proc/self/uid_map", node.lxc_path)["stdout"].split()
        assert mapped == ["0", str(base), "65536"]
        owner = inside.attach(legacy, "stat -c %u /etc/ssh/ssh_host_ed25519_key", node.lxc_path)["stdout"]
        assert owner.strip() == "0"
        # Its sshd reads those keys: it starts (no address, so start did not wait for it).
        deadline = time.monotonic() + 60
        while True:
            sshd = inside.attach(legacy, "systemctl is-active ssh", node.lxc_path)
            if sshd["stdout"].strip() == "active" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sshd["stdout"].strip() == "active", sshd
    finally:
        lxc.destroy(legacy, node.lxc_path)


def test_http_is_routed_by_host_header_and_reloads_keep_serving(node, web):
    address = node.address(10).split("/")[0]
    started = inside.attach(
        web,
        "mkdir -p /srv/www && echo hello from web > /srv/www/index.html && "
        "systemd-run --unit corpus-test-http python3 -m http.server 8000 --directory /srv/www",
        node.lxc_path,
    )
    assert started["retcode"] == 0, started
    wait_port(address, 8000)
    assert node.http_get(node.domain)[0] == 503
    proxy.add_route(node.domain, address, 8000, node.state_dir)
    assert node.http_get(node.domain) == (200, "hello from web\n")
    assert node.http_get("www." + node.domain.upper() + ":80")[0] == 200
    assert node.http_get("unknown.test")[0] == 503
    assert node.http_get("x" + node.domain)[0] == 503

    statuses, stop = [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            statuses.append(node.http_get(node.domain)[0])

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        for n in range(4):
            proxy.add_route("other{}.test".format(n), address, 8000, node.state_dir)
        for n in range(4):
            proxy.remove_route("other{}.test".format(n), node.state_dir)
    finally:
        stop.set()
        asker.join()
    assert statuses and set(statuses) == {200}
    assert [route["domain"] for route in proxy.routes(node.state_dir)] == [node.domain]


def test_disk_enlarges_and_trims_and_a_trim_below_use_is_refused(node, web):
    before = lxc.info(web, node.lxc_path)
    assert before["disk_size_mb"] == 2048 and 300 < before["disk_used_mb"] < 1500

    assert lxc.resize(web, 3072, node.lxc_path)["disk_size_mb"] == 3072
    df = inside.attach(web, ["df", "-BM", "--output=size", "/"], node.lxc_path)["stdout"].split()[-1]
    assert int(df.rstrip("M")) > 2900
    assert lxc.info(web, node.lxc_path)["state"] == "RUNNING"

    with pytest.raises(CorpusError, match="cannot be trimmed below"):
        lxc.resize(web, before["disk_used_mb"] - 50, node.lxc_path)
    after_refusal = lxc.info(web, node.lxc_path)
    assert (after_refusal["disk_size_mb"], after_refusal["state"]) == (3072, "RUNNING")

    assert lxc.resize(web, 1536, node.lxc_path)["disk_size_mb"] == 1536
    assert lxc.info(web, node.lxc_path)["state"] == "RUNNING"
    assert os.path.getsize(lxc.rootdev_path(web, node.lxc_path)) == 1536 * images.MIB
    # The data survived, and the container answers SSH again.
    assert inside.attach(web, "cat /srv/www/index.html", node.lxc_path)["stdout"] == "hello from web\n"


def test_root_password_is_set_from_its_hash(node, web):
    password_hash = openssl_hash("correct horse")
    inside.set_root_password(web, password_hash, node.lxc_path)
    shadow = inside.attach(web, "getent shadow root", node.lxc_path)["stdout"]
    assert shadow.split(":")[1] == password_hash


def test_install_minion_returns_the_fingerprint_of_the_key_it_starts_with(node, web, tmp_path):
    result = minion.install_minion(
        web,
        "10.0.0.1",
        "web.corpus.test",
        lxc_cache.wheelhouse(),
        node.lxc_path,
        publish_port=14505,
        master_port=14506,
    )
    public = inside.attach(web, "cat /etc/salt/pki/minion/minion.pub", node.lxc_path)["stdout"]
    (tmp_path / "minion.pub").write_text(public)
    # This node's golden image has no venv baked in: pip made it, and says so.
    assert result.pop("path").startswith("pip (")
    assert result == {
        "minion_id": "web.corpus.test",
        "fingerprint": salt.utils.crypt.pem_finger(str(tmp_path / "minion.pub"), sum_type="sha256"),
        "public_key": public,
    }
    assert inside.attach(web, "systemctl is-active corpus-minion", node.lxc_path)["stdout"].strip() == "active"
    config = inside.attach(web, "cat /etc/salt/minion.d/corpus.conf", node.lxc_path)["stdout"]
    assert 'master: "10.0.0.1"' in config and "master_port: 14506" in config


def test_execution_module_answers_and_refuses_in_one_sentence(node, web, salt_local):
    call = salt_local()
    info = call("mc_lxc.info", web, "lxc_path=" + node.lxc_path, check=True).local
    assert info["state"] == "RUNNING" and info["ip"] == node.address(10).split("/")[0]
    refused = call("mc_lxc.clone", web, "lxc_path=" + node.lxc_path)
    assert refused.returncode == 1
    assert "Container {} already exists in {}.".format(web, node.lxc_path) in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_bad_input_is_refused_and_changes_nothing(node, web):
    # Asking a running container for the configuration it has is no change (a resumed job does).
    again = lxc.configure(web, node.domain, node.address(10), None, node.bridge, node.lxc_path)
    assert again["changed"] is False
    with pytest.raises(CorpusError, match="must be stopped to be configured"):
        lxc.configure(web, "web.corpus.test", node.address(12), None, node.bridge, node.lxc_path)
    assert lxc.container_address(web, node.lxc_path) == node.address(10).split("/")[0]
    with pytest.raises(CorpusError, match="There is no container ct-nothing"):
        lxc.start("ct-nothing", node.lxc_path)
    broken = node.name("nobridge")
    lxc.clone(broken, node.lxc_path)
    lxc.configure(broken, "nobridge", node.address(13), None, "ctnobr" + node.suffix, node.lxc_path)
    with pytest.raises(
        CorpusError, match=r'Starting container {} failed: .*bridge "ctnobr{}"'.format(broken, node.suffix)
    ):
        lxc.start(broken, node.lxc_path)
    assert lxc.state(broken, node.lxc_path) == "STOPPED"
    lxc.destroy(broken, node.lxc_path)
    with pytest.raises(CorpusError, match="too small for the golden image"):
        lxc.clone(node.name("tiny"), node.lxc_path, disk_size_mb=300)
    assert not os.path.exists(os.path.join(node.lxc_path, node.name("tiny")))


def test_mappings_and_routes_made_at_the_same_time_all_land(node, web):
    address = node.address(10).split("/")[0]
    ports = [free_port() for _ in range(6)]

    def map_and_route(n):
        nat.map_port(ports[n], address, 22, table=node.table, state_dir=node.state_dir)
        proxy.add_route("parallel{}.test".format(n), address, 8000, node.state_dir)

    threads = [threading.Thread(target=map_and_route, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(ports) <= {m["external_port"] for m in nat.ports(node.table)}
    domains = {route["domain"] for route in proxy.routes(node.state_dir)}
    assert {"parallel{}.test".format(n) for n in range(6)} <= domains
    for n in range(6):
        proxy.remove_route("parallel{}.test".format(n), node.state_dir)
        nat.unmap_port(ports[n], table=node.table, state_dir=node.state_dir)


def test_destroy_leaves_no_container_rule_or_route(node, web):
    image = lxc.rootdev_path(web, node.lxc_path)
    for mapping in nat.ports(node.table):
        nat.unmap_port(mapping["external_port"], table=node.table, state_dir=node.state_dir)
    proxy.remove_route(node.domain, node.state_dir)
    assert lxc.destroy(web, node.lxc_path) == {"name": web, "destroyed": True}
    assert firewall.forget_container(web, node.table, node.state_dir)["changed"] is True
    assert firewall.hosts(node.table) == [] and firewall.load_saved(node.state_dir) == {}

    assert not os.path.exists(os.path.join(node.lxc_path, web))
    assert nat.ports(node.table) == []
    listed = subprocess.run(["nft", "list", "table", "ip", node.table], capture_output=True, text=True).stdout
    assert node.address(10).split("/")[0] not in listed
    assert proxy.routes(node.state_dir) == []
    assert node.domain not in open(os.path.join(node.state_dir, "haproxy.cfg"), encoding="utf-8").read()
    assert node.http_get(node.domain)[0] == 503
    assert subprocess.run(["losetup", "-j", image], capture_output=True, text=True).stdout == ""
    assert lxc.list_containers(node.lxc_path) == []
    assert lxc.destroy(web, node.lxc_path) == {"name": web, "destroyed": False}
