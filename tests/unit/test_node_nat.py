"""The nftables rules corpus writes and the port mapping checks, with nft faked."""

import json
import subprocess

import pytest

from mc_project.errors import CorpusError
from mc_project.node import nat


class FakeNft:
    """Records nft calls and answers ``list`` from an in-memory map of mappings."""

    def __init__(self, mappings=None, table_exists=True):
        self.mappings = dict(mappings or {})  # (proto, port) -> (address, internal port)
        self.table_exists = table_exists
        self.calls = []

    def __call__(self, args, what, input=None, check=True, **kwargs):
        self.calls.append(args)
        out = ""
        code = 0
        if args[:2] == ["nft", "list"]:
            code = 0 if self.table_exists else 1
        elif args[:3] == ["nft", "-j", "list"]:
            proto = args[-1].split("_")[0]
            elems = [
                [port, {"concat": [address, internal]}]
                for (p, port), (address, internal) in sorted(self.mappings.items())
                if p == proto
            ]
            out = json.dumps({"nftables": [{"metainfo": {}}, {"map": {"name": args[-1], "elem": elems}}]})
        return subprocess.CompletedProcess(args, code, out, "")


@pytest.fixture(autouse=True)
def lock_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(nat, "LOCK_DIR", str(tmp_path / "lock"))


@pytest.fixture
def fake_nft(monkeypatch):
    fake = FakeNft({("tcp", 40000): ("10.77.0.10", 22)})
    monkeypatch.setattr(nat, "run", fake)
    return fake


def test_table_dnats_in_prerouting_and_output_only_for_the_nodes_own_addresses():
    text = nat.table_definition("corpus")
    assert text.startswith("table ip corpus {")
    for chain in ("prerouting", "output"):
        body = text.split("chain {} {{".format(chain))[1].split("}")[0]
        assert "fib daddr type local dnat ip to tcp dport map @tcp_ports" in body
        assert "fib daddr type local dnat ip to udp dport map @udp_ports" in body
    assert "type nat hook output priority -100" in text
    assert "map tcp_ports { type inet_service : ipv4_addr . inet_service; }" in text


def test_table_masquerades_the_subnet_going_out_and_hairpin_but_not_localhost():
    post = nat.table_definition().split("chain postrouting {")[1]
    assert "ip saddr @subnets ip daddr != @subnets masquerade" in post
    assert "ct status dnat ip saddr @subnets ip daddr @subnets masquerade" in post
    assert "127.0.0.0/8" not in post  # the bridge has no route_localnet: the loopback never goes out


def test_one_mapping_is_one_map_element():
    assert nat.element(40001, "10.77.0.11", 22) == "{ 40001 : 10.77.0.11 . 22 }"


def test_ports_reads_the_maps(fake_nft):
    assert nat.ports("corpus") == [
        {"external_port": 40000, "address": "10.77.0.10", "internal_port": 22, "protocol": "tcp"}
    ]


def test_map_port_adds_one_element_and_saves_the_mappings(fake_nft, tmp_path):
    result = nat.map_port(40001, "10.77.0.11", 22, state_dir=str(tmp_path))
    assert result["changed"] is True
    assert [
        "nft",
        "add",
        "element",
        "ip",
        "corpus",
        "tcp_ports",
        "{ 40001 : 10.77.0.11 . 22 }",
    ] in fake_nft.calls
    assert (tmp_path / "ports.json").exists()


def test_mapping_the_same_thing_twice_changes_nothing(fake_nft):
    assert nat.map_port(40000, "10.77.0.10", 22)["changed"] is False
    assert not any("add" in call for call in fake_nft.calls)


def test_a_port_mapped_to_another_address_is_refused(fake_nft):
    with pytest.raises(CorpusError, match=r"Port 40000/tcp is already mapped to 10.77.0.10:22\."):
        nat.map_port(40000, "10.77.0.99", 22)
    assert not any("add" in call for call in fake_nft.calls)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, "10.0.0.1"), "not a node port"),
        ((70000, "10.0.0.1"), "not a node port"),
        (("x", "10.0.0.1"), "not a node port"),
        ((40000, "10.0.0.300"), "not an IPv4 address"),
        ((40000, "10.0.0.1", 0), "not a container port"),
        ((40000, "10.0.0.1", 22, "sctp"), "not a protocol"),
    ],
)
def test_bad_mappings_are_refused_before_nft_runs(fake_nft, args, message):
    with pytest.raises(CorpusError, match=message):
        nat.map_port(*args)
    assert fake_nft.calls == []


def test_map_port_without_setup_says_what_to_do(monkeypatch):
    monkeypatch.setattr(nat, "run", FakeNft(table_exists=False))
    with pytest.raises(CorpusError, match="run mc_lxc.setup_node first"):
        nat.map_port(40000, "10.77.0.10")


def test_unmap_removes_exactly_that_element_and_an_unknown_port_is_fine(fake_nft):
    assert nat.unmap_port(40005)["changed"] is False
    assert nat.unmap_port(40000)["changed"] is True
    assert ["nft", "delete", "element", "ip", "corpus", "tcp_ports", "{ 40000 }"] in fake_nft.calls


def test_a_bad_table_name_is_refused():
    with pytest.raises(CorpusError, match="not an nftables table name"):
        nat.ports("corpus; flush ruleset")
