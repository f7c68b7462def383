"""The PowerDNS client against a real pdns_server (gsqlite3), checked with real DNS queries."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from mc_project.controller import credentials
from mc_project.controller.pdns import PowerDns
from mc_project.errors import CorpusError
from support.ports import free_port
from support.services import PdnsServer, dns_query, pdns_server  # noqa: F401  (fixture)

ZONE = "corpus.test"


@pytest.fixture
def api(pdns_server):  # noqa: F811  (the fixture imported above)
    client = PowerDns(pdns_server.api_url, pdns_server.api_key)
    client.ensure_zone(ZONE, nameservers=["ns1.corpus.test"])
    return client


def env_records(address, host_keys, ttl=300):
    return [
        {"name": "env1.corpus.test", "type": "A", "contents": [address], "ttl": ttl},
        {"name": "*.env1.corpus.test.", "type": "A", "contents": [address], "ttl": ttl},
        {
            "name": "env1.corpus.test",
            "type": "SSHFP",
            "contents": credentials.sshfp_records(host_keys),
            "ttl": ttl,
        },
    ]


def test_zone_is_created_once_and_serves_its_soa(pdns_server, api):  # noqa: F811
    assert api.ensure_zone(ZONE, nameservers=["ns1.corpus.test"]) == "corpus.test."
    assert api.ensure_zone(ZONE + ".") == "corpus.test."
    [soa] = [r for r in api.records(ZONE) if r["type"] == "SOA"]
    assert soa["name"] == "corpus.test."
    assert dns_query(ZONE, "NS", pdns_server.dns_port) == ["ns1.corpus.test."]
    assert len(dns_query(ZONE, "SOA", pdns_server.dns_port)) == 1


def test_a_and_sshfp_records_answer_over_dns_then_are_replaced_and_removed(pdns_server, api):  # noqa: F811
    port = pdns_server.dns_port
    host_keys = [credentials.generate_ssh_keypair("root@env1")[1]]
    api.add_records(ZONE, env_records("10.5.0.2", host_keys))

    assert dns_query("env1.corpus.test", "A", port) == ["10.5.0.2"]
    # The wildcard answers for any name under the environment's domain.
    assert dns_query("www.env1.corpus.test", "A", port) == ["10.5.0.2"]
    assert dns_query("env1.corpus.test", "SSHFP", port) == sorted(credentials.sshfp_records(host_keys))
    listed = {(r["name"], r["type"]): r for r in api.records(ZONE)}
    assert listed["env1.corpus.test.", "A"] == {
        "name": "env1.corpus.test.", "type": "A", "contents": ["10.5.0.2"], "ttl": 300,
    }
    assert listed["*.env1.corpus.test.", "A"]["contents"] == ["10.5.0.2"]

    # Adding again replaces each rrset: new address and new host keys, nothing left of the old ones.
    new_keys = [credentials.generate_ssh_keypair("root@env1")[1], credentials.generate_ssh_keypair("b")[1]]
    api.add_records(ZONE, env_records("10.5.0.9", new_keys, ttl=60))
    assert dns_query("env1.corpus.test", "A", port) == ["10.5.0.9"]
    assert dns_query("x.env1.corpus.test", "A", port) == ["10.5.0.9"]
    assert dns_query("env1.corpus.test", "SSHFP", port) == sorted(credentials.sshfp_records(new_keys))
    assert {(r["name"], r["type"]): r["ttl"] for r in api.records(ZONE)}["env1.corpus.test.", "A"] == 60

    # The same call twice gives the same zone.
    before = api.records(ZONE)
    api.add_records(ZONE, env_records("10.5.0.9", new_keys, ttl=60))
    assert [r for r in api.records(ZONE) if r["type"] != "SOA"] == [r for r in before if r["type"] != "SOA"]

    removed = [("env1.corpus.test", "A"), ("*.env1.corpus.test", "A"), ("env1.corpus.test", "SSHFP")]
    api.remove_records(ZONE, removed)
    assert dns_query("env1.corpus.test", "A", port) == []
    assert dns_query("www.env1.corpus.test", "A", port) == []
    assert dns_query("env1.corpus.test", "SSHFP", port) == []
    assert {r["type"] for r in api.records(ZONE)} == {"SOA", "NS"}
    # Removing what is already gone (or was never there) is fine.
    api.remove_records(ZONE, removed + [("never.corpus.test", "A")])
    api.remove_records("absent.test", [("env1.absent.test", "A")])


def test_removing_one_name_leaves_the_others(pdns_server, api):  # noqa: F811
    api.add_records(ZONE, env_records("10.5.0.2", [])[:2])
    api.add_records(ZONE, [{"name": "env2.corpus.test", "type": "A", "contents": ["10.5.0.3"]}])
    api.remove_records(ZONE, [("env1.corpus.test", "A")])
    assert dns_query("env2.corpus.test", "A", pdns_server.dns_port) == ["10.5.0.3"]
    assert dns_query("env1.corpus.test", "A", pdns_server.dns_port) == []


def test_bad_records_are_refused_with_powerdns_reason_and_change_nothing(pdns_server, api):  # noqa: F811
    api.add_records(ZONE, [{"name": "env1.corpus.test", "type": "A", "contents": ["10.5.0.2"]}])
    before = api.records(ZONE)
    bad = [
        {"name": "env1.corpus.test", "type": "A", "contents": ["10.5.0.7"]},
        {"name": "env2.corpus.test", "type": "A", "contents": ["not-an-address"]},
    ]
    with pytest.raises(CorpusError) as info:
        api.add_records(ZONE, bad)
    message = str(info.value)
    assert message.startswith("PowerDNS at {} refused to set records in zone corpus.test: HTTP 422".format(
        pdns_server.api_url))
    assert "not-an-address" in message and "\n" not in message
    # One PATCH is one transaction: the good record of the batch did not go in either.
    assert api.records(ZONE) == before
    assert dns_query("env1.corpus.test", "A", pdns_server.dns_port) == ["10.5.0.2"]

    with pytest.raises(CorpusError, match="other.test is not in zone corpus.test"):
        api.add_records(ZONE, [{"name": "www.other.test", "type": "A", "contents": ["10.0.0.1"]}])
    with pytest.raises(CorpusError, match="has no contents"):
        api.add_records(ZONE, [{"name": "env1.corpus.test", "type": "A", "contents": []}])
    with pytest.raises(CorpusError, match="has no zone absent.test\\.$"):
        api.records("absent.test")
    assert api.records(ZONE) == before


def test_wrong_api_key_is_one_clear_sentence(pdns_server):  # noqa: F811
    wrong = PowerDns(pdns_server.api_url, "not-the-key")
    with pytest.raises(CorpusError) as info:
        wrong.ensure_zone(ZONE)
    assert str(info.value) == "PowerDNS at {} refused the API key (HTTP 401).".format(pdns_server.api_url)
    assert "not-the-key" not in str(info.value)
    assert "not-the-key" not in repr(wrong)


def test_unknown_server_id_is_named(pdns_server):  # noqa: F811
    expected = r"refused to show server 'nope' \(corpus: dns: server_id\): HTTP 404"
    with pytest.raises(CorpusError, match=expected):
        PowerDns(pdns_server.api_url, pdns_server.api_key, server_id="nope").records(ZONE)


def test_powerdns_down_is_one_clear_sentence(tmp_path):
    with PdnsServer(tmp_path) as server:
        api = PowerDns(server.api_url, server.api_key, timeout=2)
        api.ensure_zone(ZONE)
    record = {"name": "a.corpus.test", "type": "A", "contents": ["10.0.0.1"]}
    calls = (
        lambda: api.ensure_zone(ZONE),
        lambda: api.records(ZONE),
        lambda: api.add_records(ZONE, [record]),
        lambda: api.remove_records(ZONE, [("a.corpus.test", "A")]),
    )
    refused = "PowerDNS at {} did not answer: Connection refused.".format(server.api_url)
    for call in calls:
        with pytest.raises(CorpusError) as info:
            call()
        assert str(info.value) == refused
    nobody = "http://127.0.0.1:{}".format(free_port())
    with pytest.raises(CorpusError) as info:
        PowerDns(nobody, "key").ensure_zone(ZONE)
    assert str(info.value) == "PowerDNS at {} did not answer: Connection refused.".format(nobody)


def test_parallel_changes_all_land(pdns_server, api):  # noqa: F811
    # gsqlite3 answers "database is locked" (HTTP 500) to concurrent writers: the client retries.
    def add(index):
        client = PowerDns(pdns_server.api_url, pdns_server.api_key)
        address = "10.6.0.{}".format(index + 2)
        client.add_records(ZONE, [
            {"name": "p{}.corpus.test".format(index), "type": "A", "contents": [address]},
            {"name": "*.p{}.corpus.test".format(index), "type": "A", "contents": [address]},
        ])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))
    for index in range(8):
        assert dns_query("www.p{}.corpus.test".format(index), "A", pdns_server.dns_port) == [
            "10.6.0.{}".format(index + 2)
        ]
