"""The node's firewall: what a container may send, and what it may reach.

Two nftables tables named like the node's NAT table (``corpus``):

* ``bridge corpus`` pins each container to its own port, MAC and address on the bridge. Its
  host-side veth has a name corpus chose (``port_name``): ``c``, 4 hex digits of the bridge's
  name, 10 of the container's; every port of a bridge matches that bridge's wildcard in the set
  ``ports``. A frame from such a port passes only if it is IPv4 whose port . source MAC . source
  address, or ARP whose port . source MAC . sender address and port . sender MAC . sender
  address, are an element of ``hosts`` (one per container); anything else (another MAC, an
  address taken over, a gratuitous ARP for it, IPv6, VLANs) is dropped. Frames from one
  container port to another are dropped: containers never talk to each other on the bridge.
* ``ip corpus`` (the NAT table) gets filter chains. From a bridge (set ``bridges``) to the node
  itself: replies, and the ``services`` (address . protocol . port: the master's ports when the
  master is on the node, DNS on the bridge's address); nothing else, so neither the node's
  sshd nor anything bound to 127.0.0.1. Forwarded from a container: replies, another
  container's NATed port through the node's address, and the ``outbound`` networks (all of
  IPv4 unless the operator narrows it); never another container directly. Forwarded to a
  container: replies and DNATed connections (its NATed SSH port) only.

The rules never change after ``setup``; a container is one element of ``hosts``. The elements
are copied to ``<state_dir>/containers.json`` after each change, so ``setup`` puts them back
after a reboot empties the kernel's tables, as ``nat`` does with its ports.
"""

import hashlib
import ipaddress
import json
import os

from mc_project.errors import CorpusError
from mc_project.node.nat import check_port, check_table, nft, run, table_lock

CONTAINERS_FILE = "containers.json"
DNS_PORT = 53
ALL_IPV4 = "0.0.0.0/0"


# --------------------------------------------------------------------------- names


def port_prefix(bridge):
    """The start of the names of every container port on ``bridge``."""
    return "c" + hashlib.sha256(bridge.encode()).hexdigest()[:4]


def port_name(bridge, name, lxc_path):
    """The host-side veth name of container ``name`` (15 characters, the kernel's limit)."""
    digest = hashlib.sha256("{}/{}".format(lxc_path.rstrip("/"), name).encode()).hexdigest()
    return port_prefix(bridge) + digest[:10]


# --------------------------------------------------------------------------- rules


def bridge_table(table):
    """The nft script (re)making the bridge table's sets and rules; the sets' elements stay."""
    return """add table bridge {t}
add set bridge {t} ports {{ type ifname; flags interval; }}
add set bridge {t} hosts {{ type ifname . ether_addr . ipv4_addr; }}
add chain bridge {t} prerouting {{ type filter hook prerouting priority filter; policy accept; }}
add chain bridge {t} from_container
add chain bridge {t} forward {{ type filter hook forward priority filter; policy accept; }}
flush chain bridge {t} prerouting
flush chain bridge {t} from_container
flush chain bridge {t} forward
add rule bridge {t} prerouting iifname @ports jump from_container
add rule bridge {t} from_container ether type ip iifname . ether saddr . ip saddr @hosts return
add rule bridge {t} from_container ether type arp iifname . ether saddr . arp saddr ip @hosts \
iifname . arp saddr ether . arp saddr ip @hosts return
add rule bridge {t} from_container drop
add rule bridge {t} forward iifname @ports drop
add rule bridge {t} forward oifname @ports drop
""".format(t=table)


def ip_chains(table):
    """The nft script (re)making the filter chains of the NAT table ``ip <table>``."""
    return """add table ip {t}
add set ip {t} bridges {{ type ifname; }}
add set ip {t} services {{ type ipv4_addr . inet_proto . inet_service; }}
add set ip {t} outbound {{ type ipv4_addr; flags interval; }}
add chain ip {t} input {{ type filter hook input priority filter; policy accept; }}
add chain ip {t} container_input
add chain ip {t} forward {{ type filter hook forward priority filter; policy accept; }}
add chain ip {t} from_container
add chain ip {t} to_container
flush chain ip {t} input
flush chain ip {t} container_input
flush chain ip {t} forward
flush chain ip {t} from_container
flush chain ip {t} to_container
add rule ip {t} input iifname @bridges jump container_input
add rule ip {t} container_input ct state established,related accept
add rule ip {t} container_input ip daddr . meta l4proto . th dport @services accept
add rule ip {t} container_input meta l4proto tcp reject with tcp reset
add rule ip {t} container_input reject with icmp type admin-prohibited
add rule ip {t} forward iifname @bridges jump from_container
add rule ip {t} forward oifname @bridges jump to_container
add rule ip {t} from_container ct state established,related accept
add rule ip {t} from_container ct state invalid drop
add rule ip {t} from_container oifname @bridges ct status dnat accept
add rule ip {t} from_container oifname != @bridges ip daddr @outbound accept
add rule ip {t} from_container meta l4proto tcp reject with tcp reset
add rule ip {t} from_container reject with icmp type admin-prohibited
add rule ip {t} to_container ct state established,related accept
add rule ip {t} to_container ct status dnat accept
add rule ip {t} to_container drop
""".format(t=table)


def service_elements(services):
    """``{ 10.0.0.1 . tcp . 4505, ... }`` from ``[(address, protocol, port)]``."""
    return "{{ {} }}".format(", ".join("{} . {} . {}".format(*service) for service in services))


def host_element(port, hwaddr, address):
    return '{{ "{}" . {} . {} }}'.format(port, hwaddr, address)


def check_services(services):
    checked = []
    for service in services or ():
        try:
            address, protocol, port = service
            address = str(ipaddress.IPv4Address(address))
        except (TypeError, ValueError):
            raise CorpusError("{!r} is not an (IPv4 address, protocol, port) service.".format(service)) from None
        if protocol not in ("tcp", "udp"):
            raise CorpusError("{!r} is not a protocol a service may use (tcp or udp).".format(protocol))
        checked.append((address, protocol, check_port(port, "service port")))
    return checked


def check_networks(networks):
    try:
        return [str(ipaddress.IPv4Network(network)) for network in networks]
    except (TypeError, ValueError):
        raise CorpusError("{!r} are not IPv4 networks (like 0.0.0.0/0).".format(networks)) from None


def check_hwaddr(hwaddr):
    parts = hwaddr.split(":") if isinstance(hwaddr, str) else []
    if len(parts) != 6 or not all(len(part) == 2 and all(c in "0123456789abcdef" for c in part.lower())
                                  for part in parts):
        raise CorpusError("{!r} is not a MAC address.".format(hwaddr))
    if int(parts[0], 16) & 1:
        raise CorpusError("{} is a multicast MAC address.".format(hwaddr))
    return hwaddr.lower()


# --------------------------------------------------------------------------- the node


def table_ready(table):
    return run(["nft", "list", "table", "bridge", table], "Reading table " + table, check=False).returncode == 0


def setup(bridge, subnet, table, state_dir=None, services=(), outbound=(ALL_IPV4,)):
    """Make (or remake) both tables' rules, guard ``bridge``, let its containers reach
    ``services`` on the node (with DNS on the bridge's address) and ``outbound`` beyond it,
    and restore the saved containers. Idempotent."""
    check_table(table)
    try:
        gateway = next(ipaddress.IPv4Network(subnet).hosts())
    except (ValueError, StopIteration):
        raise CorpusError("{!r} is not an IPv4 subnet (like 10.77.0.0/24).".format(subnet)) from None
    services = check_services(list(services) + [(gateway, "udp", DNS_PORT), (gateway, "tcp", DNS_PORT)])
    outbound = check_networks(outbound)
    script = bridge_table(table) + ip_chains(table) + (
        'add element bridge {t} ports {{ "{p}*" }}\n'
        'add element ip {t} bridges {{ "{b}" }}\n'
        "add element ip {t} services {s}\n"
        "flush set ip {t} outbound\n"
    ).format(t=table, p=port_prefix(bridge), b=bridge, s=service_elements(services))
    if outbound:
        script += "add element ip {} outbound {{ {} }}\n".format(table, ", ".join(outbound))
    with table_lock(table):
        nft(["-f", "-"], "Setting the firewall of bridge {} up".format(bridge), input=script)
    restored = 0
    for name, entry in sorted(load_saved(state_dir).items()) if state_dir else ():
        if entry.get("bridge") == bridge and allow_container(dict(entry, name=name), table, state_dir)["changed"]:
            restored += 1
    return {"table": table, "bridge": bridge, "services": services, "outbound": outbound, "restored": restored}


def hosts(table):
    """``[(port, hwaddr, address)]``: the elements of ``hosts``."""
    out = nft(["-j", "list", "set", "bridge", table, "hosts"], "Listing the containers of " + table)
    found = []
    for item in json.loads(out.stdout)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            found.append(tuple(elem["concat"]))
    return sorted(found)


def allow_container(identity, table, state_dir=None):
    """Pin container ``identity`` (``{name, port, hwaddr, address, bridge}``, as
    ``lxc.network_identity`` gives it) to its port, MAC and address. Idempotent: an element it
    had with another MAC or address is replaced."""
    check_table(table)
    name, port, bridge = identity["name"], identity["port"], identity["bridge"]
    if not port or not port.startswith(port_prefix(bridge)) or len(port) > 15:
        raise CorpusError("Container {} has no port of its own on bridge {}: configure it again.".format(
            name, bridge))
    hwaddr = check_hwaddr(identity["hwaddr"])
    try:
        address = str(ipaddress.IPv4Address(identity["address"].split("/", 1)[0]))
    except (AttributeError, ValueError):
        raise CorpusError("{!r} is not an IPv4 address.".format(identity["address"])) from None
    if not table_ready(table):
        raise CorpusError("The node's firewall table {} is missing: run mc_lxc.setup_node first.".format(table))
    wanted = (port, hwaddr, address)
    with table_lock(table):
        current = hosts(table)
        stale = [element for element in current if element[0] == port and element != wanted]
        changed = wanted not in current or bool(stale)
        if changed:
            script = "".join("delete element bridge {} hosts {}\n".format(table, host_element(*element))
                             for element in stale)
            script += "add element bridge {} hosts {}\n".format(table, host_element(*wanted))
            nft(["-f", "-"], "Pinning container {} to {} {}".format(name, hwaddr, address), input=script)
        saved = load_saved(state_dir) if state_dir else {}
        entry = {"port": port, "hwaddr": hwaddr, "address": address, "bridge": bridge}
        if state_dir and saved.get(name) != entry:
            saved[name] = entry
            save(state_dir, saved)
    return {"name": name, "port": port, "hwaddr": hwaddr, "address": address, "changed": changed}


def forget_container(name, table, state_dir=None, port=None):
    """Remove container ``name``'s element (found by its saved or given ``port``). A container
    the firewall does not know is fine."""
    check_table(table)
    saved = load_saved(state_dir) if state_dir else {}
    port = port or (saved.get(name) or {}).get("port")
    changed = False
    if port and table_ready(table):
        with table_lock(table):
            for element in hosts(table):
                if element[0] == port:
                    nft(["delete", "element", "bridge", table, "hosts", host_element(*element)],
                        "Unpinning container {}".format(name))
                    changed = True
    if name in saved:
        del saved[name]
        save(state_dir, saved)
    return {"name": name, "changed": changed}


def teardown(table, state_dir=None):
    """Delete the bridge table (the NAT table's chains go with the NAT table) and its saved copy."""
    if table_ready(check_table(table)):
        nft(["delete", "table", "bridge", table], "Deleting nftables table bridge " + table)
    if state_dir and os.path.exists(os.path.join(state_dir, CONTAINERS_FILE)):
        os.unlink(os.path.join(state_dir, CONTAINERS_FILE))


def save(state_dir, saved):
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, CONTAINERS_FILE)
    temporary = "{}.{}.tmp".format(path, os.getpid())
    with open(temporary, "w", encoding="utf-8") as fh:
        json.dump(saved, fh, indent=2, sort_keys=True)
    os.replace(temporary, path)


def load_saved(state_dir):
    """``{name: {port, hwaddr, address, bridge}}`` as last saved."""
    path = os.path.join(state_dir, CONTAINERS_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}
    except ValueError:
        raise CorpusError("{} is not valid JSON.".format(path)) from None
