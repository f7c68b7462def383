"""Handlers and notifications: ``/v1/handlers`` (a mail address or a webhook told of
every hard state change of the checks of a group's hosts, or of the whole tenant, again
every ``repeat`` seconds while a state stays bad) and ``/v1/notifications`` (each one
sent, suppressed by a silence, or failed, with why).

A webhook's URL is its credential: the API shows its scheme and host only.
"""

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError
from mc_project.api.errors import refusals
from mc_project.api.tenants import Principal
from mc_project.health import definitions
from mc_project.inventory import db, fleet
from mc_project.inventory.health_models import NOTIFICATION_STATUSES, Handler, Notification

router = APIRouter(tags=["checks"])

Id = Path(ge=1, le=2 ** 31)
REFUSAL = "You may not add handlers: you are deployer or admin of no tenant."


class NewHandler(Strict):
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(pattern="^(mail|webhook)$")
    target: str = Field(min_length=3, max_length=2048, description="a mail address, or the webhook's URL")
    group: str | None = Field(None, min_length=1, max_length=128, description="only the hosts of this group")
    repeat: int | None = Field(None, ge=1, le=7 * 86400, description="seconds between reminders while not OK")
    tenant: str | None = Field(None, min_length=1, max_length=128)


@router.get("/handlers")
def list_handlers(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                  caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        where = [tenants.visible_tenant_filter(caller, Handler.tenant_id, tenant, sess)]
        total = sess.scalar(select(func.count(Handler.id)).where(*where))
        found = sess.scalars(select(Handler).where(*where).order_by(Handler.name).limit(page.limit)
                             .offset(page.offset)).all()
        return page.answer([definitions.handler_record(sess, handler) for handler in found], total)


@router.post("/handlers", status_code=201)
def create_handler(body: NewHandler, request: Request, response: Response,
                   caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess, refusals():
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, "deployer", REFUSAL)
        audit.note(request, target=body.name, tenant=tenant_name)
        handler = definitions.create_handler(sess, tenant_id, body.name, body.kind, body.target, group=body.group,
                                             repeat=body.repeat)
        made = definitions.handler_record(sess, handler)
    response.headers["Location"] = "/v1/handlers/{}".format(made["id"])
    audit.note(request, result="handler {} added".format(body.name))
    return made


@router.delete("/handlers/{handler_id}")
def delete_handler(request: Request, handler_id: int = Id, caller: Principal = Depends(auth.principal)):
    """Remove a handler (its notifications stay recorded)."""
    with db.session(request.app.state.url) as sess:
        handler = sess.get(Handler, handler_id)
        if handler is None:
            raise ApiError(404, "No handler {}.".format(handler_id))
        tenants.check(caller, handler.tenant_id, "deployer", "handler {}".format(handler_id))
        audit.note(request, target=handler.name, tenant=fleet.tenant_name(sess, handler.tenant_id))
        sess.delete(handler)
    audit.note(request, result="handler removed")
    return {"removed": handler_id}


@router.get("/notifications")
def list_notifications(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                       status: str | None = Query(None, pattern="^({})$".format("|".join(NOTIFICATION_STATUSES))),
                       check: str | None = Query(None, max_length=128), host: str | None = Query(None, max_length=255),
                       caller: Principal = Depends(auth.principal)):
    """Every notification of your tenants' handlers, newest first (filters: status, check, host)."""
    with db.session(request.app.state.url) as sess:
        where = [tenants.visible_tenant_filter(caller, Notification.tenant_id, tenant, sess)]
        for column, value in ((Notification.status, status), (Notification.check_name, check),
                              (Notification.host_name, host)):
            if value is not None:
                where.append(column == value)
        total = sess.scalar(select(func.count(Notification.id)).where(*where))
        found = sess.scalars(select(Notification).where(*where).order_by(Notification.id.desc())
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([definitions.notification_record(found_one) for found_one in found], total)
