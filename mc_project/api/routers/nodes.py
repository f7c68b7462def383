"""``/v1/nodes``: the compute nodes of your tenants; admins link (a job) and unlink them."""

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field
from sqlalchemy import func, select, update

from mc_project.api import audit, auth, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.common.vocabulary import NODE_NAME_RE
from mc_project.controller import nodes, operations
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Job, Tenant

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


class NewNode(Strict):
    """``link_node``'s arguments (and the tenant the node goes to)."""

    host: str = Field(min_length=1, max_length=255)
    user: str = Field("root", pattern=NODE_NAME_RE.pattern)
    port: int = Field(22, ge=1, le=65535)
    name: str | None = Field(None, pattern=NODE_NAME_RE.pattern)
    slots: int = Field(10, ge=0, le=100000)
    subnet: str | None = Field(None, min_length=1, max_length=64)
    http_port: int = Field(80, ge=1, le=65535)
    tenant: str | None = Field(None, min_length=1, max_length=128)


@router.post("", status_code=202)
def link_node(body: NewNode, request: Request, caller: Principal = Depends(auth.principal),
              ctl=Depends(controller)):
    """Link a compute node: the ``link_node`` job (202 and the job's location); the node
    belongs to the tenant asked for (admins of it only)."""
    with db.session(ctl.url) as sess:
        tenant_id, tenant_name = tenants.tenant_for_new(
            sess, caller, body.tenant, "admin", "You may not link nodes: you are admin of no tenant.")
        if body.name is not None:
            existing = sess.scalar(select(ComputeNode.tenant_id).where(ComputeNode.name == body.name))
            if existing is not None and existing not in caller.roles:
                raise ApiError(404, "No compute node named {}.".format(body.name))
            if existing is not None and existing != tenant_id:
                raise ApiError(409, "Compute node {} already belongs to tenant {}.".format(
                    body.name, caller.roles[existing][0]))
    target = body.name or body.host
    audit.note(request, target=target, tenant=tenant_name)
    url = ctl.url

    def claim_node(tag, data):
        # The runners' step records a new node in tenant default; it is the caller's at once.
        # A node linked again keeps its tenant.
        if data.get("name") == "inventory:add_node" and data.get("status") == "success":
            with db.session(url) as sess:
                clipboard = sess.scalar(select(Job.clipboard).where(Job.id == int(data["job"]))) or {}
                name = clipboard.get("name")
                if not name or clipboard.get("relink"):
                    return
                sess.execute(update(ComputeNode).where(ComputeNode.name == name).values(tenant_id=tenant_id))

    return start_job(request, ctl, lambda job_ctl: operations.link_node(
        job_ctl, body.host, user=body.user, port=body.port, name=body.name, slots=body.slots,
        subnet=body.subnet, http_port=body.http_port), tenant_id, target, on_event=claim_node)


@router.delete("/{name}")
def unlink_node(request: Request, name: str = Path(min_length=1, max_length=255), force: bool = False,
                caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Unlink a compute node (admins of its tenant): 200 with ``unlink_node``'s record;
    409 while environments live on it, unless ``?force=true`` (they are left orphaned)."""
    with db.session(ctl.url) as sess:
        found = sess.execute(select(ComputeNode.tenant_id, Tenant.name)
                             .outerjoin(Tenant, Tenant.id == ComputeNode.tenant_id)
                             .where(ComputeNode.name == name)).first()
    what = "compute node named {}".format(name)
    if found is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, found[0], "admin", what)
    audit.note(request, target=name, tenant=found[1])
    try:
        result = operations.unlink_node(ctl, name, force=force)
    except CorpusError as exc:
        if "still holds" in str(exc):
            raise ApiError(409, str(exc)) from None
        raise
    orphaned = result.get("orphaned") or []
    audit.note(request, result="node {} unlinked{}".format(
        name, "; orphaned: " + ", ".join(orphaned) if orphaned else ""))
    return result
