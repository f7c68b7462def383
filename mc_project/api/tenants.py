"""Who may see and do what: every node and environment belongs to a tenant, and a
user holds one role in each of their tenants (viewer < deployer < admin).

An object of a tenant the user is not a member of does not exist for them (404);
one they see but may not act on is 403.
"""

from sqlalchemy import select

from mc_project.api.errors import ApiError
from mc_project.api.users import ensure_default, ensure_tenant  # noqa: F401 (what the API uses)
from mc_project.inventory.models import ROLES, Tenant

RANK = {role: number for number, role in enumerate(ROLES)}


class Principal:
    """The caller: a user and their roles, by tenant id (``{id: (tenant name, role)}``)."""

    def __init__(self, user_id, name, roles, token_id=None):
        self.user_id = user_id
        self.name = name
        self.roles = roles
        self.token_id = token_id

    def tenant_ids(self, role="viewer"):
        return [tenant_id for tenant_id, (_name, held) in self.roles.items() if RANK[held] >= RANK[role]]

    def role_in(self, tenant_id):
        held = self.roles.get(tenant_id)
        return held[1] if held else None

    def is_admin(self):
        return bool(self.tenant_ids("admin"))

    def described(self):
        """The ``user`` object of the API: name and tenants with roles."""
        return {"name": self.name, "tenants": sorted(
            ({"name": name, "role": role} for name, role in self.roles.values()), key=lambda t: t["name"])}


def check(principal, tenant_id, role, what):
    """Refuse unless ``principal`` holds ``role`` in ``tenant_id``: 404 when they are not
    a member (``what`` does not exist for them), 403 when their role is too low."""
    held = principal.role_in(tenant_id)
    if held is None:
        raise ApiError(404, "No {}.".format(what))
    if RANK[held] < RANK[role]:
        raise ApiError(403, "Your role in this tenant is {}; {} is needed.".format(held, role))


def tenant_for_new(sess, caller, wanted, role, refusal):
    """The tenant a new object goes to: ``wanted`` (404 unless the caller is in it, 403
    below ``role`` there), else the first tenant, by name, where the caller has ``role``;
    without one, 403 with ``refusal``. Returns (id, name)."""
    if wanted is not None:
        found = tenant_id(sess, wanted)
        if found is None or found not in caller.roles:
            raise ApiError(404, "No tenant named {}.".format(wanted))
        check(caller, found, role, "tenant named {}".format(wanted))
        return found, wanted
    for found in sorted(caller.tenant_ids(role), key=lambda key: caller.roles[key][0]):
        return found, caller.roles[found][0]
    raise ApiError(403, refusal)


def tenant_id(sess, name):
    """The id of tenant ``name``, or None."""
    return sess.scalar(select(Tenant.id).where(Tenant.name == name))


def visible_tenant_filter(principal, column, name=None, sess=None):
    """A WHERE clause keeping rows of ``principal``'s tenants (of tenant ``name`` only, when given)."""
    ids = principal.tenant_ids()
    if name is not None:
        wanted = tenant_id(sess, name)
        ids = [wanted] if wanted in ids else []
    return column.in_(ids)
