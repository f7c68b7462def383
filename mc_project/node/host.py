"""Preparing a machine to be a compute node: bridge, forwarding, NAT table, firewall, proxy."""

import ipaddress
import os
import re
import shutil

from mc_project.errors import CorpusError
from mc_project.node import firewall, nat, proxy
from mc_project.node.shell import run

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
):
    """Everything a node needs before its first container. Idempotent.

    ``services`` (``[(address, protocol, port)]``, like the master's ports) are what containers
    may reach on the node besides DNS; ``outbound`` the networks they may reach beyond it."""
    result = {"installed": ensure_packages(), "bridge": ensure_bridge(bridge, subnet)}
    nat.write_sysctl("net/ipv4/ip_forward", "1")
    result["nat"] = nat.setup(subnet, bridge, table, state_dir)
    result["firewall"] = firewall.setup(bridge, subnet, table, state_dir, services, outbound)
    result["proxy"] = proxy.setup(http_port, state_dir, http_bind)
    os.makedirs(lxc_path, exist_ok=True)
    result["lxc_path"] = lxc_path
    return result
