"""A node's network on this machine, set up and taken down again (``mc_project.node.host``).

Real bridges, nftables tables and haproxy, no Salt: two nodes on one bridge must not have
tables of their own (the second is refused in one sentence, with nothing made), two nodes
that share one table (as every node of a machine once shared ``corpus``) leave it one after
the other: the first takes only its own subnet and ports out of it and keeps the table and
the bridge for the second, saying why; the second takes them away, and nothing is left.
"""

import subprocess
import uuid

import pytest

from mc_project.errors import CorpusError
from mc_project.node import host, nat, proxy
from support.ports import free_port

pytestmark = pytest.mark.needs("root", "nft", "haproxy", "ip")

SUBNET_A = "10.86.1.0/24"
SUBNET_B = "10.86.2.0/24"


def tables_listed():
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout.split("\n")


def bridge_exists(bridge):
    return subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0


@pytest.fixture
def place(tmp_path):
    """Names of their own for this test's bridge and tables; everything removed at the end."""
    suffix = uuid.uuid4().hex[:6]
    made = {"bridge": "ctd" + suffix, "shared": "corpus_td" + suffix, "own_a": "corpus_tda" + suffix,
            "own_b": "corpus_tdb" + suffix, "a": str(tmp_path / "a"), "b": str(tmp_path / "b"),
            "lxc": str(tmp_path / "lxc")}
    yield made
    for node in ("a", "b"):
        proxy.stop(made[node])
    for table in ("shared", "own_a", "own_b"):
        nat.teardown(made[table])
    host.remove_bridge(made["bridge"])


def setup(place, node, subnet, table, **kwargs):
    return host.setup_node(place["bridge"], subnet, free_port(), place["lxc"], place[node], place[table], **kwargs)


def test_a_second_node_on_a_guarded_bridge_is_refused_with_nothing_made(place):
    setup(place, "a", SUBNET_A, "own_a")
    with pytest.raises(CorpusError) as refused:
        setup(place, "b", SUBNET_B, "own_b")
    assert str(refused.value) == (
        "Bridge {} is guarded by nftables table {} of another node (subnet {}): link this node with a "
        "bridge of its own.".format(place["bridge"], place["own_a"], SUBNET_A))
    assert not {"table ip " + place["own_b"], "table bridge " + place["own_b"]} & set(tables_listed())
    assert not proxy.running_pid(place["b"])


def test_nodes_sharing_a_table_leave_it_one_after_the_other(place):
    setup(place, "a", SUBNET_A, "shared")
    setup(place, "b", SUBNET_B, "shared")
    nat.map_port(41001, "10.86.1.10", 22, table=place["shared"], state_dir=place["a"])
    nat.map_port(41002, "10.86.2.10", 22, table=place["shared"], state_dir=place["b"])
    # Node a cannot move to a table of its own while node b's containers are on the same bridge.
    with pytest.raises(CorpusError, match=r"which this node shares with another node \(subnet 10\.86\.2\.0/24\): "
                                          r"link it with nft_table=corpus_td"):
        setup(place, "a", SUBNET_A, "own_a", previous_tables=[place["shared"]])

    first = host.teardown_node(place["bridge"], SUBNET_A, place["lxc"], place["a"], place["shared"])
    assert first["kept"] == [
        "nft table {} kept: another node on this machine uses it (subnet {}); this node's subnet, ports and "
        "containers were taken out of it".format(place["shared"], SUBNET_B),
        "bridge {} kept: another node on this machine uses it (table {}, subnet {}); this node's address "
        "10.86.1.1/24 was taken off it".format(place["bridge"], place["shared"], SUBNET_B)]
    assert first["removed"][0].startswith("haproxy (pid ") and not proxy.running_pid(place["a"])
    assert [m["external_port"] for m in nat.ports(place["shared"])] == [41002]
    assert proxy.running_pid(place["b"]) and bridge_exists(place["bridge"])

    second = host.teardown_node(place["bridge"], SUBNET_B, place["lxc"], place["b"], place["shared"])
    assert second["kept"] == []
    assert second["removed"][1:] == [
        "nft tables ip {0} and bridge {0} removed".format(place["shared"]),
        "no golden container in {}".format(place["lxc"]),
        "bridge {} removed".format(place["bridge"])]
    assert not {"table ip " + place["shared"], "table bridge " + place["shared"]} & set(tables_listed())
    assert not bridge_exists(place["bridge"]) and not proxy.running_pid(place["b"])
