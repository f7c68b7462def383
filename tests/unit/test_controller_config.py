"""Controller settings: defaults, merging, derived values and refused input."""

import ipaddress
import socket

import pytest

from mc_project.controller import config
from mc_project.controller.config import controller_settings, local_ipv4
from mc_project.errors import CorpusError

OPTS = {"cachedir": "/var/cache/salt/master"}


def settings(corpus=None, **opts):
    return controller_settings(dict(OPTS, corpus=corpus, **opts))


def test_defaults_without_a_root():
    result = settings(master_address="unused")  # a master option, not a corpus one
    assert result["root"] is None
    assert result["db_url"] == "sqlite:////var/cache/salt/master/corpus/inventory.sqlite"
    assert result["wheelhouse"] == "/var/cache/salt/master/wheelhouse"
    assert result["domain"] == "corpus.test"
    assert result["dns"] == {"api_url": None, "api_key": None, "server_id": "localhost",
                             "zone": "corpus.test.", "ttl": 300}
    assert result["smtp"] == {"host": None, "port": 25, "sender": "corpus@" + socket.getfqdn(),
                              "timeout": 10}
    assert result["lxc"] == {"mirror": "http://deb.debian.org/debian", "suite": "bookworm",
                             "disk_size_mb": 2048, "spare": 1}
    assert result["master_address"] == local_ipv4()


@pytest.mark.parametrize("given, count", [(True, 1), (False, 0), (0, 0), (8, 8)])
def test_the_spare_containers_a_node_keeps_are_a_count(given, count):
    spare = settings({"lxc": {"spare": given}})["lxc"]["spare"]
    assert spare == count and type(spare) is int


def test_a_root_holds_the_database_and_the_wheelhouse():
    result = settings({"root": "/srv/controller"})
    assert result["db_url"] == "sqlite:////srv/controller/var/lib/corpus/inventory.sqlite"
    assert result["wheelhouse"] == "/srv/controller/wheelhouse"


def test_given_values_win_and_sections_merge_key_by_key():
    result = settings({
        "db_url": "postgresql+psycopg2://corpus@db/corpus",
        "master_address": "192.0.2.1",
        "domain": "example.net",
        "dns": {"api_url": "http://127.0.0.1:8081", "api_key": "k", "ttl": 60},
        "smtp": {"host": "mail.example.net", "timeout": 2.5},
        "lxc": {"suite": "trixie"},
    })
    assert result["db_url"] == "postgresql+psycopg2://corpus@db/corpus"
    assert result["master_address"] == "192.0.2.1"
    assert result["dns"] == {"api_url": "http://127.0.0.1:8081", "api_key": "k",
                             "server_id": "localhost", "zone": "example.net.", "ttl": 60}
    assert result["smtp"]["host"] == "mail.example.net" and result["smtp"]["port"] == 25
    assert result["smtp"]["timeout"] == 2.5
    assert result["lxc"]["suite"] == "trixie" and result["lxc"]["disk_size_mb"] == 2048


def test_inventory_url_alone_matches_the_settings():
    for corpus in (None, {"root": "/srv/controller"}, {"db_url": "postgresql+psycopg2://db/corpus"}):
        opts = dict(OPTS, corpus=corpus)
        assert config.inventory_url(opts) == controller_settings(opts)["db_url"]
    with pytest.raises(CorpusError, match="corpus:db_url must be a string or empty, not int"):
        config.inventory_url(dict(OPTS, corpus={"db_url": 5}))


def test_the_given_mapping_is_not_changed():
    given = {"dns": {"ttl": 60}}
    settings(given)
    assert given == {"dns": {"ttl": 60}}


@pytest.mark.parametrize("corpus, message", [
    ({"dburl": "x"}, "Unknown controller setting corpus:dburl."),
    ({"dns": {"apikey": "x"}}, "Unknown controller setting corpus:dns:apikey."),
    ({"dns": {"ttl": "300"}}, "corpus:dns:ttl must be an integer, not str."),
    ({"dns": {"ttl": True}}, "corpus:dns:ttl must be an integer, not bool."),
    ({"dns": {"ttl": 0}}, "corpus:dns:ttl must be positive."),
    ({"smtp": {"port": 70000}}, "corpus:smtp:port must be a port between 1 and 65535."),
    ({"smtp": "mail:25"}, "corpus:smtp must be a mapping."),
    ({"lxc": {"disk_size_mb": 1.5}}, "corpus:lxc:disk_size_mb must be an integer, not float."),
    ({"lxc": {"spare": -1}}, "corpus:lxc:spare must be a number from 0 to 32."),
    ({"lxc": {"spare": "8"}}, "corpus:lxc:spare must be true or false or an integer, not str."),
    ({"domain": "bad domain"}, "corpus:domain must be a DNS domain name."),
    ({"domain": 5}, "corpus:domain must be a string, not int."),
    ({"root": "relative/dir"}, "corpus:root must be an absolute path."),
    ({"wheelhouse": ""}, "corpus:wheelhouse must be an absolute path."),
    ({"db_url": ""}, "corpus:db_url must not be empty."),
    ({"master_address": ["192.0.2.1"]}, "corpus:master_address must be a string or empty, not list."),
    ({"master_address": "not an address"},
     "corpus:master_address must be an IP address or a host name."),
    (["root"], "The master option corpus must be a mapping."),
])
def test_bad_settings_are_one_sentence(corpus, message):
    with pytest.raises(CorpusError) as failure:
        settings(corpus)
    assert str(failure.value).endswith(message)
    assert str(failure.value).count(". ") == 0


def test_a_secret_never_shows_in_an_error():
    with pytest.raises(CorpusError) as failure:
        settings({"dns": {"api_key": ["s3cr3t-key"]}})
    assert "s3cr3t-key" not in str(failure.value)
    assert "corpus:dns:api_key must be a string or empty" in str(failure.value)


def test_local_ipv4_is_not_loopback():
    address = ipaddress.ip_address(local_ipv4())
    assert address.version == 4 and not address.is_loopback


def test_local_ipv4_without_a_route_out_takes_an_interface_address(monkeypatch):
    class NoRoute(socket.socket):
        def connect(self, address):
            raise OSError("Network is unreachable")

    monkeypatch.setattr(config.socket, "socket", NoRoute)
    address = ipaddress.ip_address(local_ipv4())
    assert not address.is_loopback


def test_local_ipv4_with_only_loopback_is_one_sentence(monkeypatch):
    class LoopbackOnly(socket.socket):
        def getsockname(self):
            return ("127.0.0.1", 40000)

    monkeypatch.setattr(config.socket, "socket", LoopbackOnly)
    monkeypatch.setattr(config.psutil, "net_if_addrs", lambda: {"lo": []})
    with pytest.raises(CorpusError, match="set corpus:master_address"):
        local_ipv4()


def test_nat_port_ranges_of_a_node_are_checked():
    from mc_project.controller import checks

    assert checks.check_port_range("42000-42099") == [42000, 42099]
    for bad in ("42000", "x-y", "50000-40000", "80-90"):
        with pytest.raises(CorpusError, match="NAT ports"):
            checks.check_port_range(bad)
