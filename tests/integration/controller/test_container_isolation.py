"""The node's firewall, probed from inside a container as an attacker would.

Two environments on node1: ``accapp`` (the attacker, root in its container) and ``accother``.
From ``accapp``: taking ``accother``'s address over (the address added, gratuitous ARP, frames
with ``accother``'s MAC) changes nothing the node sees (its neighbour entry, the proxy's
answers, the NATed SSH port's host key); ``accother``'s ports, the node's sshd and a service
the node binds to 127.0.0.1 do not answer; the master's ports still do (its minion answers).
From the host in node2's network namespace, ``accother`` answers only on its NATed SSH port.
"""

import shlex
import socket
import subprocess
import threading
import time

import pytest
import requests

from mc_project.node import firewall, lxc
from mc_project.node.inside import attach

BRIDGE = "corpusbr0"  # node1's, linked with the default bridge
NAMES = ("accapp", "accother")

# Runs in the attacker's container: ``python3 - OTHER_IP OTHER_MAC GATEWAY``.
TAKEOVER = r"""
import socket, struct, subprocess, sys, time
other_ip, other_mac, gateway = sys.argv[1:4]
subprocess.run(["ip", "addr", "add", other_ip + "/32", "dev", "eth0"], check=True)
own_mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
spoofed_mac = bytes.fromhex(other_mac.replace(":", ""))
ip, gw = socket.inet_aton(other_ip), socket.inet_aton(gateway)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))

def arp(source_mac, op, target_mac, target_ip, to=b"\xff" * 6):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + source_mac + ip + target_mac + target_ip
    raw.send(to + source_mac + b"\x08\x06" + body)

for _ in range(3):
    for mac in (own_mac, spoofed_mac):
        arp(mac, 1, b"\x00" * 6, ip)               # gratuitous request
        arp(mac, 2, b"\xff" * 6, ip)               # gratuitous reply
        arp(mac, 2, b"\x00" * 6, gw)               # "other_ip is at mac", to the node
    # IPv4 from the taken address: the node would learn it from any of these
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((other_ip, 0))
        udp.sendto(b"x", (gateway, 9))
    time.sleep(0.2)
subprocess.run(["ip", "addr", "del", other_ip + "/32", "dev", "eth0"], check=True)
print("sent")
"""

# ``python3 - HOST PORT``: prints what a TCP connection got ("open", "timeout" or the errno's name).
CONNECT = r"""
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, repr(exc)))
"""
# What a connection the firewall stops gets: reset, nothing, or no ARP answer for the address.
STOPPED = ("ECONNREFUSED", "timeout", "EHOSTUNREACH")

# ``python3 - GATEWAY PORT``: 127.0.0.1 routed to the node instead of the container's own loopback.
LOOPBACK_VIA_NODE = r"""
import errno, socket, subprocess, sys
gateway, port = sys.argv[1:3]
for cmd in ("sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1",
            "ip route replace 127.0.0.1/32 via {} dev eth0 onlink table 100".format(gateway),
            "ip rule add pref 10 to 127.0.0.1/32 lookup 100",
            "ip rule add pref 20 lookup local", "ip rule del pref 0 lookup local"):
    subprocess.run(cmd.split(), check=True)
print(subprocess.run(["ip", "route", "get", "127.0.0.1"], capture_output=True, text=True).stdout.split()[:5],
      file=sys.stderr)
try:
    socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
    print("open")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, repr(exc)))
"""


def inside(node, name, script, *args):
    out = attach(name, ["python3", "-", *map(str, args)], node["lxc_path"], input=script, timeout=120)
    assert out["retcode"] == 0, out
    return out["stdout"].strip()


def connect_from(node, name, host, port):
    return inside(node, name, CONNECT, host, port)


def http(node, host):
    return requests.get("http://{}:{}/".format(node["address"], node["http_port"]), headers={"Host": host},
                        timeout=5)


def host_key(node, port):
    shown = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), node["address"]], capture_output=True,
                           text=True, timeout=30).stdout
    return " ".join(shown.split()[1:3])


def gateway(node):
    return node["subnet"].rsplit(".", 1)[0] + ".1"


def neighbour(address):
    return subprocess.run(["ip", "neigh", "show", address, "dev", BRIDGE], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def envs(salt_run, node1):
    made = {}
    try:
        for name in NAMES:
            ret = salt_run.run("mc_cloud.init_env", name, "dev", "host=node1")
            assert ret.returncode == 0, ret
            made[name] = ret.data["access"]
            made[name]["identity"] = lxc.network_identity(name, node1["lxc_path"])
            serve = ("mkdir -p /srv/www && echo {} > /srv/www/index.html && systemd-run --unit corpus-test-http "
                     "python3 -m http.server 8080 --directory /srv/www").format(name)
            started = attach(name, serve, node1["lxc_path"])
            assert started["retcode"] == 0, started
        yield made
    finally:
        for name in made:
            assert salt_run.run("mc_cloud.destroy_env", name).returncode == 0


@pytest.fixture
def loopback_service():
    """A TCP service of the node bound to 127.0.0.1 only."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.5)
        accepted = []
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    pass
        thread = threading.Thread(target=serve)
        thread.start()
        try:
            yield {"port": server.getsockname()[1], "accepted": accepted}
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()


def test_each_container_is_pinned_to_its_own_port_mac_and_address(envs, node1):
    pinned = {}
    for name in NAMES:
        identity = envs[name]["identity"]
        assert identity["port"] == firewall.port_name(BRIDGE, name, node1["lxc_path"])
        assert identity["hwaddr"] == attach(name, "cat /sys/class/net/eth0/address", node1["lxc_path"])[
            "stdout"].strip()
        pinned[identity["port"]] = (identity["hwaddr"], identity["address"])
    hosts = {port: (mac, address) for port, mac, address in firewall.hosts(node1["nft_table"])}
    assert {port: hosts.get(port) for port in pinned} == pinned
    assert subprocess.run(["sysctl", "-n", "net.ipv4.conf.{}.route_localnet".format(BRIDGE)], capture_output=True,
                          text=True).stdout.strip() == "0"


def test_a_container_reaches_neither_another_container_nor_the_nodes_own_services(envs, node1, sshd):
    other = envs["accother"]["identity"]["address"]
    assert connect_from(node1, "accother", other, 8080) == "open"  # its own app answers it
    for host, port in [(other, 8080), (other, 22),  # the other container, directly
                       (gateway(node1), sshd["port"]), (node1["address"], sshd["port"])]:  # the node's sshd
        assert connect_from(node1, "accapp", host, port) in STOPPED, (host, port)


def test_from_outside_a_container_answers_only_through_its_nated_ssh_port(envs, node1, node2_host):
    def connect(host, port):  # from the host in the network namespace, routed through node1
        return node2_host.exec("python3 -c {} {} {}".format(shlex.quote(CONNECT), host, port)).stdout.strip()

    other = envs["accother"]
    assert connect(node1["address"], other["ssh_port"]) == "open"
    for port in (8080, 22):
        assert connect(other["identity"]["address"], port) in STOPPED, port


def test_taking_over_another_containers_address_changes_nothing_the_node_sees(envs, node1):
    other = envs["accother"]["identity"]
    attacker = envs["accapp"]["identity"]
    keys = {name: host_key(node1, envs[name]["ssh_port"]) for name in NAMES}
    assert all(keys.values()) and keys["accapp"] != keys["accother"]
    for name in NAMES:  # the node has talked to both: it has neighbour entries for them
        deadline = time.monotonic() + 30
        while http(node1, "{}.corpus.test".format(name)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)  # the app was started a moment ago
        assert http(node1, "{}.corpus.test".format(name)).text == name + "\n"
    assert other["hwaddr"] in neighbour(other["address"])

    assert inside(node1, "accapp", TAKEOVER, other["address"], other["hwaddr"], gateway(node1)) == "sent"

    assert attacker["hwaddr"] not in neighbour(other["address"])
    for _ in range(3):
        for name in NAMES:
            assert http(node1, "{}.corpus.test".format(name)).text == name + "\n"
    assert other["hwaddr"] in neighbour(other["address"])
    assert {name: host_key(node1, envs[name]["ssh_port"]) for name in NAMES} == keys


def test_a_service_the_node_binds_to_its_loopback_does_not_answer_a_container(envs, node1, loopback_service):
    with socket.create_connection(("127.0.0.1", loopback_service["port"]), timeout=3):
        pass  # it does answer on the node
    got = inside(node1, "accapp", LOOPBACK_VIA_NODE, gateway(node1), loopback_service["port"])
    assert got in STOPPED, got
    peers = [conn.getpeername()[0] for conn in loopback_service["accepted"]]
    assert envs["accapp"]["identity"]["address"] not in peers


def test_the_masters_ports_still_answer_the_containers_minions(envs, ctl):
    for name in NAMES:
        assert ctl.call("{}.corpus.test".format(name), "test.ping", timeout=60) is True
