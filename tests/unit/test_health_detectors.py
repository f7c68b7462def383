"""Detectors: rules checked in one sentence each, evaluated over a host's facts, served
in the pillar with their schedule, and their groups written to the inventory as
detected memberships (label ``detected:<group>``) that show in the Ansible export and
as a Salt list target, without touching memberships an operator made."""

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.health import detect_events, detector_runs, detectors
from mc_project.inventory import ansible_export, db, detected_groups, fleet, host_rows
from mc_project.inventory.models import Tenant

RULES = [{"name": "webserver", "apply_if": "'nginx' in packages or 80 in ports", "add_groups": ["web"]},
         {"name": "database", "apply_if": "5432 in ports", "add_groups": ["db", "backed-up"]},
         {"name": "debian", "apply_if": "grains['os_family'] == 'Debian'", "add_groups": "debian"}]


def facts(packages=(), ports=(), os_family="Debian"):
    return {"grains": {"os_family": os_family}, "packages": dict.fromkeys(packages, "1"), "ports": set(ports),
            "services": set(), "files": set()}


def test_rules_evaluate_to_the_groups_of_a_host():
    rules = detectors.parse_rules(RULES)
    found = detectors.evaluate(rules, facts(packages=["nginx"], ports=[5432]))
    assert found["groups"] == ["backed-up", "db", "debian", "web"]
    assert found["detectors"]["webserver"] == {"matched": True, "groups": ["web"], "error": None}
    found = detectors.evaluate(rules, facts(os_family="RedHat"))
    assert found["groups"] == []


def test_a_rule_that_fails_on_a_host_matches_nothing_and_says_why():
    rules = detectors.parse_rules([{"name": "odd", "apply_if": "grains['os_family'] > 3", "add_groups": ["x"]}]
                                  + RULES[:1])
    found = detectors.evaluate(rules, facts(packages=["nginx"]))
    assert found["groups"] == ["web"]
    assert found["detectors"]["odd"]["matched"] is False and "cannot be evaluated" in found["detectors"]["odd"]["error"]


@pytest.mark.parametrize("rules, words", [
    ("nginx", "must be a list"),
    ([{"name": "a", "apply_if": "grains.os", "add_groups": ["x"]}], "Detector a: apply_if is refused"),
    ([{"name": "a", "apply_if": "open('x')", "add_groups": ["x"]}], "function calls"),
    ([{"name": "a", "apply_if": "1", "add_groups": []}], "Detector a: add_groups must be a non-empty list"),
    ([{"name": "a", "apply_if": "1", "add_groups": ["no spaces"]}], "Group name 'no spaces' is not valid"),
    ([{"name": "a", "apply_if": "1"}], "Detector a has no add_groups"),
    ([{"name": "a", "apply_if": "1", "add_groups": ["x"], "when": 1}], "unknown key when"),
    ([{"name": "a", "apply_if": "1", "add_groups": ["x"]}] * 2, "Detector a is defined twice"),
    ([{"apply_if": "1", "add_groups": ["x"]}], "Detector #1 has no name"),
    ([{"name": "a", "apply_if": "hostname == 'x'", "add_groups": ["x"]}], "which is no fact"),
])
def test_bad_rules_are_one_sentence(rules, words):
    with pytest.raises(CorpusError) as refused:
        detectors.parse_rules(rules)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_the_rules_come_from_the_master_option_or_a_yaml_file(tmp_path):
    path = tmp_path / "detectors.yaml"
    path.write_text("detectors:\n  - name: webserver\n    apply_if: \"80 in ports\"\n    add_groups: [web]\n")
    found = detectors.settings({"corpus_detectors": {"rules_file": str(path), "interval": 60}})
    assert [rule.name for rule in found["rules"]] == ["webserver"] and found["interval"] == 60
    served = detectors.pillar({"corpus_detectors": {"rules": RULES, "interval": 60}})
    assert [rule["name"] for rule in served["corpus_detectors"]["rules"]] == ["webserver", "database", "debian"]
    schedule = served["schedule"]["corpus_detectors"]
    assert schedule["function"] == "mc_health_detect.run" and schedule["seconds"] == 60
    assert "schedule" not in detectors.pillar({"corpus_detectors": {"rules": RULES, "interval": 0}})
    assert detectors.pillar({}) == {}
    path.write_text("detectors: [\n")
    with pytest.raises(CorpusError, match="is not valid YAML at line"):
        detectors.settings({"corpus_detectors": {"rules_file": str(path)}})
    with pytest.raises(CorpusError, match="Unknown setting corpus_detectors:rule;"):
        detectors.settings({"corpus_detectors": {"rule": []}})
    with pytest.raises(CorpusError, match="interval must be a whole number"):
        detectors.settings({"corpus_detectors": {"rules": RULES, "interval": "often"}})


@pytest.fixture
def inventory(ctl):
    """Tenant alpha with machines web1 (minion m-web1) and db1 (minion m-db1) and a group ops."""
    with db.session(ctl.url) as sess:
        tenant = Tenant(name="alpha")
        sess.add(tenant)
        sess.flush()
        fleet.create_group(sess, "ada", tenant.id, "ops")
        fleet.create_host(sess, "ada", tenant.id, {"name": "web1", "minion_id": "m-web1"})
        fleet.create_host(sess, "ada", tenant.id, {"name": "db1", "minion_id": "m-db1", "groups": ["ops"]})
        tenant_id = tenant.id
    yield ctl.url, tenant_id
    db.dispose()


def test_detected_groups_are_memberships_with_their_source_label(inventory):
    url, tenant_id = inventory
    with db.session(url) as sess:
        written = detected_groups.record_for_minion(sess, "m-web1", ["web", "debian"])
        assert written == {"added": ["debian", "web"], "removed": [], "groups": ["debian", "web"], "host": "web1"}
        # db1 is in ops by hand: a detector naming ops neither claims nor later removes it.
        detected_groups.record_for_minion(sess, "m-db1", ["db", "ops"])
    with db.session(url) as sess:
        web1 = fleet.host_record(sess, host_rows.by_minion(sess, "m-web1")["id"])
        assert web1["groups"] == ["debian", "web"] and web1["labels"] == ["detected:debian", "detected:web"]
        export = ansible_export.ansible_inventory(sess, [tenant_id])
        assert "web1" in export["web"]["hosts"] and "db1" in export["db"]["hosts"]
        assert detected_groups.minions_of_group(sess, tenant_id, "web") == ["m-web1"]
        state = {item["host"]: item["groups"] for item in detected_groups.state(sess, [tenant_id])}
        assert state == {"db1": ["db"], "web1": ["debian", "web"]}
    with db.session(url) as sess:
        assert detected_groups.record_for_minion(sess, "m-web1", ["web"])["removed"] == ["debian"]
        assert detected_groups.record_for_minion(sess, "m-db1", [])["removed"] == ["db"]
    with db.session(url) as sess:
        assert host_rows.groups_of(sess, [host_rows.by_minion(sess, "m-db1")["id"]]).popitem()[1] == ["ops"]
        changes = sess.scalars(select(fleet.changelog.ChangeRecord.user)
                               .where(fleet.changelog.ChangeRecord.object_name == "web1")).all()
        assert "detectors" in changes
        assert detected_groups.record_for_minion(sess, "not-a-host", ["web"]) is None


class Answering:
    """A controller whose minions answer ``mc_health_detect.run`` from canned facts."""

    def __init__(self, url, opts, facts_of):
        self.url, self.opts, self.facts_of = url, opts, facts_of
        self.asked = []

    def answers(self, minions, fun, timeout=60, rules=None):
        self.asked.append((tuple(minions), fun))
        parsed = detectors.parse_rules(rules)
        return {minion: {"ret": detectors.evaluate(parsed, self.facts_of[minion]), "retcode": 0}
                for minion in minions if minion in self.facts_of}


def test_a_run_asks_every_minion_at_once_and_writes_what_they_found(inventory):
    url, tenant_id = inventory
    ctl = Answering(url, {"corpus_detectors": {"rules": RULES}}, {"m-web1": facts(packages=["nginx"])})
    results = {item["host"]: item for item in detector_runs.run(ctl, [tenant_id])}
    assert ctl.asked == [(("m-db1", "m-web1"), "mc_health_detect.run")]
    assert results["web1"]["status"] == "done" and results["web1"]["groups"] == ["debian", "web"]
    assert results["db1"]["status"] == "no answer" and "did not answer" in results["db1"]["error"]
    with pytest.raises(CorpusError, match="No host named nope with a minion"):
        detector_runs.run(ctl, [tenant_id], ["nope"])
    with pytest.raises(CorpusError, match="No detectors are configured"):
        detector_runs.run(Answering(url, {}, {}), [tenant_id])


def test_scheduled_results_and_highstates_are_recognised_on_the_bus(inventory):
    url, _tenant_id = inventory
    assert detector_runs.write_event(url, "m-web1", ["web"])["added"] == ["web"]
    assert detector_runs.write_event(url, "m-web1", "web") is None
    assert detector_runs.is_highstate("salt/job/1/ret/m-web1", {"fun": "state.highstate"})
    assert detector_runs.is_highstate("salt/job/1/ret/m-web1", {"fun": "state.apply", "fun_args": []})
    assert not detector_runs.is_highstate("salt/job/1/ret/m-web1", {"fun": "state.apply", "fun_args": ["nginx"]})
    assert not detector_runs.is_highstate("salt/job/1/new", {"fun": "state.highstate"})


def test_a_scheduled_result_counts_only_signed_by_the_minion_it_names(inventory):
    url, _tenant_id = inventory
    keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("m-web1", "m-db1")}
    pems = {name: key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()) for name, key in keys.items()}
    public = {name: key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
              for name, key in keys.items()}
    tag = detect_events.tag("m-web1")
    body = detect_events.sign(pems["m-web1"], tag, ["web"])
    assert detect_events.verify(public["m-web1"], tag, body)
    assert not detect_events.verify(public["m-db1"], tag, body)  # another minion's key
    assert not detect_events.verify(public["m-web1"], detect_events.tag("m-db1"), body)  # another tag
    assert not detect_events.verify(public["m-web1"], tag, dict(body, groups=["web", "db"]))
    old = detect_events.sign(pems["m-web1"], tag, ["web"], now=time.time() - 3600)
    assert not detect_events.verify(public["m-web1"], tag, old)

    class Keys:
        def __init__(self):
            self.url, self.opts = url, {}

        def accepted_key(self, minion):
            return public.get(minion)

    writer = detector_runs.EventWriter(Keys())
    forged = detect_events.sign(pems["m-db1"], detect_events.tag("m-web1"), ["forged"])
    writer._write("m-web1", detect_events.tag("m-web1"), forged)
    writer._write("m-web1", tag, body)
    writer.stop()
    with db.session(url) as sess:
        assert detected_groups.detected_of(sess, [host_rows.by_minion(sess, "m-web1")["id"]]).popitem()[1] == ["web"]
    assert detect_events.minion_of(tag) == "m-web1" and detect_events.minion_of("corpus/other") is None
