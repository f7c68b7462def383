"""Which node each corpus nftables table on a machine serves.

Every node has a table of its own (``ip T`` for its NAT and filter, ``bridge T`` for its
firewall: ``nat.py``, ``firewall.py``), named after the node by the controller. Nodes linked
before that shared one table, ``corpus``, between every node of a machine. A corpus ``ip``
table is one with the sets ``subnets`` (the containers' networks it masquerades) and
``bridges`` (the bridges it guards): those two say which nodes use it.

Two tables must never guard the same bridge: a table drops a container's frame unless the
container is one of its own, so a second node's table on the same bridge would cut the
first one's containers off. ``conflicts`` finds such a table before a node is linked;
``previous`` finds the tables a node used before (the shared ``corpus``, or a table left by
an earlier link under the same subnet) so that linking moves the node off them.

The functions here read ``nft -j list sets ip`` output: the controller runs it over SSH
before linking, the node itself when it sets up or takes down its tables.
"""

import ipaddress
import json
import os
import shutil

from mc_project.errors import CorpusError
from mc_project.node.shell import run


def listing():
    """This machine's ``nft -j list sets ip`` output ("" without nft: a node before its packages
    are installed has no table)."""
    nft = shutil.which("nft", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if nft is None:
        return ""
    proc = run([nft, "-j", "list", "sets", "ip"], "Listing the nftables sets", check=False)
    return proc.stdout if proc.returncode == 0 else ""


def _element_text(element):
    if isinstance(element, dict) and "prefix" in element:
        return "{}/{}".format(element["prefix"]["addr"], element["prefix"]["len"])
    if isinstance(element, dict) and "range" in element:
        return "-".join(str(part) for part in element["range"])
    return str(element)


def corpus_tables(text):
    """``{table: {"subnets": [cidr...], "bridges": [name...]}}`` of the corpus ``ip`` tables in
    ``nft -j list sets ip`` output."""
    try:
        items = json.loads(text)["nftables"] if text and text.strip() else []
    except (ValueError, KeyError, TypeError):
        return {}
    sets = {}
    for item in items:
        found = item.get("set") if isinstance(item, dict) else None
        if not found or found.get("family") != "ip" or found.get("name") not in ("subnets", "bridges"):
            continue
        elements = found.get("elem") or []
        sets.setdefault(found["table"], {})[found["name"]] = sorted(_element_text(e) for e in elements)
    return {table: held for table, held in sets.items() if set(held) == {"subnets", "bridges"}}


def _others(held, subnet):
    """The subnets of ``held`` that are not ``subnet``."""
    mine = str(ipaddress.ip_network(subnet)) if subnet else None
    return [other for other in held["subnets"] if other != mine]


def conflicts(tables, bridge, table, subnet):
    """``[(table, other subnets)]``: tables other than ``table`` (None: any) guarding ``bridge``
    for another node (a subnet other than ``subnet``, which may be None for one not chosen yet)."""
    return [(name, _others(held, subnet)) for name, held in sorted(tables.items())
            if name != table and bridge in held["bridges"] and _others(held, subnet)]


def refuse_conflicts(tables, bridge, table, subnet, previous_tables=()):
    """One sentence when another node's table guards ``bridge`` (see ``conflicts``)."""
    for name, others in conflicts(tables, bridge, table, subnet):
        if name in previous_tables:
            raise CorpusError(
                "Bridge {} is guarded by nftables table {}, which this node shares with another node "
                "(subnet {}): link it with nft_table={} to keep sharing it, or with a bridge of its "
                "own.".format(bridge, name, ", ".join(others), name))
        raise CorpusError("Bridge {} is guarded by nftables table {} of another node (subnet {}): link "
                          "this node with a bridge of its own.".format(bridge, name, ", ".join(others)))


def previous(tables, bridge, table, subnet, configured=None):
    """The tables a node on ``bridge`` and ``subnet`` leaves for ``table``: the one its minion
    was configured with (``configured``), and any other guarding its bridge for its subnet
    alone (left by an earlier link)."""
    found = []
    for name, held in sorted(tables.items()):
        if name == table:
            continue
        if name == configured or (bridge in held["bridges"] and not _others(held, subnet)):
            found.append(name)
    return found


def sole_user(held, bridge, subnet):
    """Whether a node on ``bridge`` and ``subnet`` is the only one using a table that holds
    ``held``."""
    return not _others(held, subnet) and set(held["bridges"]) <= {bridge}
