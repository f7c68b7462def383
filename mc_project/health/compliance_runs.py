"""A compliance run, as a controller job: its one step (``compliance:run``) compiles each
host's rules (``compliance_rules``) and applies them through Salt's ``state.high`` on the
host's minion -- with ``test=True`` for the rules audited, without for those enforced, the
same states either way -- and reads Salt's answer into one result per host and rule:

* ``passed``: nothing to change; ``drifted``: an audit found what differs (nothing changed);
  ``fixed``: an enforce changed it; ``failed``: a state failed, or the host did not answer;
* ``waived``: a drift a waiver in force covers. A waived rule is audited even in an enforce
  run: the drift it accepts is not taken back behind its reason.

Each rule's result on a host is a host event (``host_report``: passed ``ok``, drifted and
fixed ``changed``, failed ``failed``, waived ``skipped``), so the CLI shows it as it comes.
A rule newly drifted on a host tells the handlers routed to the host's groups
(``handlers.plan``; the silences on the host or its groups hold them back).
"""

import json
import logging
import types

from sqlalchemy import select

from mc_project.controller import host_report, salt_state_events
from mc_project.errors import CorpusError
from mc_project.health import compliance_rules, compliance_store, handlers, scope
from mc_project.inventory import db
from mc_project.inventory.compliance_models import (
    RUN_MODES,
    ComplianceResult,
    ComplianceRule,
    ComplianceRun,
    ComplianceWaiver,
)
from mc_project.inventory.fleet_rules import NotFound
from mc_project.inventory.health_models import Handler
from mc_project.inventory.models import utcnow

log = logging.getLogger(__name__)

KIND = "compliance"
PLAN = ("compliance:run",)
# Seconds before Salt asks the minions that have not answered whether they still run the states.
ANSWER_WAIT = 30
MAX_CHANGES = 2000
EVENT_STATUS = {"passed": "ok", "drifted": "changed", "fixed": "changed", "failed": "failed", "waived": "skipped"}
HOST_KEYS = ("id", "name", "minion_id", "tenant_id")
KEPT_RESULTS = 5000


def rules_of(sess, tenant_id, name=None):
    """The rules of ``tenant_id`` (only the one named ``name``, if given), by name."""
    where = [ComplianceRule.tenant_id == tenant_id]
    if name is not None:
        where.append(ComplianceRule.name == name)
    found = sess.scalars(select(ComplianceRule).where(*where).order_by(ComplianceRule.name)).all()
    if name is not None and not found:
        raise NotFound("No compliance rule named {}.".format(name))
    return found


def request(ctl, tenant_id, rule=None, mode=None, who=None):
    """The clipboard of a run, or one sentence refusing it (no job is made)."""
    mode = mode or "rules"
    if mode not in RUN_MODES:
        raise CorpusError("A run's mode is rules (each rule's own), audit or enforce; not {!r}.".format(mode))
    with db.session(ctl.url) as sess:
        if not rules_of(sess, tenant_id, rule):
            raise CorpusError("No compliance rule is defined: add one first (corpus compliance rules add).")
    return {"tenant_id": tenant_id, "rule": rule, "mode": mode, "who": who}


def run(ctl, clipboard, progress=None):
    """Run the run ``request`` checked, as a job here; its result."""
    from mc_project.controller import operations  # operations imports the steps, this among them

    result, _state = operations._run(ctl, KIND, clipboard["rule"] or "all rules", PLAN, clipboard, progress)
    return result


# --------------------------------------------------------------------------- the plan of a run

def plan(sess, tenant_id, rule_name, run_mode, now):
    """``[{"host", "rules": {name: {rule_id, mode, waiver_id, impact}}, "calls": [(test, high)],
    "clashes": {name: sentence}}]``: what to apply on each host of the run's rules."""
    rules = rules_of(sess, tenant_id, rule_name)
    waivers = sess.scalars(select(ComplianceWaiver).where(ComplianceWaiver.tenant_id == tenant_id,
                                                          ComplianceWaiver.until > now)).all()
    hosts = {}
    for rule in rules:
        for host in scope.hosts_of(sess, rule):
            entry = hosts.setdefault(host["id"], {"host": {key: host[key] for key in HOST_KEYS}, "rules": []})
            entry["rules"].append(rule)
    plans = []
    host_groups = compliance_store.HostGroups(sess)
    for entry in sorted(hosts.values(), key=lambda item: item["host"]["name"]):
        groups = host_groups(entry["host"]["id"], tenant_id) if waivers else set()
        applied, by_mode = {}, {"audit": [], "enforce": []}
        for rule in entry["rules"]:
            mode = rule.mode if run_mode == "rules" else run_mode
            waiver = compliance_rules.waiver_for(waivers, rule.id, entry["host"]["id"], groups, now)
            if waiver is not None:
                mode = "audit"
            applied[rule.name] = {"rule_id": rule.id, "mode": mode, "impact": rule.impact,
                                  "waiver_id": waiver.id if waiver is not None else None}
            by_mode[mode].append((rule.name, rule.kind, rule.params))
        calls, clashes = [], {}
        for mode in ("audit", "enforce"):
            if by_mode[mode]:
                high, clashed = compliance_rules.compile_host(by_mode[mode])
                clashes.update(clashed)
                if high:
                    calls.append((mode == "audit", high))
        plans.append({"host": entry["host"], "rules": applied, "calls": calls, "clashes": clashes})
    return plans


# --------------------------------------------------------------------------- Salt's answer

def _changes(changes):
    """What a state changed (or would), as kept: a file's diff is not (it may hold what only
    its host should see, as ``salt_state_events`` says), and the rest is cut at ``MAX_CHANGES``."""
    if isinstance(changes, dict) and "diff" in changes:
        changes = dict(changes, diff="(a diff, not kept)")
    text = json.dumps(changes, sort_keys=True, default=str)
    return changes if len(text) <= MAX_CHANGES else text[:MAX_CHANGES - 3] + "..."


def classify(mode, items):
    """``(status, detail)`` of one rule on one host from its states' results (``[(key, item)]``)."""
    if not items:
        return "failed", [{"state": None, "comment": "Salt returned no result for the rule's states.",
                           "changes": {}}]
    detail = [{"state": salt_state_events._task(key, item), "comment": item.get("comment"),
               "changes": _changes(item.get("changes") or {})}
              for key, item in items if item.get("result") is not True or item.get("changes")]
    statuses = {salt_state_events.state_status(item) for _key, item in items}
    if "failed" in statuses:
        return "failed", detail
    if "changed" in statuses:
        return ("drifted" if mode == "audit" else "fixed"), detail
    return "passed", detail


def outcomes(ret, rules):
    """``{rule name: (status, detail)}`` of one minion's ``state.high`` answer for ``rules``
    (``{name: {"mode", ...}}``)."""
    if not (isinstance(ret, dict) and ret and all(isinstance(item, dict) for item in ret.values())):
        if isinstance(ret, (list, tuple)):
            why = "; ".join(str(line) for line in ret) or "the state run failed"
        else:
            why = str(ret) if ret not in (None, "", {}) else "the state run returned nothing"
        return {name: ("failed", [{"state": None, "comment": why, "changes": {}}]) for name in rules}
    by_rule = {name: [] for name in rules}
    for key, item in sorted(ret.items(), key=lambda pair: pair[1].get("__run_num__", 0)):
        name = compliance_rules.rule_of(key, item)
        if name in by_rule:
            by_rule[name].append((key, item))
    return {name: classify(rules[name]["mode"], by_rule[name]) for name in rules}


def _failed(rules, why):
    return {name: ("failed", [{"state": None, "comment": why, "changes": {}}]) for name in rules}


# --------------------------------------------------------------------------- the step

def _apply(ctl, plans, on_answer):
    """Publish each distinct (test, highstate) once to the minions that need it; call
    ``on_answer(host name, test, ret or None)`` as each answers (None: it did not)."""
    publications = {}
    for entry in plans:
        if not entry["host"]["minion_id"]:
            continue
        for test, high in entry["calls"]:
            key = (test, json.dumps(high, sort_keys=True, default=str))
            publications.setdefault(key, (test, high, {}))[2][entry["host"]["minion_id"]] = entry["host"]["name"]
    for test, high, minions in publications.values():
        answered = set()
        for minion, answer in ctl.answers_as_they_come(sorted(minions), "state.high", timeout=ANSWER_WAIT,
                                                       data=high, test=test):
            if minion not in minions or minion in answered:
                continue
            if isinstance(answer, dict) and answer.get("failed") and "ret" not in answer:
                continue
            answered.add(minion)
            on_answer(minions[minion], test, answer.get("ret") if isinstance(answer, dict) else answer)
        for minion in sorted(set(minions) - answered):
            on_answer(minions[minion], test, None)


def run_step(ctl, ctx):
    clip = ctx.clipboard
    now = utcnow()
    with db.session(ctl.url) as sess:
        plans = plan(sess, clip["tenant_id"], clip.get("rule"), clip.get("mode") or "rules", now)
        record = ComplianceRun(tenant_id=clip["tenant_id"], job_id=ctx.job_id, rule_name=clip.get("rule"),
                               mode=clip.get("mode") or "rules", who=clip.get("who"), started=now)
        sess.add(record)
        sess.flush()
        clip["run_id"] = record.id
    report = host_report.HostReport(ctl, ctx, [entry["host"]["name"] for entry in plans])
    found = {entry["host"]["name"]: {} for entry in plans}
    by_name = {entry["host"]["name"]: entry for entry in plans}

    def settle(host_name, rules):
        entry = by_name[host_name]
        for name, (status, detail) in sorted(rules.items()):
            if status == "drifted" and entry["rules"][name]["waiver_id"] is not None:
                status = "waived"
            found[host_name][name] = (status, detail)
            why = next((item["comment"] for item in detail if item.get("comment")), None)
            report.event(host_name, EVENT_STATUS[status], "rule {}".format(name),
                         "{}{}".format(status, ": " + str(why) if why and status != "passed" else ""))

    for entry in plans:
        name = entry["host"]["name"]
        if entry["clashes"]:
            settle(name, {rule: ("failed", [{"state": None, "comment": why, "changes": {}}])
                          for rule, why in entry["clashes"].items()})
        if not entry["host"]["minion_id"]:
            settle(name, _failed([rule for rule in entry["rules"] if rule not in entry["clashes"]],
                                 "The host has no minion."))

    def on_answer(host_name, test, ret):
        entry = by_name[host_name]
        rules = {name: info for name, info in entry["rules"].items()
                 if (info["mode"] == "audit") == test and name not in entry["clashes"]}
        if ret is None:
            settle(host_name, _failed(rules, "The host's minion did not answer."))
        else:
            report.answered(host_name)
            settle(host_name, outcomes(ret, rules))

    _apply(ctl, plans, on_answer)
    deliveries = record_results(ctl.url, clip["run_id"], plans, found)
    handlers.dispatch(ctl.url, deliveries, ctl.settings["smtp"])
    results = [{"host": host, "rule": rule, "status": status, "mode": by_name[host]["rules"][rule]["mode"],
                "impact": by_name[host]["rules"][rule]["impact"]}
               for host, rules in sorted(found.items()) for rule, (status, _detail) in sorted(rules.items())]
    # The job's record keeps the first ones; all of them are in the history (?run=).
    clip["results"] = results[:KEPT_RESULTS]
    clip["totals"] = _totals(results)
    if not plans:
        ctx.log("No host is in the scope of the rules run.")
    report.finish("compliance {}".format(clip.get("mode") or "rules"))


def _totals(results):
    totals = {}
    for result in results:
        totals[result["status"]] = totals.get(result["status"], 0) + 1
    return totals


def record_results(url, run_id, plans, found, now=None):
    """Write the results of run ``run_id``; the deliveries of the rules newly drifted."""
    now = now or utcnow()
    deliveries = []
    with db.session(url) as sess:
        run_row = sess.get(ComplianceRun, run_id)
        rule_ids = {info["rule_id"] for entry in plans for info in entry["rules"].values()}
        host_ids = {entry["host"]["id"] for entry in plans}
        before = {(result.rule_id, result.host_id): result.status for result in compliance_store.newest(
            sess, ComplianceResult.rule_id.in_(rule_ids), ComplianceResult.host_id.in_(host_ids))} if plans else {}
        told = sess.scalar(select(Handler.id).where(Handler.tenant_id == run_row.tenant_id).limit(1)) is not None
        totals, rows, drifts = {}, [], []
        for entry in plans:
            host = entry["host"]
            for name, (status, detail) in sorted(found.get(host["name"], {}).items()):
                info = entry["rules"][name]
                rows.append(ComplianceResult(run_id=run_id, tenant_id=run_row.tenant_id, rule_id=info["rule_id"],
                                             host_id=host["id"], waiver_id=info["waiver_id"] if status == "waived"
                                             else None, rule_name=name, host_name=host["name"], mode=info["mode"],
                                             status=status, detail=detail, at=now))
                totals[status] = totals.get(status, 0) + 1
                previous = before.get((info["rule_id"], host["id"]))
                if status == "drifted" and previous != "drifted" and told:
                    drifts.append((info["rule_id"], host, previous or "new", detail))
        sess.add_all(rows)
        for rule_id, host, previous, detail in drifts:
            deliveries += notify(sess, sess.get(ComplianceRule, rule_id), host, previous, detail, now)
        run_row.totals = totals
        run_row.ended = utcnow()
    return deliveries


def notify(sess, rule, host, previous, detail, now):
    """The deliveries telling the handlers of ``host``'s groups that ``rule`` drifted there.

    ``handlers.plan`` is the checks' own: the rule stands for the check (a silence on a
    check covers none of it), and no check state row is behind it."""
    subject = types.SimpleNamespace(tenant_id=rule.tenant_id, id=None,
                                    name=(compliance_rules.SLS_PREFIX + rule.name)[:128])
    what = "; ".join("{}: {}".format(item["state"], item["comment"]) for item in detail if item.get("state"))
    row = types.SimpleNamespace(id=None, notified=None, output="compliance rule {} (impact {}) drifted. {}".format(
        rule.name, rule.impact, what).strip())
    return handlers.plan(sess, row, subject, host, previous, "drifted", now=now)


def report(state):
    """What a run's job shows as its result: its run, the summary per host, each host's
    result per rule and the totals; None while it has none."""
    clip = state.get("clipboard") or {}
    if "results" not in clip:
        return None
    return {"run": clip.get("run_id"), "mode": clip.get("mode"), "rule": clip.get("rule"),
            "dry_run": clip.get("mode") == "audit",
            "hosts": clip.get("summary"), "results": clip["results"], "totals": clip.get("totals")}


STEPS = {"compliance:run": (run_step, None)}
