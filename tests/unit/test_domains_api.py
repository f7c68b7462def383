"""The domains' REST routes in process over an SQLite inventory, PowerDNS replaced by an
in-memory fake of the controller's client: domains and records CRUD, validation as one
sentence that changes nothing, PowerDNS refusing or down leaves the inventory as it was,
the environments' records listed and kept from hand edits, the drift check, and tenant
isolation (another tenant's domain is 404)."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.pdns import PowerDnsError, absolute
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db, domains
from mc_project.inventory.models import ComputeNode, DnsRecord, Environment, Tenant
from support.api_answers import error, login


class FakePowerDns:
    """The controller's PowerDNS client's calls, over a dict of zones; ``down`` makes each
    call fail as the real client does when PowerDNS is down."""

    def __init__(self):
        self.zones = {}
        self.down = False

    def _up(self):
        if self.down:
            raise PowerDnsError("PowerDNS at http://127.0.0.1:1 did not answer: Connection refused.")

    def zone_exists(self, zone):
        self._up()
        return absolute(zone) in self.zones

    def ensure_zone(self, zone, nameservers=None):
        self._up()
        rrsets = self.zones.setdefault(absolute(zone), {})
        rrsets[(absolute(zone), "SOA")] = (3600, ["a.misconfigured.dns.server.invalid. hostmaster. 1 2 3 4 5"])
        if nameservers:
            rrsets[(absolute(zone), "NS")] = (3600, [absolute(ns) for ns in nameservers])
        return absolute(zone)

    def set_nameservers(self, zone, nameservers, ttl=300):
        contents = [absolute(ns) for ns in nameservers]
        self.add_records(zone, [{"name": zone, "type": "NS", "ttl": ttl, "contents": contents}])

    def add_records(self, zone, records):
        self._up()
        for record in records:
            if "refuse-me" in " ".join(record["contents"]):
                raise PowerDnsError("PowerDNS at http://127.0.0.1:1 refused to set records in zone {}: HTTP 422 "
                                    "(refused).".format(zone.rstrip(".")))
            self.zones[absolute(zone)][(absolute(record["name"]), record["type"])] = (
                record["ttl"], list(record["contents"]))

    def remove_records(self, zone, names_types):
        self._up()
        for name, rtype in names_types:
            self.zones.get(absolute(zone), {}).pop((absolute(name), rtype), None)

    def delete_zone(self, zone):
        self._up()
        self.zones.pop(absolute(zone), None)

    def records(self, zone):
        self._up()
        return [{"name": name, "type": rtype, "ttl": ttl, "contents": sorted(contents)}
                for (name, rtype), (ttl, contents) in sorted(self.zones[absolute(zone)].items())]

    def rrset(self, name, rtype):
        for rrsets in self.zones.values():
            if (absolute(name), rtype) in rrsets:
                return rrsets[absolute(name), rtype]
        return None


@pytest.fixture
def fake():
    return FakePowerDns()


@pytest.fixture
def client(opts, ctl, fake, monkeypatch):
    monkeypatch.setattr(Controller, "fire", lambda self, tag, data: None)
    monkeypatch.setattr(domains, "powerdns", lambda settings: fake)
    app = create_app(opts, ctl=ctl)
    url = ctl.url
    users.add_local_user(url, "ada", "ada-pw", "alpha", "admin")
    users.add_local_user(url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(url, "val", "val-pw", "alpha", "viewer")
    users.add_local_user(url, "bob", "bob-pw", "beta", "admin")
    with TestClient(app) as test_client:
        yield test_client
    db.dispose()


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("ada", "alice", "val", "bob")}


def ok(answer, status=200):
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def make_domain(client, heads, name="example.org", who="ada"):
    return ok(client.post("/v1/domains", json={"name": name, "nameservers": ["ns1.example.net", "ns2.example.net"]},
                          headers=heads[who]), 201)


def records_of(client, heads, domain):
    return ok(client.get("/v1/domains/{}/records".format(domain["id"]), headers=heads["val"]))


def rows(client):
    with db.session(client.app.state.url) as sess:
        return sorted((row.name, row.type, row.content, row.ttl) for row in sess.scalars(select(DnsRecord)))


def test_domain_and_records_crud_keep_powerdns_in_step(client, heads, fake):
    made = make_domain(client, heads, "Example.ORG.")
    assert (made["name"], made["tenant"], made["nameservers"], made["taken_over"]) == (
        "example.org", "alpha", ["ns1.example.net", "ns2.example.net"], False)
    assert fake.rrset("example.org", "NS")[1] == ["ns1.example.net.", "ns2.example.net."]
    path = "/v1/domains/{}/records".format(made["id"])
    h = heads["alice"]
    www = ok(client.post(path, json={"name": "www.example.org", "type": "a", "content": "192.0.2.10"}, headers=h), 201)
    assert www == {"id": www["id"], "domain": "example.org", "name": "www.example.org", "type": "A", "ttl": 300,
                   "content": "192.0.2.10", "managed_by": "hand"}
    ok(client.post(path, json={"name": "www.example.org.", "type": "A", "content": "192.0.2.11", "ttl": 60},
                   headers=h), 201)
    # One TTL per rrset: the second record's is the rrset's.
    assert fake.rrset("www.example.org", "A") == (60, ["192.0.2.10", "192.0.2.11"])
    assert ok(client.get(path + "/{}".format(www["id"]), headers=h))["ttl"] == 60
    samples = {"AAAA": "2001:DB8::0:1", "TXT": "v=spf1 -all", "MX": "10 Mail.example.org",
               "SSHFP": "1 2 " + "AB" * 32}
    for rtype, content in samples.items():
        ok(client.post(path, json={"name": "@", "type": rtype, "content": content}, headers=h), 201)
    ok(client.post(path, json={"name": "_sip._tcp.example.org", "type": "SRV", "content": "10 5 5060 sip.example.org"},
                   headers=h), 201)
    ok(client.post(path, json={"name": "ftp.example.org", "type": "CNAME", "content": "www.example.org"}, headers=h),
       201)
    assert fake.rrset("example.org", "AAAA")[1] == ["2001:db8::1"]
    assert fake.rrset("example.org", "TXT")[1] == ['"v=spf1 -all"']
    assert fake.rrset("example.org", "MX")[1] == ["10 mail.example.org."]
    assert fake.rrset("_sip._tcp.example.org", "SRV")[1] == ["10 5 5060 sip.example.org."]
    assert fake.rrset("ftp.example.org", "CNAME")[1] == ["www.example.org."]
    listed = records_of(client, heads, made)
    assert listed["total"] == 8
    assert ok(client.get(path, params={"name": "www.example.org", "type": "A", "limit": 1}, headers=h))["total"] == 2
    assert ok(client.get("/v1/domains/{}".format(made["id"]), headers=h))["records"] == 8
    assert ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=h))["in_sync"] is True

    changed = ok(client.patch(path + "/{}".format(www["id"]), json={"content": "192.0.2.12"}, headers=h))
    assert changed["content"] == "192.0.2.12"
    assert fake.rrset("www.example.org", "A") == (60, ["192.0.2.11", "192.0.2.12"])
    ok(client.delete(path + "/{}".format(www["id"]), headers=h), 204)
    assert fake.rrset("www.example.org", "A") == (60, ["192.0.2.11"])
    [last] = ok(client.get(path, params={"name": "www.example.org", "type": "A"}, headers=h))["items"]
    ok(client.delete(path + "/{}".format(last["id"]), headers=h), 204)
    assert fake.rrset("www.example.org", "A") is None

    ns = ok(client.patch("/v1/domains/{}".format(made["id"]), json={"nameservers": ["ns3.example.net"]},
                         headers=heads["ada"]))
    assert ns["nameservers"] == ["ns3.example.net"] and fake.rrset("example.org", "NS")[1] == ["ns3.example.net."]
    assert ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=h))["in_sync"] is True
    changes = ok(client.get("/v1/domains/{}/changes".format(made["id"]), params={"limit": 3}, headers=heads["val"]))
    assert changes["total"] == 13  # the domain made, 8 records added, 1 changed, 2 removed, its NS set
    assert [(c["object"], c["action"], c["user"]) for c in changes["items"]] == [
        ("domain", "update", "ada"), ("dns_record", "delete", "alice"), ("dns_record", "delete", "alice")]
    assert changes["items"][0]["before"]["nameservers"] == ["ns1.example.net", "ns2.example.net"]
    ok(client.delete("/v1/domains/{}".format(made["id"]), headers=heads["ada"]), 204)
    assert "example.org." not in fake.zones and rows(client) == []
    assert ok(client.get("/v1/domains", headers=h))["total"] == 0


def test_bad_input_is_one_sentence_and_changes_nothing(client, heads, fake):
    made = make_domain(client, heads)
    path = "/v1/domains/{}/records".format(made["id"])
    h = heads["alice"]
    ok(client.post(path, json={"name": "www.example.org", "type": "A", "content": "192.0.2.10"}, headers=h), 201)
    before, zone = rows(client), dict(fake.zones["example.org."])
    cases = {
        ("www.example.org", "A", "192.0.2.300"): "'192.0.2.300' is not a valid A record",
        ("v6.example.org", "AAAA", "192.0.2.1"): "is not a valid AAAA record",
        ("www.other.org", "A", "192.0.2.1"): "www.other.org is not inside domain example.org",
        ("www", "A", "192.0.2.1"): "www is not inside domain example.org; give the full name",
        ("a..example.org", "A", "192.0.2.1"): "is not a valid record name",
        ("www.example.org", "NS", "ns.example.net"): "Record type 'NS' is not one of A, AAAA, CNAME",
        ("www.example.org", "CNAME", "other.example.org"): "www.example.org already has A record(s); a CNAME must",
        ("example.org", "CNAME", "other.example.org"): "Domain example.org itself cannot be a CNAME",
        ("mx.example.org", "MX", "mail.example.org"): "is not a valid MX record",
        ("sip.example.org", "SRV", "1 2 3 sip.example.org"): "An SRV record's name is _service._protocol.name",
        ("www.example.org", "SSHFP", "1 2 abcd"): "is not a valid SSHFP record",
        ("www.example.org", "A", "192.0.2.10"): "The A record 192.0.2.10 of www.example.org already exists",
    }
    for (name, rtype, content), expected in cases.items():
        answer = client.post(path, json={"name": name, "type": rtype, "content": content}, headers=h)
        assert expected in error(answer, 409 if "already exists" in expected else 400), (name, rtype)
    ok(client.post(path, json={"name": "alias.example.org", "type": "CNAME", "content": "www.example.org"},
                   headers=h), 201)
    assert "alias.example.org already is a CNAME" in error(client.post(path, json={
        "name": "alias.example.org", "type": "TXT", "content": "x"}, headers=h), 400)
    assert "already has CNAME record(s)" in error(client.post(path, json={
        "name": "alias.example.org", "type": "CNAME", "content": "other.example.org"}, headers=h), 400)
    [alias] = ok(client.get(path, params={"name": "alias.example.org"}, headers=h))["items"]
    ok(client.delete(path + "/{}".format(alias["id"]), headers=h), 204)
    assert "Invalid ttl" in error(client.post(path, json={"name": "t.example.org", "type": "A", "content": "192.0.2.1",
                                                  "ttl": 0}, headers=h), 422)
    assert "Invalid" in error(client.post(path, json={"name": "t.example.org", "type": "A", "content": "192.0.2.1",
                                                      "weight": 1}, headers=h), 422)
    assert rows(client) == before and fake.zones["example.org."] == zone

    for body, expected in (({"name": "org", "nameservers": ["ns1.example.net"]}, "is a top-level domain"),
                           ({"name": "bad name.org", "nameservers": ["ns1.example.net"]}, "is not a valid domain name"),
                           ({"name": "x.example.org", "nameservers": ["ns1.example.net"]},
                            "Domain x.example.org is inside domain example.org"),
                           ({"name": "org2.net", "nameservers": ["bad ns"]}, "is not a valid name server"),
                           ({"name": "example.org", "nameservers": ["ns1.example.net"]}, "already exists")):
        answer = client.post("/v1/domains", json=body, headers=heads["ada"])
        assert expected in error(answer, 409 if "inside" in expected or "already" in expected else 400)
    assert "Invalid nameservers" in error(client.post("/v1/domains", json={"name": "a.net", "nameservers": []},
                                                      headers=heads["ada"]), 422)
    assert ok(client.get("/v1/domains", headers=h))["total"] == 1 and set(fake.zones) == {"example.org."}


def test_powerdns_refusing_or_down_leaves_the_inventory_unchanged(client, heads, fake):
    made = make_domain(client, heads)
    path = "/v1/domains/{}/records".format(made["id"])
    h = heads["alice"]
    www = ok(client.post(path, json={"name": "www.example.org", "type": "A", "content": "192.0.2.10"}, headers=h), 201)
    before = rows(client)
    message = error(client.post(path, json={"name": "t.example.org", "type": "TXT", "content": "refuse-me"},
                                headers=h), 502)
    assert message == "PowerDNS at http://127.0.0.1:1 refused to set records in zone example.org: HTTP 422 (refused)."
    assert rows(client) == before
    fake.down = True
    down = "PowerDNS at http://127.0.0.1:1 did not answer: Connection refused."
    assert error(client.post(path, json={"name": "t.example.org", "type": "A", "content": "192.0.2.1"}, headers=h),
                 502) == down
    assert error(client.patch(path + "/{}".format(www["id"]), json={"ttl": 60}, headers=h), 502) == down
    assert error(client.delete(path + "/{}".format(www["id"]), headers=h), 502) == down
    assert error(client.post("/v1/domains", json={"name": "other.net", "nameservers": ["ns1.other.net"]},
                             headers=heads["ada"]), 502) == down
    assert error(client.delete("/v1/domains/{}".format(made["id"]), headers=heads["ada"]), 502) == down
    assert error(client.get("/v1/domains/{}/check".format(made["id"]), headers=h), 502) == down
    assert rows(client) == before
    assert [d["name"] for d in ok(client.get("/v1/domains", headers=h))["items"]] == ["example.org"]
    # Reads of the inventory alone still answer.
    assert records_of(client, heads, made)["total"] == 1
    fake.down = False
    changes = ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=h))
    assert changes["in_sync"] is True


def test_drift_is_reported_per_rrset(client, heads, fake):
    made = make_domain(client, heads)
    path = "/v1/domains/{}/records".format(made["id"])
    h = heads["alice"]
    for name, rtype, content in (("www.example.org", "A", "192.0.2.10"), ("mail.example.org", "A", "192.0.2.20"),
                                 ("v6.example.org", "AAAA", "2001:db8::1")):
        ok(client.post(path, json={"name": name, "type": rtype, "content": content}, headers=h), 201)
    zone = fake.zones["example.org."]
    zone[("www.example.org.", "A")] = (300, ["192.0.2.99"])  # changed behind the inventory's back
    del zone[("mail.example.org.", "A")]
    zone[("rogue.example.org.", "TXT")] = (300, ['"hi"'])
    zone[("v6.example.org.", "AAAA")] = (300, ["2001:DB8:0::1"])  # the same address, written otherwise
    report = ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=heads["val"]))
    assert report["in_sync"] is False and report["zone_in_powerdns"] is True
    assert [(e["name"], e["type"]) for e in report["missing_from_powerdns"]] == [("mail.example.org", "A")]
    assert [(e["name"], e["type"], e["powerdns"]) for e in report["missing_from_inventory"]] == [
        ("rogue.example.org", "TXT", {"ttl": 300, "contents": ['"hi"']})]
    assert report["differing"] == [{"name": "www.example.org", "type": "A",
                                    "inventory": {"ttl": 300, "contents": ["192.0.2.10"]},
                                    "powerdns": {"ttl": 300, "contents": ["192.0.2.99"]}}]
    del fake.zones["example.org."]
    report = ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=h))
    assert report["zone_in_powerdns"] is False and len(report["missing_from_powerdns"]) == 4  # NS and 3 records


def test_environment_records_are_listed_and_not_edited_by_hand(client, heads, fake):
    url = client.app.state.url
    fake.ensure_zone("corpus.test")  # as the controller's init_env step makes it
    with db.session(url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        beta = sess.scalar(select(Tenant).where(Tenant.name == "beta"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        a1 = Environment(name="a1", tenant_id=alpha.id, node_id=node.id, status="active")
        b1 = Environment(name="b1", tenant_id=beta.id, node_id=node.id, status="active")
        sess.add_all([a1, b1])
        sess.flush()
        for env in (a1, b1):
            for name in (env.name + ".corpus.test", "*." + env.name + ".corpus.test"):
                sess.add(DnsRecord(zone="corpus.test.", name=name, type="A", content="192.0.2.1", ttl=300,
                                   environment_id=env.id))
                fake.add_records("corpus.test", [{"name": name, "type": "A", "ttl": 300, "contents": ["192.0.2.1"]}])
    # A zone PowerDNS serves already is the controller operators' to take over, nobody else's.
    assert error(client.post("/v1/domains", json={"name": "corpus.test", "nameservers": ["ns1.example.net"]},
                             headers=heads["bob"]), 409) == (
        "PowerDNS already serves zone corpus.test; only an admin of tenant default may take it over.")
    users.add_local_user(url, "ada", "ada-pw", "default", "admin")
    made = make_domain(client, heads, "corpus.test", who="ada")
    assert made["taken_over"] is True and made["records"] == 4 and made["tenant"] == "alpha"
    listed = records_of(client, heads, made)["items"]
    assert {(r["name"], r["managed_by"], r["environment"]) for r in listed} == {
        ("a1.corpus.test", "environment", "a1"), ("*.a1.corpus.test", "environment", "a1"),
        ("b1.corpus.test", "environment", None), ("*.b1.corpus.test", "environment", None)}
    path = "/v1/domains/{}/records".format(made["id"])
    h = heads["alice"]
    env_record = listed[0]
    assert "made by the controller for an environment" in error(client.delete(
        path + "/{}".format(env_record["id"]), headers=h), 409)
    assert "made by the controller" in error(client.patch(path + "/{}".format(env_record["id"]),
                                                          json={"ttl": 5}, headers=h), 409)
    for name, owner in (("a1.corpus.test", "environment a1"), ("www.a1.corpus.test", "environment a1"),
                        ("x.b1.corpus.test", "an environment")):
        message = error(client.post(path, json={"name": name, "type": "TXT", "content": "x"}, headers=h), 409)
        assert message == "{} is a name of {}: its records are made and removed with it.".format(name, owner)
    ok(client.post(path, json={"name": "www.corpus.test", "type": "A", "content": "192.0.2.7"}, headers=h), 201)
    assert ok(client.get("/v1/domains/{}/check".format(made["id"]), headers=h))["in_sync"] is True
    assert "holds the records of 2 environment(s) (a1, b1)" in error(
        client.delete("/v1/domains/{}".format(made["id"]), headers=heads["ada"]), 409)


def test_tenants_and_roles(client, heads, fake):
    made = make_domain(client, heads)
    other = make_domain(client, heads, "beta.net", who="bob")
    assert other["tenant"] == "beta"
    path = "/v1/domains/{}".format(made["id"])
    www = ok(client.post(path + "/records", json={"name": "www.example.org", "type": "A", "content": "192.0.2.1"},
                         headers=heads["alice"]), 201)
    record = "{}/records/{}".format(path, www["id"])
    # Bob (beta) sees no alpha domain: every route is 404 and the list leaves it out.
    assert [d["name"] for d in ok(client.get("/v1/domains", headers=heads["bob"]))["items"]] == ["beta.net"]
    assert ok(client.get("/v1/domains", params={"tenant": "alpha"}, headers=heads["bob"]))["total"] == 0
    for method, route, body in (("GET", path, None), ("PATCH", path, {"nameservers": ["ns.x.net"]}),
                                ("DELETE", path, None), ("GET", path + "/check", None),
                                ("GET", path + "/changes", None),
                                ("GET", path + "/records", None), ("GET", record, None),
                                ("POST", path + "/records", {"name": "b.example.org", "type": "A",
                                                             "content": "192.0.2.2"}),
                                ("PATCH", record, {"ttl": 5}), ("DELETE", record, None)):
        answer = client.request(method, route, json=body, headers=heads["bob"])
        assert error(answer, 404) == "No domain {}.".format(made["id"]), (method, route)
    # A record of another domain is not found through this one.
    assert "No record" in error(client.get("/v1/domains/{}/records/{}".format(other["id"], www["id"]),
                                           headers=heads["bob"]), 404)
    # Viewers read; deployers change records; admins alone make, change and delete domains.
    assert ok(client.get(record, headers=heads["val"]))["content"] == "192.0.2.1"
    assert "deployer is needed" in error(client.delete(record, headers=heads["val"]), 403)
    assert "admin is needed" in error(client.delete(path, headers=heads["alice"]), 403)
    assert "admin is needed" in error(client.patch(path, json={"nameservers": ["ns.x.net"]},
                                                   headers=heads["alice"]), 403)
    assert "admin of no tenant" in error(client.post("/v1/domains", json={
        "name": "new.net", "nameservers": ["ns.x.net"]}, headers=heads["alice"]), 403)
    assert "No tenant named alpha" in error(client.post("/v1/domains", json={
        "name": "new.net", "nameservers": ["ns.x.net"], "tenant": "alpha"}, headers=heads["bob"]), 404)
    assert error(client.get("/v1/domains"), 401)
    # Domain names are one namespace (PowerDNS has one zone per name).
    assert "already exists" in error(client.post("/v1/domains", json={
        "name": "example.org", "nameservers": ["ns.x.net"]}, headers=heads["bob"]), 409)
    changes = ok(client.get("/v1/audit", params={"limit": 500}, headers=heads["ada"]))
    assert any(entry["target"] == "www.example.org A" for entry in changes["items"])


def test_an_environment_is_not_made_over_hand_made_records(client, heads, fake):
    """The controller's step refuses an environment whose names hold hand-made records, before
    it changes anything (its rrsets would replace them in PowerDNS)."""
    import types

    from mc_project.controller.steps import dns as dns_step

    users.add_local_user(client.app.state.url, "ada", "ada-pw", "default", "admin")
    fake.ensure_zone("corpus.test")
    made = make_domain(client, heads, "corpus.test")
    ok(client.post("/v1/domains/{}/records".format(made["id"]), json={
        "name": "www.web_1.corpus.test", "type": "TXT", "content": "mine"}, headers=heads["alice"]), 201)
    settings = {"dns": {"api_url": "http://127.0.0.1:1", "api_key": "k", "zone": "corpus.test.", "ttl": 300}}
    ctl = types.SimpleNamespace(settings=settings, url=client.app.state.url)
    for domain, refused in (("web_1.corpus.test", True), ("web-1.corpus.test", False)):
        ctx = types.SimpleNamespace(clipboard={"node": {"address": "192.0.2.1"}, "env_name": "web1",
                                               "domain": domain}, undo_data={}, log=lambda text: None)
        if refused:
            with pytest.raises(CorpusError) as info:
                dns_step.add_dns_records(ctl, ctx)
            assert str(info.value) == ("www.web_1.corpus.test already holds a TXT record made by hand (corpus dns); "
                                       "remove it or choose another name.")
        else:  # '_' is no LIKE wildcard here: the next step is PowerDNS, which is not there
            with pytest.raises(PowerDnsError, match="did not answer"):
                dns_step.add_dns_records(ctl, ctx)
