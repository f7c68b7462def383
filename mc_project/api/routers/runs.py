"""``POST /v1/runs`` (a Salt state run) and ``POST /v1/playbooks`` (an Ansible playbook) on
the hosts a target names in one of your tenants: each a job (202 and its location),
whose ``/v1/jobs/{id}/events`` stream sends ``event: host`` per state or task result on
a host, and whose result is the summary per host.

A state run needs the deployer role in the tenant. A playbook needs admin: Ansible
runs its lookups and its local tasks on the controller itself, with the controller's
rights, so it is trusted as an admin is. The playbook is sent as text: the controller
never reads a path a caller names.
"""

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from mc_project.api.errors import refusals
from mc_project.api import auth, tenants
from mc_project.api.accepted import start_job
from mc_project.api.deps import Strict, controller
from mc_project.api.tenants import Principal
from mc_project.controller import inventory_runs, playbooks
from mc_project.inventory import db

router = APIRouter(tags=["runs"])

Target = Field(min_length=1, max_length=255)
TenantField = Field(None, min_length=1, max_length=128)


class StateRun(Strict):
    target: str = Target
    function: Literal[inventory_runs.STATE_FUNCTIONS] = "state.apply"
    sls: list[str] = Field(default_factory=list, max_length=inventory_runs.MAX_SLS)
    test: bool = False
    tenant: str | None = TenantField


class PlaybookRun(Strict):
    target: str = Target
    playbook: str = Field(min_length=1, max_length=playbooks.MAX_BYTES)
    check: bool = False
    tenant: str | None = TenantField


def _tenant(ctl, caller, wanted, role, what):
    with db.session(ctl.url) as sess:
        return tenants.tenant_for_new(sess, caller, wanted, role,
                                      "You may not run {}: you are {} of no tenant.".format(what, role))


@router.post("/runs", status_code=202)
def run_state(body: StateRun, request: Request, caller: Principal = Depends(auth.principal),
              ctl=Depends(controller)):
    """Run ``function`` (state.apply, state.sls, state.highstate) with ``sls`` on the minions of
    the hosts ``target`` names (a group, ``key=value`` label, region, or ``group:``,
    ``region:``, ``cell:``, ``label:``, ``host:`` NAME); ``test`` is Salt's ``test=True``."""
    tenant_id, _name = _tenant(ctl, caller, body.tenant, "deployer", "states")
    with refusals():
        clipboard = inventory_runs.state_request(ctl, tenant_id, body.target, body.function, body.sls, body.test)
    return start_job(request, ctl, lambda job_ctl: inventory_runs.run_state(job_ctl, clipboard), tenant_id,
                     body.target)


@router.post("/playbooks", status_code=202)
def run_playbook(body: PlaybookRun, request: Request, caller: Principal = Depends(auth.principal),
                 ctl=Depends(controller)):
    """Run the playbook sent (its YAML text) with ansible-runner over SSH on the hosts ``target``
    names, through a generated inventory of just them; ``check`` is Ansible's ``--check``."""
    tenant_id, _name = _tenant(ctl, caller, body.tenant, "admin", "playbooks")
    with refusals():
        clipboard = inventory_runs.playbook_request(ctl, tenant_id, body.target, body.playbook, body.check)
    return start_job(request, ctl, lambda job_ctl: inventory_runs.run_playbook(job_ctl, clipboard), tenant_id,
                     body.target)
