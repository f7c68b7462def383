"""``/v1/tenants``: your tenants; admins of ``default`` make tenants, a tenant's admins
manage its members (local users only: with LDAP, the directory's groups decide)."""

from typing import Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.api.users import NAME_RE, TENANT_RE
from mc_project.inventory import db
from mc_project.inventory.models import DEFAULT_TENANT, ROLES, Membership, Tenant, User

router = APIRouter(prefix="/tenants", tags=["tenants"])

TenantName = Path(min_length=1, max_length=128)
UserName = Path(min_length=1, max_length=255)


class NewTenant(Strict):
    name: str = Field(pattern=TENANT_RE.pattern)


class Role(Strict):
    role: Literal[ROLES]


@router.get("")
def list_tenants(page: Page = Depends(), caller: Principal = Depends(auth.principal)):
    """The tenants you are a member of, with your role in each."""
    rows = caller.described()["tenants"]
    return page.answer(rows[page.offset:page.offset + page.limit], len(rows))


@router.post("", status_code=201)
def create_tenant(body: NewTenant, request: Request, response: Response,
                  caller: Principal = Depends(auth.principal)):
    """A new tenant (admins of ``default`` only); its creator is its admin."""
    with db.session(request.app.state.url) as sess:
        default_id = tenants.tenant_id(sess, DEFAULT_TENANT)
        if caller.role_in(default_id) != "admin":
            raise ApiError(403, "Only an admin of tenant {} may create tenants.".format(DEFAULT_TENANT))
        audit.note(request, target=body.name, tenant=body.name)
        if tenants.tenant_id(sess, body.name) is not None:
            raise ApiError(409, "Tenant {} already exists.".format(body.name))
        tenant = Tenant(name=body.name)
        sess.add(tenant)
        sess.flush()
        sess.add(Membership(user_id=caller.user_id, tenant_id=tenant.id, role="admin"))
    location = "/v1/tenants/{}".format(body.name)
    response.headers["Location"] = location
    audit.note(request, result="tenant {} created; {} is its admin".format(body.name, caller.name))
    return {"name": body.name, "role": "admin", "location": location}


@router.get("/{name}")
def get_tenant(name: str = TenantName, caller: Principal = Depends(auth.principal)):
    """Tenant ``name`` and your role in it (404 when you are not a member)."""
    for held_name, role in caller.roles.values():
        if held_name == name:
            return {"name": name, "role": role}
    raise ApiError(404, "No tenant named {}.".format(name))


def _administered(sess, caller, name):
    """The id of tenant ``name``, which ``caller`` administers (404 unknown or not theirs, 403 not admin)."""
    tenant_id = tenants.tenant_id(sess, name)
    what = "tenant named {}".format(name)
    if tenant_id is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, tenant_id, "admin", what)
    return tenant_id


def _members(sess, tenant_id):
    return [{"name": user_name, "source": source, "role": role} for user_name, source, role in sess.execute(
        select(User.name, User.source, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id).order_by(User.name))]


@router.get("/{name}/members")
def list_members(request: Request, page: Page = Depends(), name: str = TenantName,
                 caller: Principal = Depends(auth.principal)):
    """The members of tenant ``name`` and their roles (its admins only)."""
    with db.session(request.app.state.url) as sess:
        rows = _members(sess, _administered(sess, caller, name))
    return page.answer(rows[page.offset:page.offset + page.limit], len(rows))


def _changing_members(request, sess, caller, name, user):
    """Tenant ``name``'s id and local user ``user``, for one of its admins; 409 with LDAP."""
    tenant_id = _administered(sess, caller, name)
    audit.note(request, target=user, tenant=name)
    if request.app.state.settings.get("ldap"):
        raise ApiError(409, "Memberships come from the LDAP directory's groups here; change them there.")
    found = sess.scalar(select(User).where(User.name == user)) if NAME_RE.fullmatch(user) else None
    if found is None:
        raise ApiError(404, "No user named {}.".format(user))
    if found.source != "local":
        raise ApiError(409, "User {} comes from the LDAP directory; its memberships follow its groups.".format(user))
    membership = sess.scalar(select(Membership).where(Membership.user_id == found.id,
                                                      Membership.tenant_id == tenant_id))
    return tenant_id, found, membership


def _refuse_last_admin(sess, tenant_id, name, membership, user):
    if membership is not None and membership.role == "admin" and sess.scalar(
            select(func.count(Membership.id)).where(Membership.tenant_id == tenant_id,
                                                    Membership.role == "admin")) == 1:
        raise ApiError(409, "User {} is the last admin of tenant {}; make another admin first.".format(user, name))


@router.put("/{name}/members/{user}")
def set_member(body: Role, request: Request, name: str = TenantName, user: str = UserName,
               caller: Principal = Depends(auth.principal)):
    """Give local user ``user`` ``role`` in tenant ``name`` (its admins only)."""
    with db.session(request.app.state.url) as sess:
        tenant_id, found, membership = _changing_members(request, sess, caller, name, user)
        if membership is None:
            sess.add(Membership(user_id=found.id, tenant_id=tenant_id, role=body.role))
            result = "{} added to {} as {}".format(user, name, body.role)
        else:
            if body.role != "admin":
                _refuse_last_admin(sess, tenant_id, name, membership, user)
            result = "{} is {} in {} (was {})".format(user, body.role, name, membership.role)
            membership.role = body.role
    audit.note(request, result=result)
    return {"name": user, "source": "local", "role": body.role}


@router.delete("/{name}/members/{user}", status_code=204)
def remove_member(request: Request, name: str = TenantName, user: str = UserName,
                  caller: Principal = Depends(auth.principal)):
    """Take local user ``user`` out of tenant ``name`` (its admins only)."""
    with db.session(request.app.state.url) as sess:
        tenant_id, _found, membership = _changing_members(request, sess, caller, name, user)
        if membership is None:
            raise ApiError(404, "User {} is not a member of tenant {}.".format(user, name))
        _refuse_last_admin(sess, tenant_id, name, membership, user)
        sess.delete(membership)
    audit.note(request, result="{} removed from {}".format(user, name))
    return Response(status_code=204)
