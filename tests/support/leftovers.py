"""What the LXC tests leave on the machine, and its removal at the end of their session.

Linking this machine as a node (tests/integration/controller/) makes the node's network (the
bridge ``corpusbr0``, the node's own nftables tables ``ip T`` and ``bridge T``) and copies
the golden container (about 650 MB) into each test LXC path; unlinking the node takes them
away. What an unlink that failed left goes at the end too: the network only if this run made
it (``corpus``, the table nodes of a machine once shared, is looked at too), the golden
containers only under the tests' own LXC root. ``CORPUS_TESTS_KEEP_NODES=1`` keeps them all,
for a faster next run.
"""

import os
import shutil
import subprocess

from mc_project.node import spares

GOLDEN = "corpus-golden"
BRIDGE = "corpusbr0"
LEGACY_TABLE = "corpus"


def keep_nodes():
    return os.environ.get("CORPUS_TESTS_KEEP_NODES") == "1"


def _run(*command):
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _tables(*names):
    return [(family, name) for name in (LEGACY_TABLE,) + names for family in ("ip", "bridge")]


def node_network(*tables):
    """The default node network objects, and the nftables ``tables`` (``ip`` and ``bridge``),
    that exist now, as a set."""
    present = set()
    if shutil.which("nft"):
        listed = _run("nft", "list", "tables").stdout.split("\n")
        present.update(("nft",) + table for table in _tables(*tables) if "table {} {}".format(*table) in listed)
    if os.path.isdir("/sys/class/net/{}".format(BRIDGE)):
        present.add(("link", BRIDGE))
    return present


def remove_node_network(before, *tables):
    """Remove the default node network objects and ``tables`` made since ``before``
    (``node_network(*tables)``)."""
    for made in sorted(node_network(*tables) - before):
        if made[0] == "nft":
            _run("nft", "delete", "table", made[1], made[2])
        else:
            _run("ip", "link", "del", made[1])


def remove_golden(lxc_path):
    """Destroy the spare (and stop its making) and golden containers in ``lxc_path`` (a test LXC
    path), then the path if empty."""
    if os.path.isdir(lxc_path):
        spares.remove(lxc_path)
    if os.path.isdir(os.path.join(lxc_path, GOLDEN)):
        _run("lxc-destroy", "-f", "-P", lxc_path, "-n", GOLDEN)
    for path in (lxc_path, os.path.dirname(lxc_path)):
        try:
            os.rmdir(path)
        except OSError:
            break
