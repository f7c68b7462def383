"""Preparing a machine to be a compute node: bridge, forwarding, NAT table, firewall, proxy;
and taking them away again when the node is unlinked."""

import contextlib
import ipaddress
import os
import re
import shutil

from mc_project.errors import CorpusError
from mc_project.node import firewall, image_build, lxc, nat, proxy, spares, tables
from mc_project.node.shell import file_lock, run

DEFAULT_BRIDGE = "corpusbr0"
DEFAULT_SUBNET = "10.77.0.0/24"
BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# What a node runs, and the Debian packages that bring it (from the node's own mirror).
NODE_TOOLS = {
    "lxc-start": "lxc",
    "lxc-create": "lxc",
    "/usr/share/lxc/templates/lxc-debian": "lxc-templates",
    "debootstrap": "debootstrap",
    "nft": "nftables",
    # Unprivileged containers: LXC maps their ids with newuidmap and newgidmap.
    "newuidmap": "uidmap",
    "haproxy": "haproxy",
    "resize2fs": "e2fsprogs",
    "openssl": "openssl",
}
APT_TIMEOUT = 1800


def check_bridge(bridge):
    if not isinstance(bridge, str) or not BRIDGE_RE.match(bridge):
        raise CorpusError("{!r} is not a network interface name (at most 15 characters).".format(bridge))
    return bridge


def gateway_interface(subnet):
    """The node's address on the bridge: the subnet's first host, with its prefix."""
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError:
        raise CorpusError("{!r} is not an IPv4 subnet (like 10.77.0.0/24).".format(subnet)) from None
    if network.prefixlen > 29:
        raise CorpusError("Subnet {} is too small for containers.".format(network))
    return ipaddress.IPv4Interface("{}/{}".format(next(network.hosts()), network.prefixlen))


def ensure_bridge(bridge, subnet):
    """Bridge ``bridge`` up with the subnet's first host as its address. Idempotent."""
    check_bridge(bridge)
    address = gateway_interface(subnet)
    changed = False
    if not os.path.isdir("/sys/class/net/{}".format(bridge)):
        run(["ip", "link", "add", bridge, "type", "bridge"], "Creating bridge {}".format(bridge))
        changed = True
    shown = run(["ip", "-o", "-4", "addr", "show", "dev", bridge], "Reading bridge {}".format(bridge)).stdout
    if " {} ".format(address) not in shown:
        run(["ip", "addr", "replace", str(address), "dev", bridge], "Addressing bridge {}".format(bridge))
        changed = True
    run(["ip", "link", "set", bridge, "up"], "Bringing bridge {} up".format(bridge))
    return {"bridge": bridge, "address": str(address), "changed": changed}


def remove_bridge(bridge):
    if os.path.isdir("/sys/class/net/{}".format(check_bridge(bridge))):
        run(["ip", "link", "del", bridge], "Removing bridge {}".format(bridge))


def _present(tool):
    if tool.startswith("/"):
        return os.path.exists(tool)
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None


def ensure_packages():
    """Install, with the node's apt, the packages whose tools are missing. Idempotent."""
    missing = sorted({package for tool, package in NODE_TOOLS.items() if not _present(tool)})
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update"], "Updating the package lists", env=env, timeout=APT_TIMEOUT)
        run(["apt-get", "install", "-y"] + missing, "Installing {}".format(" ".join(missing)), env=env,
            timeout=APT_TIMEOUT)
    return missing


def setup_node(
    bridge=DEFAULT_BRIDGE,
    subnet=DEFAULT_SUBNET,
    http_port=proxy.DEFAULT_HTTP_PORT,
    lxc_path="/var/lib/lxc",
    state_dir=proxy.DEFAULT_STATE_DIR,
    table=nat.DEFAULT_TABLE,
    http_bind="",
    services=(),
    outbound=(firewall.ALL_IPV4,),
    previous_tables=(),
):
    """Everything a node needs before its first container. Idempotent.

    ``services`` (``[(address, protocol, port)]``, like the master's ports) are what containers
    may reach on the node besides DNS; ``outbound`` the networks they may reach beyond it.
    ``previous_tables`` are the nftables tables the node used before ``table`` (the ``corpus``
    table nodes of one machine shared): its containers move to ``table``, then the node
    leaves them (``release_table``)."""
    nat.check_table(table)
    previous_tables = [nat.check_table(name) for name in previous_tables or () if name != table]
    tables.refuse_conflicts(tables.corpus_tables(tables.listing()), bridge, table, subnet, previous_tables)
    result = {"installed": ensure_packages(), "bridge": ensure_bridge(bridge, subnet)}
    nat.write_sysctl("net/ipv4/ip_forward", "1")
    result["nat"] = nat.setup(subnet, bridge, table, state_dir)
    result["firewall"] = firewall.setup(bridge, subnet, table, state_dir, services, outbound)
    result["proxy"] = proxy.setup(http_port, state_dir, http_bind)
    os.makedirs(lxc_path, exist_ok=True)
    result["lxc_path"] = lxc_path
    result["previous_tables"] = [release_table(name, bridge, subnet) for name in previous_tables]
    return result


# --------------------------------------------------------------------------- taking a node away


def _in_subnet(address, subnet):
    try:
        return ipaddress.IPv4Address(str(address).split("/", 1)[0]) in ipaddress.IPv4Network(subnet)
    except ValueError:
        return False


def release_table(table, bridge, subnet, state_dir=None):
    """Leave nftables table ``table`` (``ip`` and ``bridge``): delete it when this node (on
    ``bridge`` and ``subnet``) is its only user, else take only this node's subnet, NATed ports
    and pinned containers out of it. ``state_dir`` given, the saved copies of the node's ports
    and pins go too (they are the table's only when the node leaves for good).

    One sentence saying what became of it."""
    nat.check_table(table)
    held = tables.corpus_tables(tables.listing()).get(table)
    if held is None and not firewall.table_ready(table):
        return "nft table {} was already gone".format(table)
    if held is None or tables.sole_user(held, bridge, subnet):
        nat.teardown(table, state_dir)
        return "nft tables ip {0} and bridge {0} removed".format(table)
    with nat.table_lock(table):
        for mapping in nat.ports(table):
            if _in_subnet(mapping["address"], subnet):
                nat.change_element("delete", table, mapping["protocol"], "{{ {} }}".format(
                    mapping["external_port"]))
        if firewall.table_ready(table):
            for element in firewall.hosts(table):
                if _in_subnet(element[2], subnet):
                    nat.nft(["delete", "element", "bridge", table, "hosts", firewall.host_element(*element)],
                            "Unpinning the containers of subnet {}".format(subnet))
        if subnet in held["subnets"]:
            nat.nft(["delete", "element", "ip", table, "subnets", "{{ {} }}".format(subnet)],
                    "Removing subnet {} from table {}".format(subnet, table))
    for saved in (nat.PORTS_FILE, firewall.CONTAINERS_FILE) if state_dir else ():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(state_dir, saved))
    return ("nft table {} kept: another node on this machine uses it (subnet {}); this node's subnet, "
            "ports and containers were taken out of it".format(table, ", ".join(
                other for other in held["subnets"] if other != subnet)))


def stop_proxy(state_dir):
    """Stop the node's haproxy and remove its configuration and routes."""
    pid = proxy.running_pid(state_dir)
    settings = proxy.read_json(proxy.paths(state_dir)["proxy.json"], {})
    proxy.stop(state_dir)
    if proxy.running_pid(state_dir):
        raise CorpusError("The node's haproxy (pid {}) did not stop.".format(pid))
    for name in ("haproxy.cfg", "haproxy.pid", "routes.json", "proxy.json"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(proxy.paths(state_dir)[name])
    if pid:
        return "haproxy (pid {}, port {}) stopped".format(pid, settings.get("http_port", "?"))
    return "haproxy was not running"


def remove_spare(lxc_path):
    """Stop the making of the node's spare container and destroy it (``spares.remove``); what
    went, or None when there was none."""
    removed = spares.remove(lxc_path)
    return "{} removed from {}".format(" and ".join(removed), lxc_path) if removed else None


def remove_golden(lxc_path):
    """Destroy the golden container of ``lxc_path`` (under the lock ``lxc.golden`` takes) and its
    stamp, and the named images built from it; containers cloned from them are copies and stay."""
    image_build.remove_all(lxc_path)
    if not os.path.isdir(lxc.container_dir(lxc.GOLDEN_NAME, lxc_path)):
        return "no golden container in {}".format(lxc_path)
    with file_lock(os.path.join(lxc_path, ".corpus-golden.lock")):
        lxc.destroy(lxc.GOLDEN_NAME, lxc_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lxc.golden_stamp_path(lxc_path))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(lxc_path, ".corpus-golden.lock"))
    return "golden container {} removed from {}".format(lxc.GOLDEN_NAME, lxc_path)


def release_bridge(bridge, subnet):
    """Remove ``bridge`` unless another node's table guards it or containers are still plugged
    into it; then only this node's address on it goes."""
    if not os.path.isdir("/sys/class/net/{}".format(check_bridge(bridge))):
        return "bridge {} was already gone".format(bridge)
    # Any table, the node's own included: a table it shared keeps guarding the bridge for the others.
    others = tables.conflicts(tables.corpus_tables(tables.listing()), bridge, None, subnet)
    try:
        ports = sorted(os.listdir("/sys/class/net/{}/brif".format(bridge)))
    except FileNotFoundError:
        ports = []
    if not others and not ports:
        remove_bridge(bridge)
        return "bridge {} removed".format(bridge)
    address = gateway_interface(subnet)
    run(["ip", "addr", "del", str(address), "dev", bridge], "Removing {} from bridge {}".format(
        address, bridge), check=False)
    if others:
        why = "another node on this machine uses it (table {}, subnet {})".format(
            others[0][0], ", ".join(others[0][1]))
    else:
        why = "{} container port(s) are still plugged into it ({})".format(len(ports), ", ".join(ports))
    return "bridge {} kept: {}; this node's address {} was taken off it".format(bridge, why, address)


def teardown_node(bridge, subnet, lxc_path, state_dir, table):
    """Take away what ``setup_node`` and the node's first container made: haproxy, the nftables
    tables (``release_table``), the spare and golden containers and the bridge (``release_bridge``).

    ``{"removed": [...], "kept": [...]}``: one sentence per item, a kept one saying why."""
    check_bridge(bridge)
    gateway_interface(subnet)
    nat.check_table(table)
    done = [stop_proxy(state_dir), release_table(table, bridge, subnet, state_dir), remove_spare(lxc_path),
            remove_golden(lxc_path), release_bridge(bridge, subnet)]
    done = [line for line in done if line]
    return {"removed": [line for line in done if " kept: " not in line],
            "kept": [line for line in done if " kept: " in line]}
