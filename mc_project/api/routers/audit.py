"""``/v1/audit``: every changing call (who, what, when, result), for admins."""

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, or_, select

from mc_project.api import auth
from mc_project.api.deps import Page
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.inventory import db
from mc_project.inventory.models import DEFAULT_TENANT, AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
def list_audit(request: Request, page: Page = Depends(), user: str | None = Query(None, max_length=255),
               caller: Principal = Depends(auth.principal)):
    """Newest first: the calls on the tenants you administer (and, for admins of the
    default tenant, those of no tenant: logins, tokens)."""
    administered = [caller.roles[tenant_id][0] for tenant_id in caller.tenant_ids("admin")]
    if not administered:
        raise ApiError(403, "Only admins may read the audit.")
    seen = [AuditEntry.tenant.in_(administered)]
    if DEFAULT_TENANT in administered:
        seen.append(AuditEntry.tenant.is_(None))
    where = [or_(*seen)]
    if user is not None:
        where.append(AuditEntry.user == user)
    with db.session(request.app.state.url) as sess:
        total = sess.scalar(select(func.count(AuditEntry.id)).where(*where))
        rows = sess.scalars(select(AuditEntry).where(*where).order_by(AuditEntry.id.desc())
                            .limit(page.limit).offset(page.offset)).all()
        return page.answer([{"id": row.id, "at": auth.iso(row.at), "user": row.user, "action": row.action,
                             "target": row.target, "tenant": row.tenant, "status": row.status,
                             "result": row.result} for row in rows], total)
