"""Which node each corpus nftables table serves, from ``nft -j list sets ip`` output, and the
name of a node's own table."""

import json
import re

import pytest

from mc_project.common.vocabulary import NFT_TABLE_RE
from mc_project.controller import nodes
from mc_project.errors import CorpusError
from mc_project.node import tables


def listing(**held):
    """``nft -j list sets ip`` output for tables ``{name: (subnets, bridges)}``, plus a set of
    another table that is not corpus's."""
    items = [{"metainfo": {"version": "1.0.6"}},
             {"set": {"family": "ip", "name": "blocked", "table": "filter", "type": "ipv4_addr"}}]
    for table, (subnets, bridges) in held.items():
        elements = [{"prefix": {"addr": cidr.split("/")[0], "len": int(cidr.split("/")[1])}} for cidr in subnets]
        items.append({"set": {"family": "ip", "name": "subnets", "table": table, "type": "ipv4_addr",
                              "flags": ["interval"], **({"elem": elements} if elements else {})}})
        items.append({"set": {"family": "ip", "name": "bridges", "table": table, "type": "ifname",
                              **({"elem": list(bridges)} if bridges else {})}})
        items.append({"set": {"family": "ip", "name": "services", "table": table, "elem": []}})
    return json.dumps({"nftables": items})


def test_the_corpus_tables_and_what_they_hold():
    text = listing(corpus=(["10.91.0.0/24", "10.97.0.0/24"], ["corpusbr0"]),
                   corpus_node2_abcdef=([], []))
    assert tables.corpus_tables(text) == {
        "corpus": {"subnets": ["10.91.0.0/24", "10.97.0.0/24"], "bridges": ["corpusbr0"]},
        "corpus_node2_abcdef": {"subnets": [], "bridges": []}}
    assert tables.corpus_tables("") == {} and tables.corpus_tables("not json") == {}


def test_a_table_another_node_uses_on_the_same_bridge_is_a_conflict():
    found = tables.corpus_tables(listing(corpus=(["10.91.0.0/24", "10.97.0.0/24"], ["corpusbr0"]),
                                         corpus_b=(["10.98.0.0/24"], ["otherbr"])))
    assert tables.conflicts(found, "corpusbr0", "corpus_a", "10.91.0.0/24") == [("corpus", ["10.97.0.0/24"])]
    assert tables.conflicts(found, "otherbr", "corpus_a", "10.98.0.0/24") == []
    assert tables.conflicts(found, "freshbr", "corpus_a", None) == []
    with pytest.raises(CorpusError, match=r"^Bridge corpusbr0 is guarded by nftables table corpus, which this "
                                          r"node shares with another node \(subnet 10\.97\.0\.0/24\): link it "
                                          r"with nft_table=corpus to keep sharing it, or with a bridge of its "
                                          r"own\.$"):
        tables.refuse_conflicts(found, "corpusbr0", "corpus_a", "10.91.0.0/24", ["corpus"])
    with pytest.raises(CorpusError, match=r"^Bridge otherbr is guarded by nftables table corpus_b of another "
                                          r"node \(subnet 10\.98\.0\.0/24\): link this node with a bridge of "
                                          r"its own\.$"):
        tables.refuse_conflicts(found, "otherbr", "corpus_a", "10.99.0.0/24")


def test_a_node_leaves_the_table_it_was_configured_with_and_stale_ones_of_its_subnet():
    found = tables.corpus_tables(listing(corpus=(["10.91.0.0/24"], ["corpusbr0"]),
                                         corpus_old=(["10.91.0.0/24"], ["corpusbr0"]),
                                         corpus_b=(["10.97.0.0/24"], ["corpusbr0"]),
                                         corpus_a=(["10.91.0.0/24"], ["corpusbr0"])))
    assert tables.previous(found, "corpusbr0", "corpus_a", "10.91.0.0/24", "corpus") == ["corpus", "corpus_old"]
    assert tables.previous(found, "otherbr", "corpus_a", "10.91.0.0/24", None) == []
    assert tables.sole_user(found["corpus"], "corpusbr0", "10.91.0.0/24")
    assert not tables.sole_user(found["corpus_b"], "corpusbr0", "10.91.0.0/24")


@pytest.mark.parametrize("name", ["node1", "node-1", "node_1", "Node1", "a.very.long-node.name.example.com", "-"])
def test_each_node_has_a_table_of_its_own_with_a_valid_nft_name(name):
    table = nodes.nft_table_for(name)
    assert NFT_TABLE_RE.fullmatch(table) and len(table) <= 31 and table.startswith("corpus_")
    assert table == nodes.nft_table_for(name)  # the same node keeps it
    assert table != nodes.nft_table_for(name + "x")


def test_names_that_read_alike_get_distinct_tables():
    made = {nodes.nft_table_for(name) for name in ("node-1", "node_1", "node.1", "NODE-1")}
    assert len(made) == 4
    assert re.fullmatch(r"corpus_node1_[0-9a-f]{6}", nodes.nft_table_for("node1"))


def test_the_table_a_node_was_configured_with():
    assert nodes.configured_nft_table(None) is None
    assert nodes.configured_nft_table("id: n1\nmc_lxc:\n  nft_table: corpus_n1_abcdef\n") == "corpus_n1_abcdef"
    # a node linked before its table was configured used the one every node shared
    assert nodes.configured_nft_table("id: n1\nmaster: 10.0.0.1\n") == "corpus"
