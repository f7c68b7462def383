"""A compute node as the controller bootstraps it: where corpus lives there, how its
minion is configured, started and stopped, and what the inventory records of it.

The ``link_node`` job (``operations.LINK_NODE``, steps in ``steps/node.py``) uses
these over SSH: it ships the controller's wheelhouse to ``<prefix>/wheelhouse``,
installs corpus in ``<prefix>/venv``, writes the minion configuration and runs
the minion from there.
"""

import hashlib
import ipaddress
import os
import posixpath
import re
import shlex

import yaml

from sqlalchemy import func, select

from mc_project.common import messages
from mc_project.common.vocabulary import LIVE_ENV_STATUSES, MINION_UNIT
from mc_project.errors import CorpusError
from mc_project.inventory.models import Environment, SshKey
from mc_project.node import minion, nat

HOST_KEY_NAME = "ssh-host-key"  # SshKey.name of a node's SSH host key


def node_paths(prefix):
    """Where corpus lives on a node installed under ``prefix``."""
    etc = posixpath.join(prefix, "etc", "salt")
    return {
        "prefix": prefix,
        "wheelhouse": posixpath.join(prefix, "wheelhouse"),
        "venv": posixpath.join(prefix, "venv"),
        "python": posixpath.join(prefix, "venv", "bin", "python"),
        "salt_minion": posixpath.join(prefix, "venv", "bin", "salt-minion"),
        "config_dir": etc,
        "config": posixpath.join(etc, "minion"),
        "pki_dir": posixpath.join(etc, "pki", "minion"),
        "cachedir": posixpath.join(prefix, "var", "cache", "salt", "minion"),
        "sock_dir": posixpath.join(prefix, "var", "run", "salt", "minion"),
        "pidfile": posixpath.join(prefix, "var", "run", "salt-minion.pid"),
        "log_file": posixpath.join(prefix, "var", "log", "salt", "minion"),
        # mc_lxc's proxy routes and saved port mappings.
        "state_dir": posixpath.join(prefix, "var", "lib", "node"),
    }


def nft_table_for(name):
    """The nftables table of node ``name``: ``corpus_``, the name's letters and digits (16 at
    most) and 6 hex digits of its hash, so that two names never share a table (nft's names are
    a letter, then letters, digits or ``_``; 31 characters here)."""
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:16]
    return "corpus_{}_{}".format(readable, hashlib.sha256(name.encode()).hexdigest()[:6])


def configured_nft_table(config_text):
    """The nftables table a node's minion configuration names (``mc_lxc:nft_table``; ``corpus``,
    which every node of a machine shared, when it names none), or None without a configuration."""
    if config_text is None:
        return None
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError:
        return None
    options = config.get("mc_lxc") if isinstance(config, dict) else None
    table = options.get("nft_table") if isinstance(options, dict) else None
    return table if isinstance(table, str) else nat.DEFAULT_TABLE


def minion_config(paths, minion_id, master_address, master_opts, lxc_path, nft_table):
    """The node's minion configuration (YAML text)."""
    return minion.config_text({
        "id": minion_id,
        "master": master_address,
        "master_port": int(master_opts["ret_port"]),
        "publish_port": int(master_opts["publish_port"]),
        "root_dir": paths["prefix"],
        "pki_dir": paths["pki_dir"],
        "cachedir": paths["cachedir"],
        "sock_dir": paths["sock_dir"],
        "pidfile": paths["pidfile"],
        "log_file": paths["log_file"],
        "file_client": "remote",
        # Each call in a thread of the minion, not a process of its own: a process costs as
        # much CPU again as a call to mc_lxc (~0.04 s), and the node gets ~5 per environment.
        "multiprocessing": False,
        "mine_enabled": False,  # corpus keeps no Salt mine (see node.minion.minion_config)
        # What mc_lxc uses when a call does not say.
        "mc_lxc": {"lxc_path": lxc_path, "state_dir": paths["state_dir"], "nft_table": nft_table},
    })


def minion_unit(paths):
    """The systemd unit that runs the node's minion."""
    return minion.unit_text(paths["salt_minion"], paths["config_dir"],
                            "corpus salt-minion ({})".format(paths["prefix"]))


def stop_minion_command(paths):
    """A shell command stopping the node's minion, whichever way it was started.

    A daemonised ``salt-minion`` forks process managers into its process group:
    the whole group is stopped (killed after ten seconds), or they would live on.
    """
    return (
        "if [ -d /run/systemd/system ]; then systemctl disable --now {unit} 2>/dev/null; fi; "
        "if [ -f {pidfile} ]; then pid=$(cat {pidfile}); pgid=$(ps -o pgid= -p \"$pid\" | tr -d ' '); "
        "if [ -n \"$pgid\" ] && grep -q salt-minion /proc/$pid/cmdline; then "
        "kill -TERM -$pgid; "
        "for i in $(seq 50); do ps -e -o pgid=,stat= | "
        "awk -v g=$pgid '$1 == g && $2 !~ /^Z/ {{live = 1}} END {{exit !live}}' || break; sleep 0.2; done; "
        "kill -KILL -$pgid 2>/dev/null; fi; rm -f {pidfile}; fi; true"
    ).format(unit=MINION_UNIT, pidfile=shlex.quote(paths["pidfile"]))


PING_TIMEOUT = 10
TEARDOWN_TIMEOUT = 300  # stopping haproxy, deleting the tables, the golden container and the bridge


def teardown_node(ctl, minion_id, bridge, subnet, lxc_path):
    """Have node ``minion_id`` take away its haproxy, nftables tables (the one its minion is
    configured with: ``corpus`` for a node linked when all shared it), golden container and
    bridge: ``{"removed": [...], "kept": [...]}``, one sentence per item, a kept one saying why.
    Raises one sentence when the node does not answer or fails."""
    # A node that is down would be waited for the whole teardown time: ask it first.
    if not ctl.ping(minion_id, timeout=PING_TIMEOUT):
        raise CorpusError("The minion {} did not answer test.ping.".format(minion_id))
    answer = ctl.answer(minion_id, "mc_lxc.teardown_node", timeout=TEARDOWN_TIMEOUT, bridge=bridge,
                        subnet=subnet, lxc_path=lxc_path)
    if answer is None:
        raise CorpusError("The minion {} did not answer mc_lxc.teardown_node.".format(minion_id))
    ret = answer.get("ret")
    if answer.get("retcode") or not isinstance(ret, dict):
        raise CorpusError("Taking node {} down failed: {}.".format(minion_id, messages.last_line(
            str(ret), "no output").removeprefix("ERROR: ").rstrip(".")))
    return {"removed": list(ret.get("removed") or []), "kept": list(ret.get("kept") or [])}


# --------------------------------------------------------------------------- the wheelhouse

def wheel_python_tags(wheelhouse):
    """The CPython versions ("3.11") the binary wheels of ``wheelhouse`` are for."""
    tags = set()
    for filename in os.listdir(wheelhouse):
        # Interpreter and ABI both "cpXY": a wheel for that Python only (not abi3).
        match = re.search(r"-cp(\d)(\d+)-cp\1\2m?-", filename)
        if filename.endswith(".whl") and match:
            tags.add("{}.{}".format(match.group(1), match.group(2)))
    return tags


def corpus_wheel(wheelhouse):
    found = sorted(name for name in os.listdir(wheelhouse)
                   if name.startswith("corpus-") and name.endswith(".whl"))
    if not found:
        raise CorpusError("The wheelhouse {} holds no corpus wheel; build it with "
                          "`corpus-controller init` first.".format(wheelhouse))
    return found[-1]


# --------------------------------------------------------------------------- the node's network

def free_subnet(taken, routes):
    """The first 10.<N>.0.0/24 that neither another node nor the node's own routes use."""
    used = [ipaddress.ip_network(cidr) for cidr in taken] + [ipaddress.ip_network(cidr) for cidr in routes]
    for number in range(1, 255):
        candidate = ipaddress.ip_network("10.{}.0.0/24".format(number))
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)
    raise CorpusError("No free 10.N.0.0/24 subnet is left for a new node; give one with subnet=.")


def parse_routes(text, bridge):
    """The IPv4 networks in ``ip -4 route`` output, except the default and ``bridge``'s own."""
    networks = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("default", "unreachable", "blackhole", "prohibit"):
            continue
        if "dev" in words and words[words.index("dev") + 1:words.index("dev") + 2] == [bridge]:
            continue
        try:
            network = ipaddress.ip_network(words[0], strict=False)
        except ValueError:
            continue
        if network.version == 4 and network.prefixlen > 0:
            networks.append(str(network))
    return networks


# --------------------------------------------------------------------------- the inventory's record

def node_record(sess, node):
    """A node's inventory record as a JSON-able mapping."""
    used = sess.scalar(select(func.count(Environment.id)).where(Environment.node_id == node.id,
                                                                Environment.status.in_(LIVE_ENV_STATUSES)))
    return {
        "name": node.name, "address": node.address, "dns_name": node.dns_name,
        "ssh_port": node.ssh_port, "ssh_user": node.ssh_user, "slots": node.slots,
        "free_slots": max(node.slots - used, 0), "guest_type": node.guest_type,
        "status": node.status, "subnet": node.subnet, "http_port": node.http_port,
        "bridge": node.bridge, "lxc_path": node.lxc_path, "prefix": node.prefix,
        "minion_id": node.minion_id, "nat_port_min": node.nat_port_min,
        "nat_port_max": node.nat_port_max,
    }


def host_key_of(sess, node):
    """The SSH host key recorded for ``node`` ("type base64"), or None."""
    return sess.scalar(select(SshKey.public_key).where(SshKey.node_id == node.id,
                                                       SshKey.name == HOST_KEY_NAME))
