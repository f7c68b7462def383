"""Compliance rules and waivers as the API makes them (checked: one sentence for anything
wrong), the records it shows, and the compliance state: the newest result of each rule on
each host, a drift shown ``waived`` while a waiver in force covers it -- and ``drifted``
again the moment that waiver expires."""

from sqlalchemy import func, select

from mc_project.errors import CorpusError
from mc_project.health import compliance_rules, definitions
from mc_project.inventory import fleet, host_rows, resolve
from mc_project.inventory.compliance_models import ComplianceResult, ComplianceRule, ComplianceWaiver
from mc_project.inventory.fleet_models import HostGroup
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.models import utcnow

# Worst first: what needs a look heads the state.
STATUS_ORDER = ("drifted", "failed", "waived", "fixed", "passed")
MAX_DESCRIPTION = 4000


def create_rule(sess, tenant_id, name, kind, group=None, host=None, params=None, mode="audit", impact=0.5,
                description=None):
    compliance_rules.rule_name(name)
    if (group is None) == (host is None):
        raise CorpusError("A rule is on a group or on a host: name one of them.")
    params = compliance_rules.check_params(kind, params if params is not None else {})
    mode = compliance_rules.mode_of(mode)
    impact = compliance_rules.impact_of(impact)
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise CorpusError("A rule's description is at most {} characters.".format(MAX_DESCRIPTION))
    if sess.scalar(select(ComplianceRule.id).where(ComplianceRule.tenant_id == tenant_id,
                                                   ComplianceRule.name == name)) is not None:
        raise Conflict("A compliance rule named {} exists.".format(name))
    group_id, host_id = definitions.where_of(sess, tenant_id, group, host)
    rule = ComplianceRule(tenant_id=tenant_id, name=name, kind=kind, group_id=group_id, host_id=host_id,
                          params=params, mode=mode, impact=impact, description=description)
    sess.add(rule)
    sess.flush()
    return rule


def change_rule(rule, params=None, mode=None, impact=None, description=None):
    """Change what is given of a rule's params, mode, impact, description."""
    if params is not None:
        rule.params = compliance_rules.check_params(rule.kind, params)
    if mode is not None:
        rule.mode = compliance_rules.mode_of(mode)
    if impact is not None:
        rule.impact = compliance_rules.impact_of(impact)
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            raise CorpusError("A rule's description is at most {} characters.".format(MAX_DESCRIPTION))
        rule.description = description
    return rule


def rule_by_name(sess, tenant_id, name):
    found = sess.scalar(select(ComplianceRule).where(ComplianceRule.tenant_id == tenant_id,
                                                     ComplianceRule.name == name))
    if found is None:
        raise NotFound("No compliance rule named {}.".format(name))
    return found


def create_waiver(sess, tenant_id, rule, who, reason, until, host=None, group=None, now=None):
    """A waiver of ``rule`` (its name) on a host or a group, for ``reason``, until ``until``."""
    now = now or utcnow()
    reason = compliance_rules.check_waiver(reason, until, now, host, group)
    found = rule_by_name(sess, tenant_id, rule)
    group_id, host_id = definitions.where_of(sess, tenant_id, group, host)
    waiver = ComplianceWaiver(tenant_id=tenant_id, rule_id=found.id, host_id=host_id, group_id=group_id,
                              reason=reason, who=who, until=compliance_rules.aware(until), created=now)
    sess.add(waiver)
    sess.flush()
    return waiver


def _place(sess, thing):
    names = {}
    if thing.group_id:
        names["group"] = sess.get(HostGroup, thing.group_id).name
    if thing.host_id:
        host = host_rows.one(sess, thing.host_id)
        names["host"] = host["name"] if host else None
    return names


def rule_record(sess, rule):
    place = _place(sess, rule)
    return {"id": rule.id, "name": rule.name, "kind": rule.kind, "tenant": fleet.tenant_name(sess, rule.tenant_id),
            "group": place.get("group"), "host": place.get("host"), "params": rule.params, "mode": rule.mode,
            "impact": rule.impact, "description": rule.description, "created": rule.created}


def waiver_record(sess, waiver, now=None):
    place = _place(sess, waiver)
    rule = sess.get(ComplianceRule, waiver.rule_id)
    return {"id": waiver.id, "rule": rule.name if rule else None, "tenant": fleet.tenant_name(sess, waiver.tenant_id),
            "host": place.get("host"), "group": place.get("group"), "reason": waiver.reason, "who": waiver.who,
            "until": waiver.until, "in_force": compliance_rules.in_force(waiver, now or utcnow()),
            "created": waiver.created}


def result_record(result, status=None, waiver=None):
    return {"id": result.id, "run": result.run_id, "rule": result.rule_name, "host": result.host_name,
            "mode": result.mode, "status": status or result.status, "recorded": result.status, "at": result.at,
            "detail": result.detail,
            "waiver": {"id": waiver.id, "reason": waiver.reason, "who": waiver.who, "until": waiver.until}
            if waiver is not None else None}


class HostGroups:
    """The groups each host is in, directly or not, reading each tenant's group tree once
    (``scope.host_groups`` reads it for every host)."""

    def __init__(self, sess):
        self.sess = sess
        self.trees = {}
        self.found = {}

    def __call__(self, host_id, tenant_id):
        if host_id not in self.found:
            if tenant_id not in self.trees:
                self.trees[tenant_id] = resolve.GroupTree.load(self.sess, tenant_id)
            self.found[host_id] = self.trees[tenant_id].with_ancestors(resolve.direct_groups(self.sess, host_id))
        return self.found[host_id]


def newest(sess, *where):
    """The newest result of each rule on each host among the results ``where`` selects."""
    ids = select(func.max(ComplianceResult.id)).where(*where).group_by(ComplianceResult.rule_id,
                                                                        ComplianceResult.host_id)
    return sess.scalars(select(ComplianceResult).where(ComplianceResult.id.in_(ids))).all()


def state(sess, tenant_ids, rule=None, host=None, status=None, now=None):
    """The newest result of each rule on each host of ``tenant_ids`` (filters: rule and host
    names, status), each drift ``waived`` or ``drifted`` as the waivers in force *now* say;
    worst first, then by rule and host."""
    now = now or utcnow()
    where = [ComplianceResult.tenant_id.in_(list(tenant_ids)), ComplianceResult.rule_id.is_not(None),
             ComplianceResult.host_id.is_not(None)]
    if rule is not None:
        where.append(ComplianceResult.rule_name == rule)
    if host is not None:
        where.append(ComplianceResult.host_name == host)
    results = newest(sess, *where)
    waivers = sess.scalars(select(ComplianceWaiver).where(ComplianceWaiver.tenant_id.in_(list(tenant_ids)),
                                                          ComplianceWaiver.until > now)).all()
    groups = HostGroups(sess)
    records = []
    for result in results:
        shown, waiver = result.status, None
        if result.status in ("drifted", "waived"):
            host_groups = groups(result.host_id, result.tenant_id) if waivers else set()
            waiver = compliance_rules.waiver_for(waivers, result.rule_id, result.host_id, host_groups, now)
            shown = "waived" if waiver is not None else "drifted"
        if status is None or shown == status:
            records.append(result_record(result, shown, waiver))
    records.sort(key=lambda item: (STATUS_ORDER.index(item["status"]), item["rule"], item["host"]))
    return records
