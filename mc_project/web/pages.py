"""The pages a user reads: fleet, environment, job, jobs, activity.

Each one asks the REST API's own route functions (``mc_project.api.routers``) for what
it shows, as the caller: the same queries, the same tenant rule (another tenant's
object is 404), the same roles. Only how it looks is the page's.
"""

import datetime
import glob
import json
import os

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import select

from mc_project.api.deps import MAX_LIMIT, Page, controller
from mc_project.api.errors import ApiError, sentence
from mc_project.api.routers import audit as audit_routes
from mc_project.api.routers import environments as env_routes
from mc_project.api.routers import jobs as job_routes
from mc_project.api.routers import nodes as node_routes
from mc_project.api.routers import projects as project_routes
from mc_project.api.tenants import RANK, Principal
from mc_project.common import messages
from mc_project.common.vocabulary import ENV_TYPES
from mc_project.controller import envs
from mc_project.inventory import db
from mc_project.inventory.models import JOB_STATUSES, AuditEntry
from mc_project.web import chart, render
from mc_project.web.session import viewer

router = APIRouter(prefix="/web", include_in_schema=False)

EnvName = Path(min_length=1, max_length=255)
ProjectName = Path(min_length=1, max_length=64)
JobId = Path(ge=1, le=2 ** 62)
# The steps whose failure a job's page points at (the first one of them).
FAILING = ("failed", "undo_failed", "interrupted")
# Jobs whose page offers to finish or take back what they did.
UNDOABLE = ("interrupted",)
CREATED_BY_ACTIONS = ("POST /v1/environments", "POST /web/environments")


def role_in(caller: Principal, tenant_name):
    for name, role in caller.roles.values():
        if name == tenant_name:
            return role
    return None


def may(caller, tenant_name, role):
    held = role_in(caller, tenant_name)
    return held is not None and RANK[held] >= RANK[role]


def deploys_somewhere(caller):
    return bool(caller.tenant_ids("deployer"))


def _last_seen(opts, minion_id):
    """When the master last cached ``minion_id``'s grains and pillar: the newest file of
    Salt's minion data cache for it, written when the minion compiles its pillar (its start,
    a pillar refresh, a state run) -- not at each answer to a call."""
    cachedir = opts.get("cachedir")
    if not cachedir or not minion_id:
        return None
    found = glob.glob(os.path.join(cachedir, "minions", minion_id, "*")) + glob.glob(
        os.path.join(cachedir, "*", minion_id + ".p"))
    times = [os.path.getmtime(path) for path in found if os.path.exists(path)]
    if not times:
        return None
    return datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc)


def _created_by(url, names):
    """Who asked for each environment of ``names`` (the audit's newest accepted request)."""
    if not names:
        return {}
    with db.session(url) as sess:
        rows = sess.execute(select(AuditEntry.target, AuditEntry.user).where(
            AuditEntry.target.in_(names), AuditEntry.action.in_(CREATED_BY_ACTIONS),
            AuditEntry.status < 400).order_by(AuditEntry.id)).all()
    return {target: user for target, user in rows}


@router.get("/")
def fleet(request: Request, tenant: str | None = Query(None, max_length=128),
          type: str | None = Query(None, max_length=16),  # noqa: A002 (the API's word)
          node: str | None = Query(None, max_length=255), caller: Principal = Depends(viewer)):
    """Nodes and environments of the caller's tenants, filtered, with counts and a chart."""
    tenant = tenant or None
    node = node or None
    env_type = type if type in ENV_TYPES else None
    everything = Page(limit=MAX_LIMIT, offset=0)
    nodes = node_routes.list_nodes(request, page=everything, tenant=tenant, caller=caller)["items"]
    for row in nodes:
        row["last_seen"] = _last_seen(request.app.state.ctl.opts, row["minion_id"])
        row["used_slots"] = row["slots"] - row["free_slots"]
    listed = env_routes.list_environments(request, page=everything, tenant=tenant, type=env_type, node=node,
                                          status=None, caller=caller)
    rows = listed["items"]
    created_by = _created_by(request.app.state.url, [row["name"] for row in rows])
    for row in rows:
        row["created_by"] = created_by.get(row["name"])
    by_status, by_type = {}, {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
        by_type[row["type"]] = by_type.get(row["type"], 0) + 1
    counts = {"nodes": len(nodes), "environments": listed["total"], "by_status": by_status, "by_type": by_type,
              "slots": sum(row["slots"] for row in nodes), "free": sum(row["free_slots"] for row in nodes)}
    return render.page(request, "fleet.html", {
        "nav": "fleet", "nodes": nodes, "envs": rows, "counts": counts, "chart": chart.slots_per_node(nodes),
        "filters": {"tenant": tenant, "type": env_type, "node": node},
        "tenants": caller.described()["tenants"], "types": ENV_TYPES,
        "node_names": sorted(row["name"] for row in nodes),
        "can_create": deploys_somewhere(caller),
        "deploy_tenants": [row["name"] for row in caller.described()["tenants"]
                           if RANK[row["role"]] >= RANK["deployer"]]})


def access_of(ctl, row):
    """How to reach environment ``row``: its URLs, SSH command line and host."""
    access = {"urls": [], "ssh": None, "ssh_via_node": None}
    clip = envs.env_clipboard(ctl, row["name"])
    if clip["node"] and clip["domain"]:
        access["urls"] = envs.access_details(clip)["urls"]
    if row["ssh"]:
        address, _, port = row["ssh"].rpartition(":")
        host = clip["domain"] or address
        access["ssh"] = "ssh -p {} root@{}".format(port, host)
        access["ssh_via_node"] = "ssh -p {} root@{}".format(port, address) if host != address else None
    return access


@router.get("/environments/{name}")
def environment(request: Request, name: str = EnvName, caller: Principal = Depends(viewer),
                ctl=Depends(controller)):
    row = env_routes.get_environment(request, name=name, caller=caller)
    projects = project_routes.list_projects(request, name=name, caller=caller)["items"]
    recent = job_routes.list_jobs(request, page=Page(limit=10, offset=0), kind=None, target=name, status=None,
                                  caller=caller)["items"]
    return render.page(request, "environment.html", {
        "nav": "fleet", "env": row, "access": access_of(ctl, row), "projects": projects, "jobs": recent,
        "can_act": may(caller, row["tenant"], "deployer")})


@router.get("/environments/{name}/projects/{project}/panel")
def project_panel(request: Request, name: str = EnvName, project: str = ProjectName,
                  caller: Principal = Depends(viewer), ctl=Depends(controller)):
    """A project's live release, health and releases, asked of its minion: loaded after the
    page so a slow minion does not hold the page; a minion that does not answer is one
    sentence in the panel."""
    row = env_routes.get_environment(request, name=name, caller=caller)
    context = {"env": row, "project": project, "status": None, "releases": [], "problem": None,
               "can_act": may(caller, row["tenant"], "deployer")}
    try:
        context["status"] = project_routes.get_project(request, name=name, project=project, caller=caller,
                                                       ctl=ctl)["status"]
        context["releases"] = list(reversed(project_routes.releases(
            request, name=name, project=project, caller=caller, ctl=ctl)["items"]))
    except ApiError as exc:
        if exc.status == 404:
            raise
        context["problem"] = exc.message
    except Exception as exc:  # the minion, Salt or the project: the panel says so in one sentence
        context["problem"] = sentence(messages.reason(exc))
    return render.page(request, "_project.html", context)


@router.get("/jobs")
def job_list(request: Request, kind: str | None = Query(None, max_length=64),
             target: str | None = Query(None, max_length=255), status: str | None = Query(None, max_length=16),
             caller: Principal = Depends(viewer)):
    status = status if status in JOB_STATUSES else None
    listed = job_routes.list_jobs(request, page=Page(limit=100, offset=0), kind=kind or None,
                                  target=target or None, status=status, caller=caller)
    timed = [{"id": job["id"], "target": job["target"], "status": job["status"],
              "seconds": _seconds(job)} for job in reversed(listed["items"]) if job["ended"]]
    return render.page(request, "jobs.html", {
        "nav": "jobs", "jobs": listed["items"], "total": listed["total"], "statuses": JOB_STATUSES,
        "filters": {"kind": kind, "target": target, "status": status},
        "chart": chart.durations(timed[-40:])})


def _seconds(job):
    start, end = render.parse_time(job["started"]), render.parse_time(job["ended"])
    return (end - start).total_seconds() if start and end else None


def job_context(request, job_id, caller):
    summary = job_routes.get_job(request, job_id=job_id, caller=caller)
    steps = job_routes.get_steps(request, job_id=job_id, caller=caller)["items"]
    failing = next((step["index"] for step in steps if step["status"] in FAILING), None)
    done = sum(1 for step in steps if step["status"] == "success")
    return {"job": summary, "steps": steps, "failing": failing, "done": done,
            "live": summary["status"] in ("pending", "running"),
            "can_act": deploys_somewhere(caller) and summary["status"] in UNDOABLE,
            "result_json": json.dumps(summary["result"], indent=2) if summary["result"] else None}


@router.get("/jobs/{job_id}")
def job(request: Request, job_id: int = JobId, caller: Principal = Depends(viewer)):
    return render.page(request, "job.html", dict(job_context(request, job_id, caller), nav="jobs"))


@router.get("/activity")
def activity(request: Request, user: str | None = Query(None, max_length=255),
             q: str | None = Query(None, max_length=255), caller: Principal = Depends(viewer)):
    """The audit (admins): who did what, newest first; by user, and by a word of the action,
    target or result."""
    listed = audit_routes.list_audit(request, page=Page(limit=MAX_LIMIT, offset=0), user=user or None,
                                     caller=caller)
    rows = listed["items"]
    if q:
        word = q.lower()
        rows = [row for row in rows if any(word in str(row[key] or "").lower()
                                           for key in ("action", "target", "result", "tenant"))]
    return render.page(request, "activity.html", {"nav": "activity", "rows": rows, "total": listed["total"],
                                                  "filters": {"user": user, "q": q}})
