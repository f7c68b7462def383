"""``/v1/environments``: list, show, create (init_env), destroy, redeploy, resize, credentials."""

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field
from sqlalchemy import select, update

from mc_project.api import audit, auth, envquery, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.common.vocabulary import ENV_TYPES
from mc_project.controller import operations
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Tenant

router = APIRouter(prefix="/environments", tags=["environments"])

EnvName = Path(min_length=1, max_length=255)


class NewEnvironment(Strict):
    name: str = Field(min_length=1, max_length=40)
    type: Literal[ENV_TYPES] = "dev"
    project: str | None = Field(None, min_length=1, max_length=64)
    host: str | None = Field(None, min_length=1, max_length=255)
    disk_size_mb: int | None = Field(None, ge=1, le=2 ** 31)
    tenant: str | None = Field(None, min_length=1, max_length=128)
    requester: str | None = Field(None, min_length=3, max_length=255)
    image: str | None = Field(None, min_length=1, max_length=255)


class Redeploy(Strict):
    image: str | None = Field(None, min_length=1, max_length=255)


class Resize(Strict):
    size_mb: int = Field(ge=1, le=2 ** 31)
    grow: bool


@router.get("")
def list_environments(request: Request, page: Page = Depends(),
                      tenant: str | None = Query(None, max_length=128),
                      type: Literal[ENV_TYPES] | None = None,  # noqa: A002 (the API's word)
                      node: str | None = Query(None, max_length=255),
                      status: str | None = Query(None, max_length=32),
                      caller: Principal = Depends(auth.principal)):
    """The environments of your tenants (filters: tenant, type, node, status)."""
    with db.session(request.app.state.url) as sess:
        rows, total = envquery.page(sess, caller, page.limit, page.offset, tenant=tenant, env_type=type,
                                    node=node, status=status)
    return page.answer(rows, total)


@router.get("/{name}")
def get_environment(request: Request, name: str = EnvName, caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        return envquery.find(sess, caller, name)[1]


@router.post("", status_code=202)
def create_environment(body: NewEnvironment, request: Request, caller: Principal = Depends(auth.principal),
                       ctl=Depends(controller)):
    """Create an environment: the ``init_env`` job (202 and the job's location)."""
    with db.session(ctl.url) as sess:
        tenant_id, tenant_name = tenants.tenant_for_new(
            sess, caller, body.tenant, "deployer",
            "You may not create environments: you are deployer or admin of no tenant.")
        if body.host is not None:
            node_tenant = sess.scalar(select(ComputeNode.tenant_id).where(ComputeNode.name == body.host))
            if node_tenant is None or node_tenant not in caller.roles:
                raise ApiError(404, "No compute node named {}.".format(body.host))
    audit.note(request, target=body.name, tenant=tenant_name)
    url = ctl.url

    def claim_environment(tag, data):
        # The environment belongs to the caller's tenant from its first step on.
        if data.get("name") == "env:register" and data.get("status") == "success":
            with db.session(url) as sess:
                sess.execute(update(Environment).where(Environment.name == body.name)
                             .values(tenant_id=tenant_id))

    return start_job(request, ctl, lambda job_ctl: operations.init_env(
        job_ctl, body.name, body.type, project=body.project, host=body.host, requester=body.requester,
        disk_size_mb=body.disk_size_mb, image=body.image), tenant_id, body.name, on_event=claim_environment)


def _acting_on(request, ctl, caller, name, role="deployer"):
    with db.session(ctl.url) as sess:
        env, _row = envquery.find(sess, caller, name, role)
        tenant_name = sess.scalar(select(Tenant.name).where(Tenant.id == env.tenant_id))
    audit.note(request, target=name, tenant=tenant_name)
    return env


@router.delete("/{name}", status_code=202)
def destroy_environment(request: Request, name: str = EnvName, caller: Principal = Depends(auth.principal),
                        ctl=Depends(controller)):
    """Destroy an environment: the ``destroy_env`` job."""
    env = _acting_on(request, ctl, caller, name)
    return start_job(request, ctl, lambda job_ctl: operations.destroy_env(job_ctl, name), env.tenant_id, name)


@router.post("/{name}/redeploy", status_code=202)
def redeploy_environment(request: Request, name: str = EnvName, body: Redeploy | None = None,
                         caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Move an environment to a new container beside its old one: the ``redeploy`` job."""
    env = _acting_on(request, ctl, caller, name)
    image = body.image if body else None
    return start_job(request, ctl, lambda job_ctl: operations.redeploy(job_ctl, name, image=image),
                     env.tenant_id, name)


@router.post("/{name}/resize", status_code=202)
def resize_environment(body: Resize, request: Request, name: str = EnvName,
                       caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Grow (``grow: true``) or trim an environment's disk to ``size_mb``."""
    env = _acting_on(request, ctl, caller, name)
    return start_job(request, ctl, lambda job_ctl: operations.resize_env(job_ctl, name, body.size_mb, body.grow),
                     env.tenant_id, name)


@router.get("/{name}/credentials")
def credentials(request: Request, name: str = EnvName, caller: Principal = Depends(auth.principal),
                ctl=Depends(controller)):
    """Root password and SSH private key: deployers of the environment's tenant only."""
    with db.session(ctl.url) as sess:
        envquery.find(sess, caller, name, "deployer")
    found = operations.credentials(ctl, name)
    return {"name": found["name"], "ssh": found["ssh"], "root_password": found["root_password"],
            "ssh_private_key": found["ssh_private_key"]}
