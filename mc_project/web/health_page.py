"""The web page's fleet health view (``/web/health``): each check's state on each host,
worst first, with a count per state, the silences in force and the last notifications.
Read-only; it asks the REST API's own route functions, as the caller."""

from fastapi import APIRouter, Depends, Query, Request

from mc_project.api.deps import Page
from mc_project.api.routers import checks as check_routes
from mc_project.api.routers import handlers as handler_routes
from mc_project.api.routers import silences as silence_routes
from mc_project.api.tenants import Principal
from mc_project.inventory.health_models import PENDING, STATES
from mc_project.web import render
from mc_project.web.session import viewer

router = APIRouter(prefix="/web", include_in_schema=False)

STATE_BADGES = {"OK": "ok", "WARNING": "warn", "CRITICAL": "bad", "UNKNOWN": "wait", PENDING: "wait"}
SHOWN = 500


@router.get("/health")
def health(request: Request, state: str | None = Query(None, max_length=16), caller: Principal = Depends(viewer)):
    state = state if state in STATES + (PENDING,) else None
    listed = check_routes.list_checks(request, page=Page(limit=SHOWN, offset=0), tenant=None, state=None, check=None,
                                      host=None, caller=caller)
    counts = {}
    for item in listed["items"]:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    rows = [item for item in listed["items"] if state is None or item["state"] == state]
    quiet = silence_routes.list_silences(request, page=Page(limit=50, offset=0), tenant=None, ended=False,
                                         caller=caller)["items"]
    told = handler_routes.list_notifications(request, page=Page(limit=20, offset=0), tenant=None, status=None,
                                             check=None, host=None, caller=caller)["items"]
    return render.page(request, "health.html", {
        "nav": "health", "checks": rows, "total": listed["total"], "counts": counts, "badges": STATE_BADGES,
        "states": STATES + (PENDING,), "filters": {"state": state}, "silences": quiet, "notifications": told})
