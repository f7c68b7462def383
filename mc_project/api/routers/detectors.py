"""``/v1/detectors``: the detector rules, a run on hosts, and the groups they found.

* ``GET /v1/detectors``: the rules (master option ``corpus_detectors``) and their schedule;
* ``POST /v1/detectors/run`` (deployers): run them now on the hosts of your tenants (or
  ``{"hosts": [...]}``), write the groups found; each host's result;
* ``GET /v1/detectors/state``: each host's detected groups;
* ``GET /v1/detectors/groups/{group}/target``: the group as a Salt list target.
"""


from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.health import detector_runs, detectors
from mc_project.inventory import db, detected_groups
from mc_project.inventory.fleet_rules import NotFound

router = APIRouter(prefix="/detectors", tags=["detectors"])


class RunRequest(Strict):
    hosts: list[str] | None = Field(None, max_length=10000)
    tenant: str | None = Field(None, min_length=1, max_length=128)
    timeout: int = Field(detector_runs.RUN_TIMEOUT, ge=1, le=600)



def _tenants(sess, caller, tenant, role="viewer"):
    ids = caller.tenant_ids(role)
    if tenant is not None:
        wanted = tenants.tenant_id(sess, tenant)
        if wanted is None or wanted not in caller.roles:
            raise ApiError(404, "No tenant named {}.".format(tenant))
        tenants.check(caller, wanted, role, "tenant named {}".format(tenant))
        ids = [wanted]
    return ids


@router.get("")
def list_detectors(request: Request, caller: Principal = Depends(auth.principal)):
    """The detector rules the hosts run, and every how many seconds (0: not scheduled)."""
    with refusals():
        found = detectors.settings(request.app.state.ctl.opts)
    return {"items": [rule.record() for rule in found["rules"]], "interval": found["interval"]}


@router.post("/run")
def run_detectors(body: RunRequest, request: Request, caller: Principal = Depends(auth.principal),
                  ctl=Depends(controller)):
    """Run the detectors now and write the groups found; each host's result."""
    with db.session(ctl.url) as sess:
        ids = _tenants(sess, caller, body.tenant, "deployer")
    if not ids:
        raise ApiError(403, "You may not run detectors: you are deployer or admin of no tenant.")
    audit.note(request, target=",".join(body.hosts or []) or "all hosts")
    with refusals():
        results = detector_runs.run(ctl, ids, body.hosts, timeout=body.timeout)
    return {"items": results, "total": len(results)}


@router.get("/state")
def detectors_state(request: Request, tenant: str | None = Query(None, max_length=128),
                    caller: Principal = Depends(auth.principal)):
    """Each host (with a minion) of your tenants and the groups its detectors put it in."""
    with db.session(request.app.state.url) as sess:
        items = detected_groups.state(sess, _tenants(sess, caller, tenant))
    return {"items": items, "total": len(items)}


@router.get("/groups/{group}/target")
def group_target(request: Request, group: str = Path(min_length=1, max_length=128),
                 tenant: str | None = Query(None, max_length=128), caller: Principal = Depends(auth.principal)):
    """The minions of a group (and of the groups inside it): ``salt -L`` takes ``tgt``."""
    minions, found = set(), False
    with db.session(request.app.state.url) as sess:
        for tenant_id in _tenants(sess, caller, tenant):
            try:
                minions.update(detected_groups.minions_of_group(sess, tenant_id, group))
                found = True
            except NotFound:
                continue
    if not found:
        raise ApiError(404, "No group named {}.".format(group))
    minions = sorted(minions)
    return {"group": group, "tgt_type": "list", "tgt": ",".join(minions), "minions": minions}
