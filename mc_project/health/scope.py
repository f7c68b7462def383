"""Which hosts a check, a handler or a silence covers, and which checks a host runs.

A group covers its hosts and the hosts of every group inside it, as its variables do.
"""

from sqlalchemy import or_, select

from mc_project.inventory import host_rows, resolve
from mc_project.inventory.fleet_models import GroupMember, Host
from mc_project.inventory.health_models import Check


def host_groups(sess, host):
    """The ids of the groups ``host`` (a ``host_rows`` mapping) is in, directly or not."""
    tree = resolve.GroupTree.load(sess, host["tenant_id"])
    return tree.with_ancestors(resolve.direct_groups(sess, host["id"]))


def checks_of(sess, host, kinds=None):
    """The checks of ``host``: its own and its groups', by name."""
    groups = host_groups(sess, host)
    where = [Check.tenant_id == host["tenant_id"], or_(Check.host_id == host["id"], Check.group_id.in_(groups))]
    if kinds:
        where.append(Check.kind.in_(kinds))
    return sess.scalars(select(Check).where(*where).order_by(Check.name)).all()


def hosts_of(sess, check):
    """The hosts ``check`` covers, as ``host_rows`` mappings."""
    if check.host_id is not None:
        found = host_rows.one(sess, check.host_id)
        return [found] if found else []
    tree = resolve.GroupTree.load(sess, check.tenant_id)
    groups = tree.with_descendants(check.group_id)
    ids = sess.scalars(select(GroupMember.host_id).where(GroupMember.group_id.in_(groups))).all()
    return host_rows.rows(sess, Host.id.in_(set(ids))) if ids else []


def covers(host_id, groups, check_id, host_filter, group_filter, check_filter):
    """Whether something set on a host, a group and/or a check (None: any) covers the
    check ``check_id`` on the host ``host_id`` that is in ``groups``."""
    return ((host_filter is None or host_filter == host_id)
            and (group_filter is None or group_filter in groups)
            and (check_filter is None or check_filter == check_id))
