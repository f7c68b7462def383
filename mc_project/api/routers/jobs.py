"""``/v1/jobs``: list, one, steps, undo, resume, and the live events of a job.

A job belongs to the tenant of the caller who started it; one a runner started
belongs to its target's (an environment or a node), or to the default tenant
when its target is gone.
"""

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, func, select

from mc_project import jobs
from mc_project.api import accepted, auth, results, sse, tenants
from mc_project.api.deps import Page, controller
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import (
    DEFAULT_TENANT,
    JOB_STATUSES,
    ComputeNode,
    Environment,
    Job,
    Tenant,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Path(ge=1, le=2 ** 62)

def _tenant_of_target():
    """The tenant of a runner's job, as a SQL expression: its target's, else the default one."""
    env = select(Environment.tenant_id).where(Environment.name == Job.target).scalar_subquery()
    node = select(ComputeNode.tenant_id).where(ComputeNode.name == Job.target).scalar_subquery()
    default = select(Tenant.id).where(Tenant.name == DEFAULT_TENANT).scalar_subquery()
    return func.coalesce(Job.tenant_id, env, node, default)

def _visible(caller):
    return _tenant_of_target().in_(caller.tenant_ids())

def _job_tenant(sess, job_id, caller, role="viewer"):
    tenant_id = sess.scalar(select(_tenant_of_target()).where(Job.id == job_id))
    if not sess.scalar(select(Job.id).where(Job.id == job_id)):
        raise ApiError(404, "No job {}.".format(job_id))
    tenants.check(caller, tenant_id, role, "job {}".format(job_id))
    return tenant_id

@router.get("")
def list_jobs(request: Request, page: Page = Depends(), kind: str | None = Query(None, max_length=64),
              target: str | None = Query(None, max_length=255), status: str | None = Query(None, max_length=16),
              caller: Principal = Depends(auth.principal)):
    """Jobs of your tenants, newest first (filters: kind, target, status)."""
    if status is not None and status not in JOB_STATUSES:
        raise ApiError(422, "Invalid status: use one of {}.".format(", ".join(JOB_STATUSES)))
    where = [_visible(caller)]
    for column, value in ((Job.kind, kind), (Job.target, target), (Job.status, status)):
        if value is not None:
            where.append(column == value)
    with db.session(request.app.state.url) as sess:
        total = sess.scalar(select(func.count(Job.id)).where(and_(*where)))
        rows = sess.scalars(select(Job).where(and_(*where)).order_by(Job.id.desc())
                            .limit(page.limit).offset(page.offset)).all()
        return page.answer([results.summary(jobs.describe(row)) for row in rows], total)

@router.get("/{job_id}")
def get_job(request: Request, job_id: int = JobId, caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        _job_tenant(sess, job_id, caller)
    return results.summary(jobs.Jobs(request.app.state.url).status(job_id))

@router.get("/{job_id}/steps")
def get_steps(request: Request, job_id: int = JobId, caller: Principal = Depends(auth.principal)):
    """Every step of the job: index, name, status, times, log."""
    with db.session(request.app.state.url) as sess:
        _job_tenant(sess, job_id, caller)
    state = jobs.Jobs(request.app.state.url).status(job_id)
    return {"items": state["steps"], "total": len(state["steps"]), "limit": len(state["steps"]), "offset": 0}

def _again(request, ctl, caller, job_id, action):
    with db.session(ctl.url) as sess:
        tenant_id = _job_tenant(sess, job_id, caller, "deployer")
        target = sess.scalar(select(Job.target).where(Job.id == job_id))
    try:
        return accepted.start_job(request, ctl, lambda job_ctl: getattr(job_ctl.jobs(), action)(job_id),
                                  tenant_id, target)
    except CorpusError as exc:
        raise ApiError(409, str(exc)) from None

@router.post("/{job_id}/undo", status_code=202)
def undo(request: Request, job_id: int = JobId, caller: Principal = Depends(auth.principal),
         ctl=Depends(controller)):
    """Take back the done steps of a job (interrupted, succeeded, or whose undo failed)."""
    return _again(request, ctl, caller, job_id, "undo")

@router.post("/{job_id}/resume", status_code=202)
def resume(request: Request, job_id: int = JobId, caller: Principal = Depends(auth.principal),
           ctl=Depends(controller)):
    """Run an interrupted job on from its first unfinished step."""
    return _again(request, ctl, caller, job_id, "resume")

@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def job_events(request: Request, job_id: int = JobId, caller: Principal = Depends(auth.principal),
               ctl=Depends(controller)):
    """Server-Sent Events: ``event: step`` per step change, then ``event: end``."""
    with db.session(ctl.url) as sess:
        _job_tenant(sess, job_id, caller)
    return StreamingResponse(sse.stream(request.app.state.ctl, job_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
