"""Environments as the API shows them: the ``list_envs`` row shape plus the tenant,
read for one page in three queries (rows, their projects, the total), so a page
costs the same with 10 or 100,000 environments."""

from sqlalchemy import func, select

from mc_project.api import tenants
from mc_project.api.errors import ApiError
from mc_project.inventory.models import ComputeNode, Environment, Project, Tenant

COLUMNS = (Environment, ComputeNode.name, ComputeNode.address, Tenant.name)


def _row(env, node_name, node_address, tenant_name, projects):
    return {"name": env.name, "uuid": env.uuid, "type": env.env_type, "status": env.status,
            "project": env.project, "projects": sorted(projects),
            "node": node_name, "ip": env.ip,
            "ssh": "{}:{}".format(node_address, env.ssh_nat_port) if node_name and env.ssh_nat_port else None,
            "domains": list(env.domains or []), "disk_size_mb": env.disk_size_mb, "tenant": tenant_name,
            "image": env.image}


def _base(query):
    return query.outerjoin(ComputeNode, ComputeNode.id == Environment.node_id) \
        .outerjoin(Tenant, Tenant.id == Environment.tenant_id)


def _projects(sess, env_ids):
    found = {env_id: [] for env_id in env_ids}
    if env_ids:
        for env_id, name in sess.execute(select(Project.environment_id, Project.name)
                                         .where(Project.environment_id.in_(env_ids))):
            found[env_id].append(name)
    return found


def page(sess, caller, limit, offset, tenant=None, env_type=None, node=None, status=None):
    """``(rows, total)`` of the environments ``caller`` sees, filtered."""
    where = [tenants.visible_tenant_filter(caller, Environment.tenant_id, tenant, sess)]
    if env_type is not None:
        where.append(Environment.env_type == env_type)
    if status is not None:
        where.append(Environment.status == status)
    if node is not None:
        where.append(ComputeNode.name == node)
    total = sess.scalar(_base(select(func.count(Environment.id))).where(*where))
    found = sess.execute(_base(select(*COLUMNS)).where(*where).order_by(Environment.name)
                         .limit(limit).offset(offset)).all()
    projects = _projects(sess, [row[0].id for row in found])
    return [_row(*row, projects[row[0].id]) for row in found], total


def find(sess, caller, name, role="viewer"):
    """``(Environment, row)`` of ``name`` if ``caller`` sees it (404 otherwise) and holds ``role``
    in its tenant (403 otherwise)."""
    found = sess.execute(_base(select(*COLUMNS)).where(Environment.name == str(name))).first()
    what = "environment named {}".format(name)
    if found is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, found[0].tenant_id, role, what)
    return found[0], _row(*found, _projects(sess, [found[0].id])[found[0].id])
