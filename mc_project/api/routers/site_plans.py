"""Sites planned and applied as Terraform does: ``/v1/plans`` and ``/v1/sites/{site}``.

* ``POST /v1/plans`` (deployers): ``{"blueprint": YAML text or a mapping}``, or
  ``{"site": NAME, "destroy": true}`` for the plan removing all the site owns: the
  blueprint compared with the inventory, stored; 201 with its id, actions and summary;
* ``GET /v1/plans/{id}``: a stored plan;
* ``POST /v1/plans/{id}/apply``: runs exactly that plan as one job (202 and the job),
  409 with one sentence when the inventory changed since the plan or it was applied;
* ``GET /v1/sites/{site}/status``: what the site owns and its drift from what was applied;
* ``DELETE /v1/sites/{site}``: plans the site's destruction and applies it (202).

Plans touching domains need an admin of the tenant (as making a domain does).
(``/v1/sites/{site}/walks`` is the site walks' router, ``sites.py``.)
"""

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from mc_project.api import audit, auth, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.controller import site_apply, site_blueprint
from mc_project.inventory import db
from mc_project.inventory.site_models import SiteObject

router = APIRouter(tags=["sites"])

Site = Path(min_length=1, max_length=64)
REFUSAL = "You may not plan sites: you are deployer or admin of no tenant."


class NewPlan(Strict):
    blueprint: Any = None
    site: str | None = Field(None, min_length=1, max_length=64)
    destroy: bool = False
    tenant: str | None = Field(None, min_length=1, max_length=128)


def _site_tenant(sess, site):
    return sess.scalar(select(SiteObject.tenant_id).where(SiteObject.site == site).limit(1))


def _role_for(actions):
    return "admin" if any(action["kind"] == "domain" for action in actions) else "deployer"


def _blueprint_of(body):
    if body.destroy:
        if body.blueprint is not None or not body.site:
            raise ApiError(400, "A destroy plan names its site and takes no blueprint.")
        return site_blueprint.empty(site_apply.check_site_name(body.site))
    if body.blueprint is None:
        raise ApiError(400, "A plan needs a blueprint (YAML text or a mapping), or a site and destroy: true.")
    blueprint = site_blueprint.parse(body.blueprint)
    if body.site is not None and body.site != blueprint.site:
        raise ApiError(400, "The blueprint is site {}, not {}.".format(blueprint.site, body.site))
    return blueprint


def _plan(sess, caller, body):
    with refusals():
        blueprint = _blueprint_of(body)
        owner = _site_tenant(sess, blueprint.site)
        if owner is not None:
            tenants.check(caller, owner, "deployer", "site {}".format(blueprint.site))
            tenant_id = owner
            wanted = body.tenant or blueprint.tenant
            if wanted is not None and tenants.tenant_id(sess, wanted) != owner:
                raise ApiError(409, "Site {} belongs to another tenant than {}.".format(blueprint.site, wanted))
        elif body.destroy:
            raise ApiError(404, "Site {} owns nothing: there is nothing to destroy.".format(blueprint.site))
        else:
            tenant_id, _name = tenants.tenant_for_new(sess, caller, body.tenant or blueprint.tenant, "deployer",
                                                      REFUSAL)
        plan = site_apply.store_plan(sess, blueprint, tenant_id, who=caller.name, destroy=body.destroy)
    tenants.check(caller, tenant_id, _role_for(plan["actions"]), "site {}".format(blueprint.site))
    return plan


@router.post("/plans", status_code=201)
def create_plan(body: NewPlan, request: Request, caller: Principal = Depends(auth.principal)):
    """Compare a blueprint with the inventory and store the plan (its id, actions, summary)."""
    with db.session(request.app.state.url) as sess:
        plan = _plan(sess, caller, body)
    audit.note(request, target=plan["site"], result="plan {}".format(plan["id"]))
    return plan


def _stored(sess, caller, plan_id, role="viewer"):
    with refusals():
        row = site_apply.find_plan(sess, plan_id)
    tenants.check(caller, row.tenant_id, role, "plan {}".format(plan_id))
    return site_apply.plan_record(row)


@router.get("/plans/{plan_id}")
def get_plan(request: Request, plan_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        return _stored(sess, caller, plan_id)


def _start(request, ctl, plan):
    tenant_id = plan["tenant_id"]
    with db.session(ctl.url) as sess:
        with refusals():
            site_apply.check_applicable(sess, site_apply.find_plan(sess, plan["id"]))
    if not plan["actions"]:
        with refusals():
            site_apply.apply(ctl, plan["id"])
        return JSONResponse({"job_id": None, "plan": plan["id"], "message": "No changes: nothing to apply."})
    return start_job(request, ctl, lambda job_ctl: site_apply.apply(job_ctl, plan["id"]), tenant_id, plan["site"])


@router.post("/plans/{plan_id}/apply", status_code=202)
def apply_plan(request: Request, plan_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal),
               ctl=Depends(controller)):
    """Run exactly the stored plan as one job (202); 409 when the inventory changed since."""
    with db.session(ctl.url) as sess:
        plan = _stored(sess, caller, plan_id, "deployer")
    tenants.check(caller, plan["tenant_id"], _role_for(plan["actions"]), "plan {}".format(plan_id))
    audit.note(request, target=plan["site"])
    return _start(request, ctl, plan)


@router.get("/sites/{site}/status")
def site_status(request: Request, site: str = Site, caller: Principal = Depends(auth.principal)):
    """What the site owns, and its drift from what was applied (``drifted``, ``drift``)."""
    with db.session(request.app.state.url) as sess:
        with refusals():
            site_apply.check_site_name(site)
            owner = _site_tenant(sess, site)
            if owner is None or owner not in caller.roles:
                raise ApiError(404, "No site {}.".format(site))
            return site_apply.status(sess, site, owner)


@router.delete("/sites/{site}", status_code=202)
def destroy_site(request: Request, site: str = Site, caller: Principal = Depends(auth.principal),
                 ctl=Depends(controller)):
    """Plan the removal of everything the site owns and apply that plan (202 and the job)."""
    with db.session(ctl.url) as sess:
        plan = _plan(sess, caller, NewPlan(site=site, destroy=True))
    audit.note(request, target=site, result="plan {}".format(plan["id"]))
    return _start(request, ctl, plan)
