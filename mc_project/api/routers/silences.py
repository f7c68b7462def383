"""Silences: ``/v1/silences``, maintenance windows on a host, a group or a check (any
mix narrows it) with who set it, why, and until when. While one is in force, the
notifications it covers are recorded as suppressed and not sent.

Viewers read the silences of their tenants; deployers and admins set, change and end
them. Ending a silence (``DELETE``) keeps it, ended now, for the record.
"""

import datetime

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError
from mc_project.api.errors import refusals
from mc_project.api.tenants import Principal
from mc_project.health import definitions, silences
from mc_project.inventory import db, fleet
from mc_project.inventory.health_models import Silence
from mc_project.inventory.models import utcnow

router = APIRouter(tags=["checks"])

Id = Path(ge=1, le=2 ** 31)
REFUSAL = "You may not set silences: you are deployer or admin of no tenant."
MAX_MINUTES = 366 * 24 * 60


class NewSilence(Strict):
    host: str | None = Field(None, min_length=1, max_length=255)
    group: str | None = Field(None, min_length=1, max_length=128)
    check: str | None = Field(None, min_length=1, max_length=128)
    why: str = Field(min_length=1, max_length=silences.MAX_WHY)
    until: datetime.datetime | None = Field(None, description="its end (ISO 8601; UTC when no offset)")
    minutes: int | None = Field(None, ge=1, le=MAX_MINUTES, description="or its length from its start")
    starts: datetime.datetime | None = Field(None, description="its start (default: now)")
    tenant: str | None = Field(None, min_length=1, max_length=128)


class SilenceChange(Strict):
    why: str | None = Field(None, min_length=1, max_length=silences.MAX_WHY)
    until: datetime.datetime | None = None
    minutes: int | None = Field(None, ge=1, le=MAX_MINUTES, description="its end, this many minutes from now")


def _end(until, minutes, start):
    if (until is None) == (minutes is None):
        raise ApiError(400, "Say when the silence ends: until or minutes, one of them.")
    return silences.aware(until) if until is not None else start + datetime.timedelta(minutes=minutes)


def _silence(sess, caller, silence_id, role="viewer"):
    silence = sess.get(Silence, silence_id)
    if silence is None:
        raise ApiError(404, "No silence {}.".format(silence_id))
    tenants.check(caller, silence.tenant_id, role, "silence {}".format(silence_id))
    return silence


@router.get("/silences")
def list_silences(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                  ended: bool = Query(False, description="also those that ended"),
                  caller: Principal = Depends(auth.principal)):
    """The silences of your tenants in force or to come (``?ended=true``: all of them)."""
    with db.session(request.app.state.url) as sess:
        where = [tenants.visible_tenant_filter(caller, Silence.tenant_id, tenant, sess)]
        if not ended:
            where.append(Silence.until > utcnow())
        total = sess.scalar(select(func.count(Silence.id)).where(*where))
        found = sess.scalars(select(Silence).where(*where).order_by(Silence.until.desc(), Silence.id.desc())
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([definitions.silence_record(sess, silence) for silence in found], total)


@router.post("/silences", status_code=201)
def create_silence(body: NewSilence, request: Request, response: Response,
                   caller: Principal = Depends(auth.principal)):
    """Silence a host, a group or a check (or a mix) until a time or for some minutes."""
    with db.session(request.app.state.url) as sess, refusals():
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, "deployer", REFUSAL)
        what = ", ".join("{} {}".format(kind, name) for kind, name in (
            ("host", body.host), ("group", body.group), ("check", body.check)) if name)
        audit.note(request, target=what or "nothing", tenant=tenant_name)
        host_id, group_id, check_id = definitions.silence_where(sess, tenant_id, body.host, body.group, body.check)
        starts = silences.aware(body.starts) if body.starts else utcnow()
        silence = silences.create(sess, tenant_id, caller.name, body.why, _end(body.until, body.minutes, starts),
                                  starts=starts, host_id=host_id, group_id=group_id, check_id=check_id)
        made = definitions.silence_record(sess, silence)
    response.headers["Location"] = "/v1/silences/{}".format(made["id"])
    audit.note(request, result="silence {} set".format(made["id"]))
    return made


@router.get("/silences/{silence_id}")
def get_silence(request: Request, silence_id: int = Id, caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        return definitions.silence_record(sess, _silence(sess, caller, silence_id))


@router.patch("/silences/{silence_id}")
def change_silence(body: SilenceChange, request: Request, silence_id: int = Id,
                   caller: Principal = Depends(auth.principal)):
    """Change a silence's reason or end (``until``, or ``minutes`` from now)."""
    with db.session(request.app.state.url) as sess, refusals():
        silence = _silence(sess, caller, silence_id, "deployer")
        audit.note(request, target="silence {}".format(silence_id), tenant=fleet.tenant_name(sess, silence.tenant_id))
        if body.why is None and body.until is None and body.minutes is None:
            raise ApiError(400, "Nothing to change: give why, until or minutes.")
        if body.why is not None:
            silence.why = body.why.strip()
        if body.until is not None or body.minutes is not None:
            until = _end(body.until, body.minutes, utcnow())
            if until <= silences.aware(silence.starts):
                raise ApiError(400, "A silence must end after it starts.")
            silence.until = until
        return definitions.silence_record(sess, silence)


@router.delete("/silences/{silence_id}")
def end_silence(request: Request, silence_id: int = Id, caller: Principal = Depends(auth.principal)):
    """End a silence now (it stays listed with ``?ended=true``)."""
    with db.session(request.app.state.url) as sess:
        silence = _silence(sess, caller, silence_id, "deployer")
        audit.note(request, target="silence {}".format(silence_id), tenant=fleet.tenant_name(sess, silence.tenant_id))
        now = utcnow()
        if silences.aware(silence.until) > now:
            silence.until = max(now, silences.aware(silence.starts) + datetime.timedelta(microseconds=1))
        return definitions.silence_record(sess, silence)
