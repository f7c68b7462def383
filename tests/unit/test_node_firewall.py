"""The node's firewall: the nft rules it writes, the elements that pin containers, with nft faked."""

import json
import subprocess

import pytest

from mc_project.errors import CorpusError
from mc_project.node import firewall, lxc, nat

PORT = firewall.port_name("corpusbr0", "shop", "/var/lib/lxc")
SHOP = {"name": "shop", "port": PORT, "hwaddr": "00:16:3E:0A:0B:0C", "address": "10.77.0.2",
        "bridge": "corpusbr0"}


class FakeNft:
    """Records nft calls and scripts; answers ``list set ... hosts`` from its own elements."""

    def __init__(self, hosts=(), ready=True):
        self.hosts = [list(host) for host in hosts]
        self.ready = ready
        self.calls = []
        self.scripts = []

    def __call__(self, args, what, input=None, check=True, **kwargs):
        self.calls.append(args)
        if input is not None:
            self.scripts.append(input)
        out, code = "", 0
        if args[:2] == ["nft", "list"]:
            code = 0 if self.ready else 1
        elif args[:3] == ["nft", "-j", "list"]:
            out = json.dumps({"nftables": [{"metainfo": {}}, {"set": {"name": "hosts",
                                                                      "elem": [{"concat": h} for h in self.hosts]}}]})
        return subprocess.CompletedProcess(args, code, out, "")


@pytest.fixture(autouse=True)
def lock_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(nat, "LOCK_DIR", str(tmp_path / "lock"))


@pytest.fixture
def fake_nft(monkeypatch):
    fake = FakeNft()
    monkeypatch.setattr(firewall, "run", fake)
    monkeypatch.setattr(nat, "run", fake)
    return fake


def rules(script, chain):
    """The rules a script adds to ``chain``, without the ``add rule <family> <table> <chain>``."""
    found = []
    for line in script.replace("\\\n", "").splitlines():
        words = line.split()
        if words[:2] == ["add", "rule"] and words[4] == chain:
            found.append(" ".join(words[5:]))
    return found


def test_port_names_are_the_bridges_prefix_and_fit_the_kernels_limit():
    assert len(PORT) == 15 and PORT.startswith(firewall.port_prefix("corpusbr0"))
    assert PORT == firewall.port_name("corpusbr0", "shop", "/var/lib/lxc/")
    assert firewall.port_name("corpusbr0", "other", "/var/lib/lxc") != PORT
    assert firewall.port_name("corpusbr0", "shop", "/srv/lxc") != PORT
    assert firewall.port_prefix("corpusbr1") != firewall.port_prefix("corpusbr0")


def test_bridge_frames_pass_only_with_the_ports_own_mac_and_address():
    script = firewall.bridge_table("corpus")
    assert "add set bridge corpus hosts { type ifname . ether_addr . ipv4_addr; }" in script
    assert rules(script, "prerouting") == ["iifname @ports jump from_container"]
    assert rules(script, "from_container") == [
        "ether type ip iifname . ether saddr . ip saddr @hosts return",
        "ether type arp iifname . ether saddr . arp saddr ip @hosts "
        "iifname . arp saddr ether . arp saddr ip @hosts return",
        "drop",
    ]


def test_containers_never_reach_each_other_on_the_bridge():
    assert rules(firewall.bridge_table("corpus"), "forward") == ["iifname @ports drop", "oifname @ports drop"]


def test_containers_reach_on_the_node_only_replies_and_the_services():
    script = firewall.ip_chains("corpus")
    assert "add chain ip corpus input { type filter hook input priority filter; policy accept; }" in script
    assert rules(script, "input") == ["iifname @bridges jump container_input"]
    assert rules(script, "container_input") == [
        "ct state established,related accept",
        "ip daddr . meta l4proto . th dport @services accept",
        "meta l4proto tcp reject with tcp reset",
        "reject with icmp type admin-prohibited",
    ]


def test_forwarding_denies_container_to_container_and_unnated_connections_to_containers():
    script = firewall.ip_chains("corpus")
    assert rules(script, "forward") == ["iifname @bridges jump from_container",
                                        "oifname @bridges jump to_container"]
    assert rules(script, "from_container") == [
        "ct state established,related accept",
        "ct state invalid drop",
        "oifname @bridges ct status dnat accept",
        "oifname != @bridges ip daddr @outbound accept",
        "meta l4proto tcp reject with tcp reset",
        "reject with icmp type admin-prohibited",
    ]
    assert rules(script, "to_container") == ["ct state established,related accept", "ct status dnat accept",
                                             "drop"]


def test_rules_are_remade_in_place_so_a_rerun_or_an_older_node_gets_them():
    for script in (firewall.bridge_table("corpus"), firewall.ip_chains("corpus")):
        for line in script.splitlines():
            if line.startswith("add chain"):
                family, chain = line.split()[2], line.split()[4]
                assert "flush chain {} corpus {}\n".format(family, chain) in script
        assert "flush ruleset" not in script and "delete" not in script


def test_the_nat_table_no_longer_lets_the_loopback_out():
    assert "127.0.0.0/8" not in nat.table_definition("corpus")


def test_setup_guards_the_bridge_with_the_master_dns_and_outbound(fake_nft, tmp_path):
    result = firewall.setup("corpusbr0", "10.77.0.0/24", "corpus", str(tmp_path),
                            services=[("10.0.0.1", "tcp", 4505), ("10.0.0.1", "tcp", "4506")])
    script = fake_nft.scripts[-1]
    assert 'add element bridge corpus ports {{ "{}*" }}'.format(firewall.port_prefix("corpusbr0")) in script
    assert 'add element ip corpus bridges { "corpusbr0" }' in script
    assert ("add element ip corpus services { 10.0.0.1 . tcp . 4505, 10.0.0.1 . tcp . 4506, "
            "10.77.0.1 . udp . 53, 10.77.0.1 . tcp . 53 }") in script
    assert script.index("flush set ip corpus outbound") < script.index("add element ip corpus outbound { 0.0.0.0/0 }")
    assert result["restored"] == 0


def test_setup_restores_the_saved_containers(fake_nft, tmp_path):
    (tmp_path / "containers.json").write_text(json.dumps({"shop": dict(SHOP, name=None)}))
    assert firewall.setup("corpusbr0", "10.77.0.0/24", "corpus", str(tmp_path))["restored"] == 1
    pinned = 'add element bridge corpus hosts {{ "{}" . 00:16:3e:0a:0b:0c . 10.77.0.2 }}\n'.format(PORT)
    assert fake_nft.scripts[-1] == pinned


@pytest.mark.parametrize("kwargs, message", [
    ({"services": [("10.0.0.300", "tcp", 4505)]}, "not an .IPv4 address, protocol, port. service"),
    ({"services": [("10.0.0.1", "icmp", 1)]}, "not a protocol a service may use"),
    ({"services": [("10.0.0.1", "tcp", 0)]}, "not a service port"),
    ({"outbound": ["10.0.0.1/8"]}, "are not IPv4 networks"),
])
def test_bad_services_and_networks_are_refused_before_nft_runs(fake_nft, kwargs, message):
    with pytest.raises(CorpusError, match=message):
        firewall.setup("corpusbr0", "10.77.0.0/24", "corpus", **kwargs)
    assert fake_nft.calls == []


def test_allow_pins_one_element_and_saves_it(fake_nft, tmp_path):
    result = firewall.allow_container(SHOP, "corpus", str(tmp_path))
    assert result["changed"] is True and result["hwaddr"] == "00:16:3e:0a:0b:0c"
    assert fake_nft.scripts == ['add element bridge corpus hosts {{ "{}" . 00:16:3e:0a:0b:0c . 10.77.0.2 }}\n'.format(
        PORT)]
    saved = json.loads((tmp_path / "containers.json").read_text())
    assert saved == {"shop": {"port": PORT, "hwaddr": "00:16:3e:0a:0b:0c", "address": "10.77.0.2",
                              "bridge": "corpusbr0"}}


def test_allow_again_changes_nothing_and_a_new_address_replaces_the_old(monkeypatch, tmp_path):
    fake = FakeNft(hosts=[(PORT, "00:16:3e:0a:0b:0c", "10.77.0.2")])
    monkeypatch.setattr(firewall, "run", fake)
    monkeypatch.setattr(nat, "run", fake)
    assert firewall.allow_container(SHOP, "corpus")["changed"] is False
    assert fake.scripts == []
    assert firewall.allow_container(dict(SHOP, address="10.77.0.3/24"), "corpus")["changed"] is True
    assert fake.scripts == [
        'delete element bridge corpus hosts {{ "{0}" . 00:16:3e:0a:0b:0c . 10.77.0.2 }}\n'
        'add element bridge corpus hosts {{ "{0}" . 00:16:3e:0a:0b:0c . 10.77.0.3 }}\n'.format(PORT)]


@pytest.mark.parametrize("change, message", [
    ({"port": None}, "has no port of its own on bridge corpusbr0"),
    ({"port": "veth0123"}, "has no port of its own"),
    ({"hwaddr": "01:16:3e:00:00:01"}, "multicast MAC"),
    ({"hwaddr": "00:16:3e:00:01"}, "not a MAC address"),
    ({"address": "10.77.0.300"}, "not an IPv4 address"),
])
def test_a_container_that_cannot_be_pinned_is_refused(fake_nft, change, message):
    with pytest.raises(CorpusError, match=message):
        firewall.allow_container(dict(SHOP, **change), "corpus")
    assert fake_nft.scripts == []


def test_allow_without_setup_says_what_to_do(monkeypatch):
    monkeypatch.setattr(firewall, "run", FakeNft(ready=False))
    monkeypatch.setattr(nat, "run", FakeNft(ready=False))
    with pytest.raises(CorpusError, match="run mc_lxc.setup_node first"):
        firewall.allow_container(SHOP, "corpus")


def test_forget_removes_exactly_that_container_and_an_unknown_one_is_fine(monkeypatch, tmp_path):
    other = (firewall.port_name("corpusbr0", "other", "/var/lib/lxc"), "00:16:3e:00:00:09", "10.77.0.9")
    fake = FakeNft(hosts=[(PORT, "00:16:3e:0a:0b:0c", "10.77.0.2"), other])
    monkeypatch.setattr(firewall, "run", fake)
    monkeypatch.setattr(nat, "run", fake)
    firewall.save(str(tmp_path), {"shop": {"port": PORT}, "other": {"port": other[0]}})
    assert firewall.forget_container("nothing", "corpus", str(tmp_path))["changed"] is False
    assert firewall.forget_container("shop", "corpus", str(tmp_path))["changed"] is True
    deletes = [call for call in fake.calls if call[1] == "delete"]
    assert deletes == [["nft", "delete", "element", "bridge", "corpus", "hosts",
                        '{{ "{}" . 00:16:3e:0a:0b:0c . 10.77.0.2 }}'.format(PORT)]]
    assert set(firewall.load_saved(str(tmp_path))) == {"other"}


def test_a_configured_container_gets_a_port_and_a_mac_of_its_own(tmp_path):
    lxc_path = str(tmp_path)
    for name, address in (("shop", "10.77.0.2/24"), ("other", "10.77.0.3/24")):
        (tmp_path / name).mkdir()
        network = {"bridge": "corpusbr0", "address": address, "gateway": "10.77.0.1",
                   "hwaddr": lxc.derived_hwaddr(name, lxc_path), "port": firewall.port_name("corpusbr0", name,
                                                                                            lxc_path)}
        (tmp_path / name / "config").write_text(lxc.render_config(name, "/x/rootdev", network=network))
    shop, other = lxc.network_identity("shop", lxc_path), lxc.network_identity("other", lxc_path)
    assert shop == {"name": "shop", "port": firewall.port_name("corpusbr0", "shop", lxc_path),
                    "hwaddr": lxc.derived_hwaddr("shop", lxc_path), "address": "10.77.0.2", "bridge": "corpusbr0"}
    assert "lxc.net.0.veth.pair = {}".format(shop["port"]) in (tmp_path / "shop" / "config").read_text()
    assert shop["hwaddr"].startswith("00:16:3e:") and shop["hwaddr"] != other["hwaddr"]
    assert lxc.derived_hwaddr("shop", lxc_path) == shop["hwaddr"]  # the same on a rerun


def test_a_derived_mac_another_container_has_is_not_given_again(tmp_path):
    first = lxc.derived_hwaddr("shop", str(tmp_path))
    (tmp_path / "squatter").mkdir()
    (tmp_path / "squatter" / "config").write_text("lxc.net.0.hwaddr = {}\n".format(first.upper()))
    assert lxc.derived_hwaddr("shop", str(tmp_path)) not in (first, None)


def test_a_container_configured_before_ports_were_fixed_is_pinned_when_stopped(tmp_path, monkeypatch):
    (tmp_path / "old").mkdir()
    network = {"bridge": "corpusbr0", "address": "10.77.0.4/24", "gateway": "10.77.0.1",
               "hwaddr": "00:16:3e:12:34:56"}
    (tmp_path / "old" / "config").write_text(lxc.render_config("old", "/x/rootdev", hostname="old", network=network))
    monkeypatch.setattr(lxc, "state", lambda name, lxc_path: "STOPPED")
    assert lxc.network_identity("old", str(tmp_path))["port"] is None
    identity = lxc.pin_network("old", str(tmp_path))
    assert identity["port"] == firewall.port_name("corpusbr0", "old", str(tmp_path))
    assert identity["hwaddr"] == "00:16:3e:12:34:56"  # a MAC it had is kept
    config = lxc.read_config("old", str(tmp_path))
    assert config["lxc.uts.name"] == "old" and config["lxc.net.0.ipv4.gateway"] == "10.77.0.1"
    assert lxc.pin_network("old", str(tmp_path)) == identity
