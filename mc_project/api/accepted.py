"""Starting a job for a caller: in the caller's tenant, answered ``202 Accepted``
with the job's id and ``Location``."""

from fastapi.responses import JSONResponse
from sqlalchemy import update

from mc_project.api import audit, background
from mc_project.inventory import db
from mc_project.inventory.models import Job


def start_job(request, ctl, operation, tenant_id, target, on_event=None):
    """Run ``operation(ctl)`` as a job of tenant ``tenant_id``; the 202 answer."""
    url = ctl.url

    def tag_tenant(tag, data):
        if tag.endswith("/pending") and "step" not in data:
            with db.session(url) as sess:
                sess.execute(update(Job).where(Job.id == int(data["job"])).values(tenant_id=tenant_id))
        if on_event is not None:
            on_event(tag, data)

    job_id = background.start(ctl, operation, on_event=tag_tenant)
    location = "/v1/jobs/{}".format(job_id)
    audit.note(request, result="job {} started".format(job_id), target=target)
    return JSONResponse({"job_id": job_id, "location": location}, status_code=202,
                        headers={"Location": location})
