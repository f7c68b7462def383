"""``/v1/sites/{site}/walks``: walk a site (its fronts and backends), a walk's results,
and the site's walks. A site is a compute node or a domain (``health/walks.py``);
only the environments of your tenants are walked.

* ``PUT /v1/sites/{site}/walks`` (deployers): start a walk; 202 with its id;
* ``GET /v1/sites/{site}/walks/{id}``: its status and per-target results;
* ``GET /v1/sites/{site}/walks``: the site's walks, newest first.
"""

import threading

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from mc_project.api import audit, auth
from mc_project.api.background import worker_controller
from mc_project.api.deps import Page, Strict, controller
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.errors import CorpusError
from mc_project.health import walk_runs, walks

router = APIRouter(prefix="/sites", tags=["sites"])

Site = Path(min_length=1, max_length=255)


class WalkRequest(Strict):
    timeout: float = Field(walks.DEFAULT_TIMEOUT, gt=0, le=60)


def _site(site):
    try:
        return walks.check_site(site)
    except CorpusError as exc:
        raise ApiError(400, str(exc)) from None


@router.put("/{site}/walks", status_code=202)
def start_walk(request: Request, site: str = Site, body: WalkRequest | None = None,
               caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Start a walk of ``site``: 202 with the walk's id and location."""
    site = _site(site)
    timeout = body.timeout if body is not None else walks.DEFAULT_TIMEOUT
    with refusals():
        clipboard = walk_runs.prepare(ctl.url, site, caller.tenant_ids("deployer"), timeout)
    walk_id = walk_runs.create(ctl, clipboard)
    job_ctl = worker_controller(ctl)
    threading.Thread(target=walk_runs.run, args=(job_ctl, walk_id), name="corpus-site-walk", daemon=True).start()
    location = "/v1/sites/{}/walks/{}".format(site, walk_id)
    audit.note(request, target=site, result="walk {} started".format(walk_id))
    return JSONResponse({"walk_id": walk_id, "job_id": walk_id, "location": location,
                         "targets": len(clipboard["targets"])}, status_code=202, headers={"Location": location})


@router.get("/{site}/walks/{walk_id}")
def get_walk(request: Request, site: str = Site, walk_id: int = Path(ge=1, le=2 ** 31),
             caller: Principal = Depends(auth.principal)):
    """A walk: its status, and each target's answer (status, seconds, error)."""
    site = _site(site)
    found = walk_runs.record_of(request.app.state.url, walk_id, site, caller.tenant_ids())
    if found is None:
        raise ApiError(404, "No walk {} of site {}.".format(walk_id, site))
    return found


@router.get("/{site}/walks")
def list_walks(request: Request, site: str = Site, page: Page = Depends(),
               caller: Principal = Depends(auth.principal)):
    """The walks of ``site``, newest first (without their per-target results)."""
    site = _site(site)
    items, total = walk_runs.history(request.app.state.url, site, caller.tenant_ids(), page.limit, page.offset)
    return page.answer(items, total)
