"""The site plans' REST routes in process over an SQLite inventory, PowerDNS replaced by an
in-memory fake: a plan of two domains and a check is stored and applied as one job; a
changed blueprint gives ``~``; a plan made before the inventory changed, or applied twice,
is a 409 in one sentence; a bad blueprint is a 400 naming its place; the site's status
shows drift; ``DELETE /v1/sites/{site}`` removes what the site owns and nothing else; a
check and a project's pillar are made, changed, and taken back by an undo of the job."""

import time

import pytest
from sqlalchemy import select

from mc_project.controller.pdns import absolute
from mc_project.health import definitions
from mc_project.inventory import db, domains
from mc_project.inventory.health_models import Check
from mc_project.inventory.models import DnsRecord, Domain, Environment, Pillar, Project, Tenant
from mc_project.inventory.site_models import SiteObject
from support.api_answers import error, login, ok

SITE = """
site: shop
domains:
  - name: shop.example
    nameservers: [ns1.example.net]
    records:
      - {name: www, type: A, content: 192.0.2.10}
      - {name: "@", type: TXT, content: "v=spf1 -all"}
  - name: shop-static.example
    nameservers: [ns1.example.net]
    records:
      - {name: cdn, type: CNAME, content: www.shop.example.}
"""


class FakePowerDns:
    def __init__(self):
        self.zones = {}

    def zone_exists(self, zone):
        return absolute(zone) in self.zones

    def ensure_zone(self, zone, nameservers=None):
        self.zones.setdefault(absolute(zone), {})

    def set_nameservers(self, zone, nameservers, ttl=300):
        self.zones[absolute(zone)][(absolute(zone), "NS")] = sorted(nameservers)

    def add_records(self, zone, records):
        for record in records:
            self.zones[absolute(zone)][(absolute(record["name"]), record["type"])] = list(record["contents"])

    def remove_records(self, zone, names_types):
        for name, rtype in names_types:
            self.zones.get(absolute(zone), {}).pop((absolute(name), rtype), None)

    def delete_zone(self, zone):
        self.zones.pop(absolute(zone), None)


@pytest.fixture
def fake():
    return FakePowerDns()


@pytest.fixture
def client(api_client, fake, monkeypatch):
    monkeypatch.setattr(domains, "powerdns", lambda settings: fake)
    return api_client({"ada": ("alpha", "admin"), "val": ("alpha", "viewer"), "bob": ("beta", "admin")})


@pytest.fixture
def heads(client):
    return {user: login(client, user) for user in ("ada", "val", "bob")}


def plan(client, head, blueprint=SITE, status=201):
    return ok(client.post("/v1/plans", json={"blueprint": blueprint}, headers=head), status)


def wait_job(client, head, job_id):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = ok(client.get("/v1/jobs/{}".format(job_id), headers=head))
        if state["status"] not in ("pending", "running"):
            return state
        time.sleep(0.1)
    raise AssertionError("job {} did not end".format(job_id))


def apply(client, head, plan_id):
    answer = ok(client.post("/v1/plans/{}/apply".format(plan_id), headers=head), 202)
    return wait_job(client, head, answer["job_id"])


def records(client):
    with db.session(client.app.state.url) as sess:
        return sorted((row.name, row.type, row.content) for row in sess.scalars(select(DnsRecord)))


def test_plan_apply_change_and_destroy_a_site(client, heads, fake):
    h = heads["ada"]
    made = plan(client, h)
    assert [(a["op"], a["kind"], a["name"]) for a in made["actions"]] == [
        ("+", "domain", "shop.example"), ("+", "domain", "shop-static.example")]
    assert made["message"] == "Plan: 2 to add, 0 to change, 0 to destroy."
    assert ok(client.get("/v1/plans/{}".format(made["id"]), headers=heads["val"]))["actions"] == made["actions"]
    state = apply(client, h, made["id"])
    assert state["status"] == "success", state
    steps = ok(client.get("/v1/jobs/{}/steps".format(state["id"]), headers=h))["items"]
    assert [step["name"] for step in steps] == ["site:create_domain", "site:create_domain"]
    assert fake.zones["shop.example."][("www.shop.example.", "A")] == ["192.0.2.10"]
    assert ("cdn.shop-static.example", "CNAME", "www.shop.example.") in records(client)
    # Applied once only.
    assert "applied already" in error(client.post("/v1/plans/{}/apply".format(made["id"]), headers=h), 409)
    # Nothing to do now.
    again = plan(client, h)
    assert again["actions"] == [] and again["message"].startswith("No changes")
    # A changed record is a change in place.
    changed = plan(client, h, SITE.replace("192.0.2.10", "192.0.2.20"))
    assert [(a["op"], a["name"], sorted(a["changes"])) for a in changed["actions"]] == [
        ("~", "shop.example", ["records"])]
    assert changed["message"] == "Plan: 0 to add, 1 to change, 0 to destroy."
    # The inventory changes after the plan: applying it is refused, nothing changed.
    with db.session(client.app.state.url) as sess:
        row = sess.scalar(select(DnsRecord).where(DnsRecord.name == "www.shop.example"))
        row.ttl = 60
    assert "changed since plan" in error(client.post("/v1/plans/{}/apply".format(changed["id"]), headers=h), 409)
    assert fake.zones["shop.example."][("www.shop.example.", "A")] == ["192.0.2.10"]
    # The status shows that drift; a new plan fixes it with the new address.
    status = ok(client.get("/v1/sites/shop/status", headers=heads["val"]))
    assert status["drifted"] and [a["name"] for a in status["drift"]] == ["shop.example"]
    fixed = plan(client, h, SITE.replace("192.0.2.10", "192.0.2.20"))
    assert apply(client, h, fixed["id"])["status"] == "success"
    assert fake.zones["shop.example."][("www.shop.example.", "A")] == ["192.0.2.20"]
    assert not ok(client.get("/v1/sites/shop/status", headers=h))["drifted"]
    # Removing a domain from the blueprint destroys it.
    smaller = plan(client, h, SITE.split("  - name: shop-static.example")[0].replace("192.0.2.10", "192.0.2.20"))
    assert [(a["op"], a["name"]) for a in smaller["actions"]] == [("-", "shop-static.example")]
    assert smaller["message"] == "Plan: 0 to add, 0 to change, 1 to destroy."
    # Another tenant sees no site; a viewer may not apply.
    error(client.get("/v1/sites/shop/status", headers=heads["bob"]), 404)
    error(client.post("/v1/plans/{}/apply".format(smaller["id"]), headers=heads["val"]), 403)
    # Destroying the site removes its domains, and only those.
    with db.session(client.app.state.url) as sess:
        sess.add(Domain(tenant_id=1, name="other.example", nameservers=["ns1.example.net"]))
    answer = ok(client.delete("/v1/sites/shop", headers=h), 202)
    assert wait_job(client, h, answer["job_id"])["status"] == "success"
    with db.session(client.app.state.url) as sess:
        assert sess.scalars(select(Domain.name)).all() == ["other.example"]
    assert "shop.example." not in fake.zones
    error(client.get("/v1/sites/shop/status", headers=h), 404)


def test_a_bad_blueprint_is_one_sentence_per_mistake_naming_its_place(client, heads):
    message = error(client.post("/v1/plans", json={"blueprint": "site: shop\nenvironments:\n  - name: Web\n"
                                                                "    type: test\n"}, headers=heads["ada"]), 400)
    assert "environments[0].name:" in message and "environments[0].type: 'test' is not one of" in message
    assert "not valid YAML at line" in error(client.post("/v1/plans", json={"blueprint": "site: [shop"},
                                                         headers=heads["ada"]), 400)
    error(client.post("/v1/plans", json={"site": "shop", "destroy": True}, headers=heads["ada"]), 404)
    error(client.post("/v1/plans/999/apply", headers=heads["ada"]), 404)


def test_an_object_of_another_owner_is_refused(client, heads):
    with db.session(client.app.state.url) as sess:
        sess.add(Domain(tenant_id=1, name="shop.example", nameservers=["ns1.example.net"]))
    message = error(client.post("/v1/plans", json={"blueprint": SITE}, headers=heads["ada"]), 409)
    assert message.startswith("The domain shop.example exists and is not site shop's")


CHECKED = """
site: shop
environments:
  - {name: web, type: dev, projects: [{name: web, pillar: {workers: 2}}]}
checks:
  - {name: web-ssh, kind: tcp, host: web, params: {port: 22}}
"""


def test_checks_are_made_changed_and_undone_with_the_job(client, heads):
    h = heads["ada"]
    with db.session(client.app.state.url) as sess:
        alpha = sess.scalar(select(Tenant.id).where(Tenant.name == "alpha"))
        env = Environment(name="web", env_type="dev", status="active", minion_id="web.corpus.test", tenant_id=alpha,
                          project="web")
        env.projects = [Project(name="web")]
        sess.add(env)
        sess.add(Pillar(minion_id="web.corpus.test", data={"makina-projects": {"web": {"env": "dev"}}}))
        sess.add(SiteObject(site="shop", tenant_id=alpha, kind="environment", name="web", spec={}))
    made = plan(client, h, CHECKED)
    # The environment's pillar lacks the blueprint's: a change in place; the check is new.
    assert [(a["op"], a["kind"], a["name"]) for a in made["actions"]] == [
        ("~", "environment", "web"), ("+", "check", "web-ssh")]
    assert made["actions"][0]["changes"] == {"pillar:web": [{}, {"workers": 2}]}
    state = apply(client, h, made["id"])
    assert state["status"] == "success", state
    with db.session(client.app.state.url) as sess:
        check = sess.scalar(select(Check).where(Check.name == "web-ssh"))
        assert definitions.check_record(sess, check)["host"] == "web" and check.params["port"] == 22
        data = sess.scalar(select(Pillar.data).where(Pillar.minion_id == "web.corpus.test"))
        assert data["makina-projects"]["web"] == {"env": "dev", "workers": 2}
    changed = plan(client, h, CHECKED.replace("port: 22", "port: 2222"))
    assert [(a["op"], a["name"], list(a["changes"])) for a in changed["actions"]] == [("~", "web-ssh", ["params"])]
    assert apply(client, h, changed["id"])["status"] == "success"
    # Undoing the first apply's job removes the check and takes the pillar back.
    undone = ok(client.post("/v1/jobs/{}/undo".format(state["id"]), headers=h), 202)
    assert wait_job(client, h, undone["job_id"])["status"] == "undone"
    with db.session(client.app.state.url) as sess:
        assert sess.scalar(select(Check).where(Check.name == "web-ssh")) is None
        data = sess.scalar(select(Pillar.data).where(Pillar.minion_id == "web.corpus.test"))
        assert data["makina-projects"]["web"] == {"env": "dev"}
