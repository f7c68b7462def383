"""``/v1/nodes``: the compute nodes of your tenants."""

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, select

from mc_project.api import auth, tenants
from mc_project.api.deps import Page
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.controller import nodes
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Tenant

router = APIRouter(prefix="/nodes", tags=["nodes"])


def _record(sess, node, tenant_name):
    return dict(nodes.node_record(sess, node), tenant=tenant_name)


@router.get("")
def list_nodes(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
               caller: Principal = Depends(auth.principal)):
    """The compute nodes of your tenants (filter: tenant)."""
    with db.session(request.app.state.url) as sess:
        where = tenants.visible_tenant_filter(caller, ComputeNode.tenant_id, tenant, sess)
        total = sess.scalar(select(func.count(ComputeNode.id)).where(where))
        found = sess.execute(select(ComputeNode, Tenant.name).outerjoin(Tenant, Tenant.id == ComputeNode.tenant_id)
                             .where(where).order_by(ComputeNode.name).limit(page.limit).offset(page.offset)).all()
        return page.answer([_record(sess, node, tenant_name) for node, tenant_name in found], total)


@router.get("/{name}")
def get_node(request: Request, name: str = Path(min_length=1, max_length=255),
             caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        found = sess.execute(select(ComputeNode, Tenant.name).outerjoin(Tenant, Tenant.id == ComputeNode.tenant_id)
                             .where(ComputeNode.name == name)).first()
        if found is None or found[0].tenant_id not in caller.roles:
            raise ApiError(404, "No compute node named {}.".format(name))
        return _record(sess, *found)
