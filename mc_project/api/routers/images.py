"""``/v1/images``: the container images environments are cloned from.

* ``GET /v1/images``: every version not removed (name, version, status, built, size, nodes,
  environments using it);
* ``POST /v1/images`` (admins): build the next version of an image, a job (202);
* ``GET /v1/images/{ref}``: one version (``NAME``: its current one, ``NAME:VERSION``);
* ``GET /v1/images/{ref}/log``: its build log (a failed build's too);
* ``DELETE /v1/images/{ref}`` (admins): remove it from its nodes (``NAME``: every version);
  409 while an environment uses it or it is the default image's current version.
"""

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from mc_project.api import audit, auth, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.controller import images
from mc_project.inventory import db

router = APIRouter(prefix="/images", tags=["images"])

Ref = Path(min_length=1, max_length=80)


class NewImage(Strict):
    name: str = Field(min_length=1, max_length=40)
    states: str | None = Field(None, min_length=1, max_length=1024)  # a directory on the controller
    node: str | None = Field(None, min_length=1, max_length=255)


def _admin(caller, what):
    if not caller.is_admin():
        raise ApiError(403, "You may not {}: you are admin of no tenant.".format(what))


@router.get("")
def list_images(request: Request, page: Page = Depends(), name: str | None = Query(None, max_length=40),
                caller: Principal = Depends(auth.principal)):
    """Every image version not removed, by name and version (filter: name)."""
    with refusals():
        rows = images.list_images(request.app.state.url, name)
    return page.answer(rows[page.offset:page.offset + page.limit], len(rows))


@router.post("", status_code=202)
def build_image(body: NewImage, request: Request, caller: Principal = Depends(auth.principal),
                ctl=Depends(controller)):
    """Build the next version of image ``name`` from the state tree ``states`` (a directory on the
    controller; none: the golden image as it is) on ``node`` (default: every active node)."""
    _admin(caller, "build images")
    with db.session(ctl.url) as sess:
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, None, "admin", "You may not build images.")
    with refusals():
        images.build_request(ctl, body.name, body.states, body.node, caller.name)  # refused before any job
    audit.note(request, target=body.name, tenant=tenant_name)
    return start_job(request, ctl, lambda job_ctl: images.build_image(
        job_ctl, body.name, body.states, body.node, who=caller.name), tenant_id, body.name)


@router.get("/{ref}")
def get_image(request: Request, ref: str = Ref, caller: Principal = Depends(auth.principal)):
    with refusals():
        return images.get_image(request.app.state.url, ref)


@router.get("/{ref}/log")
def get_log(request: Request, ref: str = Ref, caller: Principal = Depends(auth.principal)):
    """An image version's build log."""
    with refusals():
        found = images.get_image(request.app.state.url, ref, with_log=True)
    return {"ref": found["ref"], "status": found["status"], "message": found["message"], "log": found["log"]}


@router.delete("/{ref}")
def remove_image(request: Request, ref: str = Ref, caller: Principal = Depends(auth.principal),
                 ctl=Depends(controller)):
    """Remove an image version (``NAME``: every version) from its nodes; its log stays."""
    _admin(caller, "remove images")
    audit.note(request, target=ref)
    with refusals():
        return images.remove_image(ctl, ref)
