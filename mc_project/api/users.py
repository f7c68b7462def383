"""Local users and tenants in the inventory, without the web framework: what
``corpus-controller`` (``init``, ``user add``) and the API share."""

import re

from sqlalchemy import select, update

from mc_project.api import passwords
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import DEFAULT_TENANT, ROLES, ComputeNode, Environment, Membership, Tenant, User

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def ensure_tenant(sess, name):
    tenant = sess.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        sess.add(tenant)
        sess.flush()
    return tenant


def ensure_default(url):
    """Make tenant ``default`` if missing and put in it every node and environment
    without a tenant (made by the runners before it existed); its id."""
    with db.session(url) as sess:
        tenant = ensure_tenant(sess, DEFAULT_TENANT)
        for model in (ComputeNode, Environment):
            sess.execute(update(model).where(model.tenant_id.is_(None)).values(tenant_id=tenant.id))
        return tenant.id


def add_local_user(url, name, password, tenant_name, role):
    """Create or update local user ``name`` with ``role`` in ``tenant_name``; whether it was new."""
    if not NAME_RE.fullmatch(name or ""):
        raise CorpusError("User name {!r} is not valid: use letters, digits, '.', '_', '@' and '-'.".format(name))
    if not TENANT_RE.fullmatch(tenant_name or ""):
        raise CorpusError("Tenant name {!r} is not valid: use lower-case letters, digits, '.', '_' and '-'.".format(
            tenant_name))
    if role not in ROLES:
        raise CorpusError("Unknown role {!r}; use one of {}.".format(role, ", ".join(ROLES)))
    if not password:
        raise CorpusError("The password must not be empty.")
    with db.session(url) as sess:
        user = sess.scalar(select(User).where(User.name == name))
        created = user is None
        if created:
            user = User(name=name, source="local")
            sess.add(user)
        elif user.source != "local":
            raise CorpusError("User {} comes from the LDAP directory; it has no local password.".format(name))
        user.password_hash = passwords.hash_password(password)
        sess.flush()
        tenant = ensure_tenant(sess, tenant_name)
        membership = sess.scalar(select(Membership).where(Membership.user_id == user.id,
                                                          Membership.tenant_id == tenant.id))
        if membership is None:
            sess.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role))
        else:
            membership.role = role
    return created


def any_user(url):
    with db.session(url) as sess:
        return sess.scalar(select(User.id).limit(1)) is not None
