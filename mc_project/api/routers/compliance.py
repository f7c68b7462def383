"""Compliance: ``/v1/compliance/rules`` (what a group's or a host's hosts must be, audited
or enforced), ``/v1/compliance/waivers`` (a rule's drift accepted on a host or a group, for
a reason, until a time), ``POST /v1/compliance/runs`` (a run: a job, 202), and what runs
found: ``/v1/compliance/state`` (the newest result of each rule on each host) and
``/v1/compliance/history`` (every result, newest first).

Viewers of a tenant read its compliance; deployers and admins define rules in the
vocabulary, waive and run. A raw Salt state (kind ``sls``) runs anything on the hosts as
their minions' user: only an admin of the tenant defines or changes one.
"""

import datetime

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.health import compliance_rules, compliance_runs, compliance_store
from mc_project.inventory import db, fleet
from mc_project.inventory.compliance_models import (
    MODES,
    RESULT_STATUSES,
    RULE_KINDS,
    RUN_MODES,
    ComplianceResult,
    ComplianceRule,
    ComplianceRun,
    ComplianceWaiver,
)
from mc_project.inventory.models import utcnow

router = APIRouter(tags=["compliance"])

RuleId = Path(ge=1, le=2 ** 31)
WaiverId = Path(ge=1, le=2 ** 31)
REFUSAL = "You may not define compliance rules: you are deployer or admin of no tenant."
RUN_REFUSAL = "You may not run compliance: you are deployer or admin of no tenant."
KIND_PATTERN = "^({})$".format("|".join(RULE_KINDS))
MODE_PATTERN = "^({})$".format("|".join(MODES))
RUN_MODE_PATTERN = "^({})$".format("|".join(RUN_MODES))
STATUS_PATTERN = "^({})$".format("|".join(RESULT_STATUSES))
NameField = Field(None, min_length=1, max_length=128)


class NewRule(Strict):
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(pattern=KIND_PATTERN)
    group: str | None = NameField
    host: str | None = Field(None, min_length=1, max_length=255)
    params: dict = Field(default_factory=dict)
    mode: str = Field("audit", pattern=MODE_PATTERN)
    impact: float = Field(0.5, ge=0, le=1, description="0.0 (none) to 1.0 (critical)")
    description: str | None = Field(None, max_length=compliance_store.MAX_DESCRIPTION)
    tenant: str | None = NameField


class RuleChange(Strict):
    params: dict | None = None
    mode: str | None = Field(None, pattern=MODE_PATTERN)
    impact: float | None = Field(None, ge=0, le=1)
    description: str | None = Field(None, max_length=compliance_store.MAX_DESCRIPTION)


class NewWaiver(Strict):
    rule: str = Field(min_length=1, max_length=128)
    host: str | None = Field(None, min_length=1, max_length=255)
    group: str | None = NameField
    reason: str = Field(min_length=1, max_length=2000)
    until: datetime.datetime = Field(description="its expiry (ISO 8601; UTC when no offset)")
    tenant: str | None = NameField


class NewRun(Strict):
    rule: str | None = NameField
    mode: str = Field("rules", pattern=RUN_MODE_PATTERN,
                      description="rules: each rule in its own mode; audit or enforce: every rule so")
    tenant: str | None = NameField


def _url(request):
    return request.app.state.url


def _rule(sess, caller, rule_id, role="viewer"):
    rule = sess.get(ComplianceRule, rule_id)
    if rule is None:
        raise ApiError(404, "No compliance rule {}.".format(rule_id))
    tenants.check(caller, rule.tenant_id, role, "compliance rule {}".format(rule_id))
    if rule.kind == "sls" and role != "viewer":
        tenants.check(caller, rule.tenant_id, "admin", "compliance rule {}".format(rule_id))
    return rule


def _waiver(sess, caller, waiver_id, role="viewer"):
    waiver = sess.get(ComplianceWaiver, waiver_id)
    if waiver is None:
        raise ApiError(404, "No waiver {}.".format(waiver_id))
    tenants.check(caller, waiver.tenant_id, role, "waiver {}".format(waiver_id))
    return waiver


def _tenant_ids(sess, caller, tenant):
    ids = caller.tenant_ids()
    if tenant is not None:
        wanted = tenants.tenant_id(sess, tenant)
        ids = [wanted] if wanted in ids else []
    return ids


@router.get("/compliance/rules")
def list_rules(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
               caller: Principal = Depends(auth.principal)):
    """The compliance rules of your tenants, by name."""
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, ComplianceRule.tenant_id, tenant, sess)]
        total = sess.scalar(select(func.count(ComplianceRule.id)).where(*where))
        found = sess.scalars(select(ComplianceRule).where(*where).order_by(ComplianceRule.name)
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([compliance_store.rule_record(sess, rule) for rule in found], total)


@router.post("/compliance/rules", status_code=201)
def create_rule(body: NewRule, request: Request, response: Response, caller: Principal = Depends(auth.principal)):
    """Define a rule on a group or a host: ``file`` (params path, mode, user, group),
    ``pkg_present`` (name, version), ``pkg_absent`` (name), ``service_running`` (name,
    enable), ``user_present`` (name, uid, shell, home, groups), ``sysctl`` (name, value), or
    ``sls`` (a Salt state's YAML, admins only); ``mode`` audit or enforce; ``impact`` 0-1."""
    with db.session(_url(request)) as sess, refusals():
        role = "admin" if body.kind == "sls" else "deployer"
        refusal = REFUSAL if role == "deployer" else "Only an admin of a tenant defines a raw Salt state rule."
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, role, refusal)
        audit.note(request, target=body.name, tenant=tenant_name)
        rule = compliance_store.create_rule(sess, tenant_id, body.name, body.kind, group=body.group, host=body.host,
                                            params=body.params, mode=body.mode, impact=body.impact,
                                            description=body.description)
        made = compliance_store.rule_record(sess, rule)
    response.headers["Location"] = "/v1/compliance/rules/{}".format(made["id"])
    audit.note(request, result="compliance rule {} defined".format(body.name))
    return made


@router.get("/compliance/rules/{rule_id}")
def get_rule(request: Request, rule_id: int = RuleId, caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return compliance_store.rule_record(sess, _rule(sess, caller, rule_id))


@router.patch("/compliance/rules/{rule_id}")
def change_rule(body: RuleChange, request: Request, rule_id: int = RuleId,
                caller: Principal = Depends(auth.principal)):
    """Change a rule's params, mode, impact or description."""
    with db.session(_url(request)) as sess, refusals():
        rule = _rule(sess, caller, rule_id, "deployer")
        audit.note(request, target=rule.name, tenant=fleet.tenant_name(sess, rule.tenant_id))
        if body.params is None and body.mode is None and body.impact is None and body.description is None:
            raise ApiError(400, "Nothing to change: give params, mode, impact or description.")
        compliance_store.change_rule(rule, body.params, body.mode, body.impact, body.description)
        return compliance_store.rule_record(sess, rule)


@router.delete("/compliance/rules/{rule_id}")
def delete_rule(request: Request, rule_id: int = RuleId, caller: Principal = Depends(auth.principal)):
    """Remove a rule and its waivers (its results stay in the history, by name)."""
    with db.session(_url(request)) as sess:
        rule = _rule(sess, caller, rule_id, "deployer")
        audit.note(request, target=rule.name, tenant=fleet.tenant_name(sess, rule.tenant_id))
        sess.delete(rule)
    audit.note(request, result="compliance rule removed")
    return {"removed": rule_id}


@router.get("/compliance/waivers")
def list_waivers(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                 expired: bool = Query(False, description="also those that expired"),
                 caller: Principal = Depends(auth.principal)):
    """The waivers of your tenants in force (``?expired=true``: all of them)."""
    now = utcnow()
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, ComplianceWaiver.tenant_id, tenant, sess)]
        if not expired:
            where.append(ComplianceWaiver.until > now)
        total = sess.scalar(select(func.count(ComplianceWaiver.id)).where(*where))
        found = sess.scalars(select(ComplianceWaiver).where(*where).order_by(
            ComplianceWaiver.until.desc(), ComplianceWaiver.id.desc()).limit(page.limit).offset(page.offset)).all()
        return page.answer([compliance_store.waiver_record(sess, waiver, now) for waiver in found], total)


@router.post("/compliance/waivers", status_code=201)
def create_waiver(body: NewWaiver, request: Request, response: Response,
                  caller: Principal = Depends(auth.principal)):
    """Waive a rule's drift on a host or a group, for a reason, until a time."""
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = tenants.tenant_for_new(
            sess, caller, body.tenant, "deployer", "You may not waive rules: you are deployer or admin of no tenant.")
        audit.note(request, target="rule {}".format(body.rule), tenant=tenant_name)
        waiver = compliance_store.create_waiver(sess, tenant_id, body.rule, caller.name, body.reason, body.until,
                                                host=body.host, group=body.group)
        made = compliance_store.waiver_record(sess, waiver)
    response.headers["Location"] = "/v1/compliance/waivers/{}".format(made["id"])
    audit.note(request, result="waiver {} set".format(made["id"]))
    return made


@router.get("/compliance/waivers/{waiver_id}")
def get_waiver(request: Request, waiver_id: int = WaiverId, caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return compliance_store.waiver_record(sess, _waiver(sess, caller, waiver_id))


@router.delete("/compliance/waivers/{waiver_id}")
def end_waiver(request: Request, waiver_id: int = WaiverId, caller: Principal = Depends(auth.principal)):
    """End a waiver now (it stays listed with ``?expired=true``)."""
    with db.session(_url(request)) as sess:
        waiver = _waiver(sess, caller, waiver_id, "deployer")
        audit.note(request, target="waiver {}".format(waiver_id), tenant=fleet.tenant_name(sess, waiver.tenant_id))
        now = utcnow()
        if compliance_rules.in_force(waiver, now):
            waiver.until = now
        return compliance_store.waiver_record(sess, waiver, now)


@router.post("/compliance/runs", status_code=202)
def run(body: NewRun, request: Request, caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Run the rules (or the one named) on their hosts: each in its own mode (``rules``),
    or all audited (``audit``, Salt's test=True: nothing changes) or all enforced."""
    with db.session(ctl.url) as sess:
        tenant_id, _name = tenants.tenant_for_new(sess, caller, body.tenant, "deployer", RUN_REFUSAL)
    with refusals():
        clipboard = compliance_runs.request(ctl, tenant_id, body.rule, body.mode, caller.name)
    return start_job(request, ctl, lambda job_ctl: compliance_runs.run(job_ctl, clipboard), tenant_id,
                     body.rule or "all rules")


@router.get("/compliance/runs")
def list_runs(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
              caller: Principal = Depends(auth.principal)):
    """The runs of your tenants, newest first, with their totals."""
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, ComplianceRun.tenant_id, tenant, sess)]
        total = sess.scalar(select(func.count(ComplianceRun.id)).where(*where))
        found = sess.scalars(select(ComplianceRun).where(*where).order_by(ComplianceRun.id.desc())
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([{"id": found_run.id, "job": found_run.job_id, "rule": found_run.rule_name,
                             "mode": found_run.mode, "who": found_run.who, "started": found_run.started,
                             "ended": found_run.ended, "totals": found_run.totals} for found_run in found], total)


@router.get("/compliance/state")
def compliance_state(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                     rule: str | None = Query(None, max_length=128), host: str | None = Query(None, max_length=255),
                     status: str | None = Query(None, pattern=STATUS_PATTERN),
                     caller: Principal = Depends(auth.principal)):
    """The newest result of each rule on each host, worst first; a drift is ``waived``
    while a waiver in force covers it (filters: rule, host, status)."""
    with db.session(_url(request)) as sess:
        records = compliance_store.state(sess, _tenant_ids(sess, caller, tenant), rule, host, status)
    return page.answer(records[page.offset:page.offset + page.limit], len(records))


@router.get("/compliance/history")
def history(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
            rule: str | None = Query(None, max_length=128), host: str | None = Query(None, max_length=255),
            status: str | None = Query(None, pattern=STATUS_PATTERN), run: int | None = Query(None, ge=1, le=2 ** 31),
            caller: Principal = Depends(auth.principal)):
    """Every result, newest first, as it was recorded (filters: rule, host, status, run)."""
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, ComplianceResult.tenant_id, tenant, sess)]
        for column, value in ((ComplianceResult.rule_name, rule), (ComplianceResult.host_name, host),
                              (ComplianceResult.status, status), (ComplianceResult.run_id, run)):
            if value is not None:
                where.append(column == value)
        total = sess.scalar(select(func.count(ComplianceResult.id)).where(*where))
        found = sess.scalars(select(ComplianceResult).where(*where).order_by(ComplianceResult.id.desc())
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([compliance_store.result_record(result) for result in found], total)
