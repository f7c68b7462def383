"""The fleet's checks: ``/v1/checks`` (each check's state on each host, its history, a
TTL check's pass) and ``/v1/checks/definitions`` (what is checked, on a group or a
host, how often, with how many retries).

Viewers of a tenant read its checks; deployers and admins define them and push TTL
passes. A new or removed check reaches its hosts' minions through their pillar, which
is refreshed at once.
"""

import logging

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.health import definitions, handlers, results
from mc_project.inventory import db, fleet, host_rows
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.health_models import CHECK_KINDS, STATES, Check, CheckHistory, CheckState

log = logging.getLogger(__name__)

router = APIRouter(tags=["checks"])

# One Path per parameter name: FastAPI names a shared one after the first parameter it serves.
CheckId = Path(ge=1, le=2 ** 31)
StateId = Path(ge=1, le=2 ** 31)
REFUSAL = "You may not define checks: you are deployer or admin of no tenant."
KIND_PATTERN = "^({})$".format("|".join(CHECK_KINDS))
STATE_PATTERN = "^({}|PENDING)$".format("|".join(STATES))



def _url(request):
    return request.app.state.url


def refresh_pillars(ctl, minions):
    """Ask ``minions`` to read their pillar again (new checks, new schedule); a minion
    that is down reads it when it starts."""
    if not minions:
        return
    try:
        with ctl.salt_client() as client:
            client.cmd_async(list(minions), "saltutil.refresh_pillar", tgt_type="list")
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("checks: could not ask %d minions to refresh their pillar: %s", len(minions), exc)


class NewCheck(Strict):
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(pattern=KIND_PATTERN)
    group: str | None = Field(None, min_length=1, max_length=128)
    host: str | None = Field(None, min_length=1, max_length=255)
    params: dict = Field(default_factory=dict)
    interval: int = Field(60, ge=1, le=86400, description="seconds between runs; a TTL check's time to live")
    timeout: int = Field(10, ge=1, le=3600)
    retries: int = Field(0, ge=0, le=100, description="results that differ before the state changes")
    tenant: str | None = Field(None, min_length=1, max_length=128)


class Pass(Strict):
    output: str | None = Field(None, max_length=4096)


def _check(sess, caller, check_id, role="viewer"):
    check = sess.get(Check, check_id)
    if check is None:
        raise ApiError(404, "No check definition {}.".format(check_id))
    tenants.check(caller, check.tenant_id, role, "check definition {}".format(check_id))
    return check


def _state(sess, caller, state_id, role="viewer"):
    row = sess.get(CheckState, state_id)
    if row is None:
        raise ApiError(404, "No check {}.".format(state_id))
    tenants.check(caller, sess.get(Check, row.check_id).tenant_id, role, "check {}".format(state_id))
    return row


@router.get("/checks/definitions")
def list_definitions(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                     caller: Principal = Depends(auth.principal)):
    """The checks defined in your tenants."""
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, Check.tenant_id, tenant, sess)]
        total = sess.scalar(select(func.count(Check.id)).where(*where))
        found = sess.scalars(select(Check).where(*where).order_by(Check.name).limit(page.limit)
                             .offset(page.offset)).all()
        return page.answer([definitions.check_record(sess, check) for check in found], total)


@router.post("/checks/definitions", status_code=201)
def create_definition(body: NewCheck, request: Request, response: Response,
                      caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Define a check on a group or a host: ``http`` (params url, status, body, tls_days),
    ``tcp`` (host, port), ``script`` (command) or ``ttl`` (no params; the service pushes
    ``PUT /v1/checks/{id}/pass`` within each interval)."""
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, "deployer", REFUSAL)
        audit.note(request, target=body.name, tenant=tenant_name)
        check = definitions.create_check(sess, tenant_id, body.name, body.kind, group=body.group, host=body.host,
                                         params=body.params, interval=body.interval, timeout=body.timeout,
                                         retries=body.retries)
        made = definitions.check_record(sess, check)
        minions = definitions.minions_of(sess, check) if check.kind != "ttl" else []
    refresh_pillars(ctl, minions)
    response.headers["Location"] = "/v1/checks/definitions/{}".format(made["id"])
    audit.note(request, result="check {} defined".format(body.name))
    return made


@router.get("/checks/definitions/{check_id}")
def get_definition(request: Request, check_id: int = CheckId, caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return definitions.check_record(sess, _check(sess, caller, check_id))


@router.delete("/checks/definitions/{check_id}")
def delete_definition(request: Request, check_id: int = CheckId, caller: Principal = Depends(auth.principal),
                      ctl=Depends(controller)):
    """Remove a check, its states and their history (its notifications stay)."""
    with db.session(_url(request)) as sess:
        check = _check(sess, caller, check_id, "deployer")
        audit.note(request, target=check.name, tenant=fleet.tenant_name(sess, check.tenant_id))
        minions = definitions.minions_of(sess, check) if check.kind != "ttl" else []
        sess.delete(check)
    refresh_pillars(ctl, minions)
    audit.note(request, result="check removed")
    return {"removed": check_id}


@router.get("/checks")
def list_checks(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                state: str | None = Query(None, pattern=STATE_PATTERN), check: str | None = Query(None, max_length=128),
                host: str | None = Query(None, max_length=255), caller: Principal = Depends(auth.principal)):
    """Each check's state on each host of your tenants, worst first (filters: state, check, host)."""
    with db.session(_url(request)) as sess:
        query = select(CheckState).join(Check, Check.id == CheckState.check_id).where(
            tenants.visible_tenant_filter(caller, Check.tenant_id, tenant, sess))
        if state is not None:
            query = query.where(CheckState.state == state)
        if check is not None:
            query = query.where(Check.name == check)
        if host is not None:
            ids = [row["id"] for row in host_rows.rows(sess, Host.name == host)]
            query = query.where(CheckState.host_id.in_(ids))
        total = sess.scalar(select(func.count()).select_from(query.subquery()))
        rank = definitions.state_rank(CheckState.state)
        found = sess.scalars(query.order_by(rank, Check.name, CheckState.host_id).limit(page.limit)
                             .offset(page.offset)).all()
        return page.answer(definitions.state_records(sess, found), total)


@router.get("/checks/{state_id}")
def get_check(request: Request, state_id: int = StateId, caller: Principal = Depends(auth.principal)):
    """One check on one host: its state, since when, its last result."""
    with db.session(_url(request)) as sess:
        return definitions.state_record(sess, _state(sess, caller, state_id))


@router.get("/checks/{state_id}/history")
def check_history(request: Request, page: Page = Depends(), state_id: int = StateId,
                  caller: Principal = Depends(auth.principal)):
    """The changes of one check's state on one host, newest first (soft ones too)."""
    with db.session(_url(request)) as sess:
        _state(sess, caller, state_id)
        where = [CheckHistory.state_id == state_id]
        total = sess.scalar(select(func.count(CheckHistory.id)).where(*where))
        found = sess.scalars(select(CheckHistory).where(*where).order_by(CheckHistory.at.desc(), CheckHistory.id.desc())
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([{"at": entry.at, "state": entry.state, "hard": entry.hard, "attempts": entry.attempts,
                             "output": entry.output} for entry in found], total)


@router.put("/checks/{state_id}/pass")
def pass_check(request: Request, state_id: int = StateId, body: Pass | None = Body(None),
               caller: Principal = Depends(auth.principal)):
    """A TTL check's pass: OK until its time to live runs out again."""
    with db.session(_url(request)) as sess, refusals():
        row = _state(sess, caller, state_id, "deployer")
        deliveries = results.record_pass(sess, row, body.output if body else None)
        answer = definitions.state_record(sess, row)
    handlers.dispatch(_url(request), deliveries, request.app.state.ctl.settings["smtp"])
    audit.note(request, target="check {}".format(state_id), result="passed")
    return answer

