"""NAT of node ports to containers, in an nftables table of its own (``ip corpus``).

One mapping is one element of a map (``tcp_ports`` / ``udp_ports``: node port -> container
address . port), so adding or removing one never touches another, and the rules never change
after ``setup``. DNAT happens in prerouting (connections from outside) and in output
(connections from the node itself), only for packets addressed to the node's own addresses
(``127.0.0.1`` is not one of them: the bridge has no ``route_localnet``, so nothing reaches a
container from the node's loopback, nor the node's loopback from a container; the node reaches
a NATed port on its bridge address). The containers' subnet is masqueraded going out. What a
container may reach is ``firewall``'s concern.

The maps are copied to ``<state_dir>/ports.json`` after each change, so ``setup`` puts them
back after a reboot empties the kernel's tables.
"""

import ipaddress
import json
import os

from mc_project.errors import CorpusError
from mc_project.node.shell import file_lock, run

DEFAULT_TABLE = "corpus"
PROTOCOLS = ("tcp", "udp")
PORTS_FILE = "ports.json"
# The table is machine-wide, so is the lock that makes "check, then add" one step.
LOCK_DIR = "/run/lock"


def table_lock(table):
    return file_lock(os.path.join(LOCK_DIR, "corpus-nft-{}.lock".format(table)))


def table_definition(table=DEFAULT_TABLE):
    """The nft script creating the table, its maps and its (fixed) rules."""
    dnat = "\n".join(
        "        fib daddr type local dnat ip to {0} dport map @{0}_ports".format(proto)
        for proto in PROTOCOLS
    )
    maps = "\n".join(
        "    map {}_ports {{ type inet_service : ipv4_addr . inet_service; }}".format(proto)
        for proto in PROTOCOLS
    )
    return """table ip {table} {{
{maps}
    set subnets {{ type ipv4_addr; flags interval; }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
{dnat}
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
{dnat}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr @subnets ip daddr != @subnets masquerade
        ct status dnat ip saddr @subnets ip daddr @subnets masquerade
    }}
}}
""".format(table=table, maps=maps, dnat=dnat)


def element(external_port, address, internal_port):
    return "{{ {} : {} . {} }}".format(external_port, address, internal_port)


def nft(args, what, input=None):
    return run(["nft"] + list(args), what, input=input)


def table_exists(table):
    return run(["nft", "list", "table", "ip", table], "Reading table " + table, check=False).returncode == 0


def check_table(table):
    if not isinstance(table, str) or not table.replace("_", "").isalnum():
        raise CorpusError("{!r} is not an nftables table name.".format(table))
    return table


def check_port(port, what="port"):
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise CorpusError("{!r} is not a {}.".format(port, what)) from None
    if not 0 < port < 65536:
        raise CorpusError("{} is not a {} (1-65535).".format(port, what))
    return port


def check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise CorpusError("{!r} is not a protocol corpus maps (tcp or udp).".format(protocol))
    return protocol


def setup(subnet, bridge, table=DEFAULT_TABLE, state_dir=None):
    """Create the table (once), masquerade ``subnet``, keep the node's loopback off ``bridge``
    and restore saved mappings. Idempotent."""
    check_table(table)
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError:
        raise CorpusError("{!r} is not an IPv4 subnet (like 10.77.0.0/24).".format(subnet)) from None
    with table_lock(table):
        created = not table_exists(table)
        if created:
            nft(["-f", "-"], "Creating nftables table " + table, input=table_definition(table))
        subnet_element = "{{ {} }}".format(network)
        nft(["add", "element", "ip", table, "subnets", subnet_element], "Adding subnet {}".format(network))
    # Off (older nodes turned it on): with it, a container reaches what the node binds to 127.0.0.1.
    write_sysctl("net/ipv4/conf/{}/route_localnet".format(bridge), "0")
    restored = 0
    if state_dir:
        for entry in load_saved(state_dir):
            # A table every node of the machine shared saved theirs too: this node restores its own.
            if ipaddress.IPv4Address(entry["address"]) not in network:
                continue
            current = {m["external_port"]: m for m in ports(table, entry["protocol"])}
            if entry["external_port"] not in current:
                map_port(
                    entry["external_port"],
                    entry["address"],
                    entry["internal_port"],
                    entry["protocol"],
                    table,
                    state_dir,
                )
                restored += 1
    return {"table": table, "created": created, "restored": restored}


def write_sysctl(key, value):
    path = os.path.join("/proc/sys", key)
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value)
    except OSError as exc:
        raise CorpusError("Cannot set {}: {}.".format(key.replace("/", "."), exc.strerror)) from None


def ports(table=DEFAULT_TABLE, protocol=None):
    """Every mapping, as ``{external_port, address, internal_port, protocol}``, by port."""
    check_table(table)
    if not table_exists(table):
        return []
    found = []
    for proto in ([check_protocol(protocol)] if protocol else PROTOCOLS):
        out = nft(
            ["-j", "list", "map", "ip", table, "{}_ports".format(proto)], "Listing the {} ports".format(proto)
        )
        for item in json.loads(out.stdout)["nftables"]:
            for key, value in item.get("map", {}).get("elem", []):
                address, internal = value["concat"]
                found.append(
                    {"external_port": key, "address": address, "internal_port": internal, "protocol": proto}
                )
    return sorted(found, key=lambda m: (m["external_port"], m["protocol"]))


def map_port(external_port, address, internal_port=22, protocol="tcp", table=DEFAULT_TABLE, state_dir=None):
    """NAT ``external_port`` of the node to ``address:internal_port``. Mapping the same thing
    again is fine; a port already mapped elsewhere is refused."""
    external_port = check_port(external_port, "node port")
    internal_port = check_port(internal_port, "container port")
    check_protocol(protocol)
    try:
        address = str(ipaddress.IPv4Address(address))
    except ValueError:
        raise CorpusError("{!r} is not an IPv4 address.".format(address)) from None
    if not table_exists(check_table(table)):
        raise CorpusError("The node's NAT table {} is missing: run mc_lxc.setup_node first.".format(table))
    wanted = {
        "external_port": external_port,
        "address": address,
        "internal_port": internal_port,
        "protocol": protocol,
    }
    with table_lock(table):
        for mapping in ports(table, protocol):
            if mapping["external_port"] == external_port:
                if mapping == wanted:
                    return dict(mapping, changed=False)
                raise CorpusError(
                    "Port {}/{} is already mapped to {}:{}.".format(
                        external_port, protocol, mapping["address"], mapping["internal_port"]
                    )
                )
        change_element("add", table, protocol, element(external_port, address, internal_port))
        save(table, state_dir)
    return dict(wanted, changed=True)


def unmap_port(external_port, protocol="tcp", table=DEFAULT_TABLE, state_dir=None):
    """Remove the mapping of ``external_port``; an unmapped port is fine."""
    external_port = check_port(external_port, "node port")
    check_protocol(protocol)
    with table_lock(check_table(table)):
        for mapping in ports(table, protocol):
            if mapping["external_port"] == external_port:
                change_element("delete", table, protocol, "{{ {} }}".format(external_port))
                save(table, state_dir)
                return dict(mapping, changed=True)
    return {"external_port": external_port, "protocol": protocol, "changed": False}


def change_element(verb, table, protocol, text):
    what = "{} port {}/{}".format("Mapping" if verb == "add" else "Unmapping", text.strip("{ }"), protocol)
    nft([verb, "element", "ip", table, "{}_ports".format(protocol), text], what)


def teardown(table=DEFAULT_TABLE, state_dir=None):
    """Delete the whole table, the firewall's bridge table of that name, and their saved copies."""
    from mc_project.node import firewall  # it builds on this module

    firewall.teardown(check_table(table), state_dir)
    if table_exists(table):
        nft(["delete", "table", "ip", table], "Deleting nftables table " + table)
    if state_dir and os.path.exists(os.path.join(state_dir, PORTS_FILE)):
        os.unlink(os.path.join(state_dir, PORTS_FILE))
    return {"table": table}


def save(table, state_dir):
    if not state_dir:
        return
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, PORTS_FILE)
    temporary = "{}.{}.tmp".format(path, os.getpid())
    with open(temporary, "w", encoding="utf-8") as fh:
        json.dump(ports(table), fh, indent=2)
    os.replace(temporary, path)


def load_saved(state_dir):
    try:
        with open(os.path.join(state_dir, PORTS_FILE), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return []
    except ValueError:
        raise CorpusError("{} is not valid JSON.".format(os.path.join(state_dir, PORTS_FILE))) from None
