"""What the page's forms do: log in and out, and every change, through the REST API's own
route functions (same checks, same roles, same audit, same jobs).

Every POST carries the session's CSRF token (``session.form``). A change that starts a
job answers 303 to the job's page; one that is refused answers 303 back to the page
the form was on, with the refusal's one sentence shown there. Another tenant's object
stays a 404 page, as in the API.
"""

import json

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from mc_project.api import audit, auth, envquery
from mc_project.api.accepted import start_job
from mc_project.api.deps import controller
from mc_project.api.errors import ApiError, from_corpus_error
from mc_project.api.routers import environments as env_routes
from mc_project.api.routers import jobs as job_routes
from mc_project.api.routers import projects as project_routes
from mc_project.api.routers import tokens as token_routes
from mc_project.api.tenants import Principal
from mc_project.cli.errors import CliError
from mc_project.cli.sizes import parse_size_mb
from mc_project.controller import operations
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.web import render, session
from mc_project.web.pages import EnvName, JobId, ProjectName
from mc_project.web.session import form, viewer

router = APIRouter(prefix="/web", include_in_schema=False)


def login_page(request, message=None, status_code=200, next_path=None):
    token = session.new_login_csrf()
    response = render.page(request, "login.html", {"login_csrf": token, "message": message,
                                                   "next": session.safe_next(next_path)},
                           status_code=status_code)
    session.set_cookie(response, request, session.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None):  # noqa: A002 (the query's word)
    return login_page(request, next_path=next)


@router.post("/login")
def login(request: Request, fields: dict = Depends(form)):
    username, password = fields.get("username", ""), fields.get("password", "")
    request.state.user = username[:255] or None
    try:
        found, token, expires = auth.login(request.app.state, username, password)
    except ApiError as exc:
        return login_page(request, exc.message, exc.status, fields.get("next"))
    audit.note(request, result="logged in", target=username)
    response = RedirectResponse(session.safe_next(fields.get("next")), status_code=303)
    lifetime = int(request.app.state.settings["token_hours"] * 3600)
    session.set_cookie(response, request, session.SESSION_COOKIE, token, max_age=lifetime)
    response.delete_cookie(session.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, caller: Principal = Depends(viewer), fields: dict = Depends(form)):
    token_routes.logout(request, caller=caller)
    response = render.redirect(request, session.LOGIN_PATH, "You are logged out.")
    response.delete_cookie(session.SESSION_COOKIE, path="/")
    return response


def refused(exc):
    """The ``ApiError`` of a refusal, whatever raised it (the API, the operations, a body)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, CorpusError):
        return from_corpus_error(exc)
    if isinstance(exc, CliError):
        return ApiError(400, exc.message)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "value"
    return ApiError(400, "Invalid {}: {}".format(where, str(first.get("msg", "not valid")).rstrip(".")))


def attempt(request, back, change):
    """Run ``change()``; a refusal goes back to ``back`` with its sentence (a 404 stays a 404)."""
    try:
        return change()
    except (ApiError, CorpusError, CliError, pydantic.ValidationError) as exc:
        error = refused(exc)
        if error.status in (401, 404):
            raise error from None
        # The page answers 303 (back to the form's page): the audit keeps the refusal.
        audit.note(request, result="refused ({}): {}".format(error.status, error.message))
        return render.redirect(request, back, error.message, "bad")


def to_job(request, answer, message):
    job_id = json.loads(answer.body)["job_id"]
    return render.redirect(request, "/web/jobs/{}".format(job_id), message.format(job=job_id))


def env_page(name):
    return "/web/environments/{}".format(name)


@router.post("/environments")
def create_environment(request: Request, caller: Principal = Depends(viewer), fields: dict = Depends(form),
                       ctl=Depends(controller)):
    def change():
        disk = fields.get("disk", "").strip()
        body = env_routes.NewEnvironment(
            name=fields.get("name", "").strip(), type=fields.get("type") or "dev",
            project=fields.get("project", "").strip() or None, host=fields.get("host") or None,
            tenant=fields.get("tenant") or None, disk_size_mb=parse_size_mb(disk) if disk else None)
        answer = env_routes.create_environment(body, request, caller=caller, ctl=ctl)
        return to_job(request, answer, "Creating environment {}: job {{job}}.".format(body.name))

    return attempt(request, "/web/", change)


@router.post("/environments/{name}/resize")
def resize_environment(request: Request, name: str = EnvName, caller: Principal = Depends(viewer),
                       fields: dict = Depends(form), ctl=Depends(controller)):
    def change():
        grow = fields.get("direction", "grow") != "trim"
        body = env_routes.Resize(size_mb=parse_size_mb(fields.get("size", "")), grow=grow)
        answer = env_routes.resize_environment(body, request, name=name, caller=caller, ctl=ctl)
        return to_job(request, answer, "{} {} to {} MiB: job {{job}}.".format(
            "Enlarging" if grow else "Trimming", name, body.size_mb))

    return attempt(request, env_page(name), change)


@router.post("/environments/{name}/domains")
def link_domain(request: Request, name: str = EnvName, caller: Principal = Depends(viewer),
                fields: dict = Depends(form), ctl=Depends(controller)):
    """Serve the environment under one more domain: the ``link_dns`` job (deployers)."""
    domain = fields.get("domain", "").strip()

    def change():
        with db.session(ctl.url) as sess:
            env, row = envquery.find(sess, caller, name, "deployer")
        audit.note(request, target=name, tenant=row["tenant"])
        answer = start_job(request, ctl, lambda job_ctl: operations.link_dns(job_ctl, name, domain),
                           env.tenant_id, name)
        return to_job(request, answer, "Linking {} to {}: job {{job}}.".format(domain, name))

    return attempt(request, env_page(name), change)


@router.post("/environments/{name}/projects")
def add_project(request: Request, name: str = EnvName, caller: Principal = Depends(viewer),
                fields: dict = Depends(form), ctl=Depends(controller)):
    def change():
        body = project_routes.NewProject(project=fields.get("project", "").strip())
        answer = project_routes.add_project(body, request, name=name, caller=caller, ctl=ctl)
        return to_job(request, answer, "Adding project {} to {}: job {{job}}.".format(body.project, name))

    return attempt(request, env_page(name), change)


@router.post("/environments/{name}/destroy")
def destroy_environment(request: Request, name: str = EnvName, caller: Principal = Depends(viewer),
                        fields: dict = Depends(form), ctl=Depends(controller)):
    """Destroy an environment once its name was typed again."""
    def change():
        row = env_routes.get_environment(request, name=name, caller=caller)  # another tenant's: 404 first
        audit.note(request, target=name, tenant=row["tenant"])
        if fields.get("confirm_name", "").strip() != name:
            raise ApiError(400, "Type the environment's name, {}, to destroy it.".format(name))
        answer = env_routes.destroy_environment(request, name=name, caller=caller, ctl=ctl)
        return to_job(request, answer, "Destroying environment {}: job {{job}}.".format(name))

    return attempt(request, env_page(name), change)


@router.post("/environments/{name}/projects/{project}/rollback")
def rollback(request: Request, name: str = EnvName, project: str = ProjectName,
             caller: Principal = Depends(viewer), fields: dict = Depends(form), ctl=Depends(controller)):
    """First a page asking to confirm; then the API's rollback job, whose page it goes to."""
    release = fields.get("release", "").strip() or None
    if fields.get("confirmed") != "yes":
        row = env_routes.get_environment(request, name=name, caller=caller)
        if project not in row["projects"]:
            raise ApiError(404, "Environment {} has no project {}.".format(name, project))
        return render.page(request, "confirm_rollback.html", {"env": row, "project": project, "release": release})

    def change():
        body = project_routes.Rollback(release=release)
        answer = project_routes.rollback(request, body=body, name=name, project=project, caller=caller, ctl=ctl)
        return to_job(request, answer, "Rolling {}/{} back to {}: job {{job}}.".format(
            name, project, release or "the release before"))

    return attempt(request, env_page(name), change)


def _again(request, job_id, caller, ctl, action):
    def change():
        answer = getattr(job_routes, action)(request, job_id=job_id, caller=caller, ctl=ctl)
        return to_job(request, answer, ("Undoing" if action == "undo" else "Resuming") + " job {job}.")

    return attempt(request, "/web/jobs/{}".format(job_id), change)


@router.post("/jobs/{job_id}/undo")
def undo(request: Request, job_id: int = JobId, caller: Principal = Depends(viewer), fields: dict = Depends(form),
         ctl=Depends(controller)):
    return _again(request, job_id, caller, ctl, "undo")


@router.post("/jobs/{job_id}/resume")
def resume(request: Request, job_id: int = JobId, caller: Principal = Depends(viewer),
           fields: dict = Depends(form), ctl=Depends(controller)):
    return _again(request, job_id, caller, ctl, "resume")
