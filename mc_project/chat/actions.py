"""What a chat command does, for a caller (``api.tenants.Principal``) who may act in one
tenant only: ``status`` reads as ``GET /v1/environments/{name}`` and
``GET /v1/jobs/{id}`` do; ``deploy`` starts the ``deploy`` job (``project:deploy``:
the environment's project deployed again from its deploy branch); ``redeploy`` starts
``controller.operations.redeploy`` when this controller has it. Each answers one
text for the chat; a refusal raises ``ApiError`` or ``CorpusError`` (one sentence)."""

from sqlalchemy import select, update

from mc_project import jobs
from mc_project.api import background, envquery
from mc_project.controller import envs, operations
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Job

DEPLOY_KIND = "deploy"
DEPLOY_PLAN = ("project:deploy",)
PING_TIMEOUT = 5
NO_REDEPLOY = "Redeploy is not available on this controller; `deploy NAME` deploys an environment's project again."


def status(ctl, caller, name):
    """An environment's state and its last job (the step it runs, or where it failed)."""
    with db.session(ctl.url) as sess:
        env, row = envquery.find(sess, caller, name, "viewer")
        last = sess.scalar(select(Job.id).where(Job.target == env.name).order_by(Job.id.desc()).limit(1))
    where = " on node {}".format(row["node"]) if row["node"] else ""
    projects = ", ".join(row["projects"]) or "none"
    text = "Environment {} ({}, tenant {}) is {}{}; projects: {}.".format(
        row["name"], row["type"], row["tenant"], row["status"], where, projects)
    if last is None:
        return text + " No job has run on it."
    return text + " Last job: " + jobs.Jobs(ctl.url, fire=ctl.fire).status(last)["message"]


def _start(ctl, operation, tenant_id):
    """Start ``operation`` as a job of ``tenant_id`` in a thread; its id."""
    url = ctl.url

    def tag_tenant(tag, data):
        if tag.endswith("/pending") and "step" not in data:
            with db.session(url) as sess:
                sess.execute(update(Job).where(Job.id == int(data["job"])).values(tenant_id=tenant_id))

    return background.start(ctl, operation, on_event=tag_tenant)


def deploy_request(ctl, caller, name):
    """Refuse a bad deploy in one sentence before any job exists; its clipboard."""
    with db.session(ctl.url) as sess:
        env, row = envquery.find(sess, caller, name, "deployer")
    project = env.project or (row["projects"] or [None])[0]
    if not project:
        raise CorpusError("Environment {} has no project to deploy.".format(name))
    if env.status != "active" or not env.minion_id:
        raise CorpusError("Environment {} is {}, not active.".format(name, env.status))
    if not ctl.ping(env.minion_id, timeout=PING_TIMEOUT):
        raise CorpusError("Environment {}'s minion does not answer; nothing was started.".format(name))
    clipboard = envs.env_clipboard(ctl, name)
    clipboard.update(project=project, who=caller.name)
    return env.tenant_id, clipboard


def deploy(ctl, caller, name):
    """Deploy an environment's project again (its deploy branch head), as a job."""
    tenant_id, clipboard = deploy_request(ctl, caller, name)
    job_id = _start(ctl, lambda job_ctl: job_ctl.jobs().submit(DEPLOY_KIND, name, DEPLOY_PLAN, clipboard),
                    tenant_id)
    return "Deploy of project {} on environment {} started: job {}.".format(clipboard["project"], name, job_id)


def redeploy(ctl, caller, name):
    """Redeploy an environment with ``operations.redeploy``, when the controller has it."""
    operation = getattr(operations, "redeploy", None)
    if operation is None:
        return NO_REDEPLOY
    with db.session(ctl.url) as sess:
        env, _row = envquery.find(sess, caller, name, "deployer")
    job_id = _start(ctl, lambda job_ctl: operation(job_ctl, name), env.tenant_id)
    return "Redeploy of environment {} started: job {}.".format(name, job_id)


ACTIONS = {"status": status, "deploy": deploy, "redeploy": redeploy}
