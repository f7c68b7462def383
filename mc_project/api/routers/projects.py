"""``/v1/environments/{name}/projects``: the projects of an environment, their
status, releases and logs (asked of the environment's own minion), and the rollback job."""

import shlex

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from mc_project.api import audit, auth, envquery, results
from mc_project.api.accepted import start_job
from mc_project.api.deps import Strict, controller
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.common.vocabulary import PROJECTS_ROOT
from mc_project.controller import operations
from mc_project.inventory import db

router = APIRouter(prefix="/environments/{name}/projects", tags=["projects"])

EnvName = Path(min_length=1, max_length=255)
ProjectName = Path(min_length=1, max_length=64)
SALT_TIMEOUT = 60


class NewProject(Strict):
    project: str = Field(min_length=1, max_length=64)


class Rollback(Strict):
    release: str | None = Field(None, min_length=1, max_length=64)


def _remotes(env, project):
    domain = (env.domains or [None])[0]
    if not domain or not env.ssh_nat_port:
        return {"name": project, "remote": None, "pillar_remote": None}
    return results.remotes({"project": project, "git_remote": "ssh://root@{}:{}{}/{}/git/project.git".format(
        domain, env.ssh_nat_port, PROJECTS_ROOT, project)})


def _project(ctl, caller, name, project, role="viewer"):
    with db.session(ctl.url) as sess:
        env, row = envquery.find(sess, caller, name, role)
        if project not in row["projects"]:
            raise ApiError(404, "Environment {} has no project {}.".format(name, project))
        if not env.minion_id:
            raise ApiError(409, "Environment {} has no minion yet ({}).".format(name, env.status))
        return env, row


@router.get("")
def list_projects(request: Request, name: str = EnvName, caller: Principal = Depends(auth.principal)):
    with db.session(request.app.state.url) as sess:
        env, row = envquery.find(sess, caller, name)
        items = [_remotes(env, project) for project in row["projects"]]
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


@router.post("", status_code=202)
def add_project(body: NewProject, request: Request, name: str = EnvName,
                caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """The remotes of one more project: the ``add_project`` job."""
    with db.session(ctl.url) as sess:
        env, row = envquery.find(sess, caller, name, "deployer")
        tenant = row["tenant"]
    audit.note(request, target="{}/{}".format(name, body.project), tenant=tenant)
    return start_job(request, ctl, lambda job_ctl: operations.add_project(job_ctl, name, body.project),
                     env.tenant_id, name)


@router.get("/{project}")
def get_project(request: Request, name: str = EnvName, project: str = ProjectName,
                caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """The project's remotes and its status on the environment (``mc_project.status``)."""
    env, _row = _project(ctl, caller, name, project)
    status = ctl.call(env.minion_id, "mc_project.status", project, timeout=SALT_TIMEOUT)
    return dict(_remotes(env, project), status=status)


@router.get("/{project}/releases")
def releases(request: Request, name: str = EnvName, project: str = ProjectName,
             caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    env, _row = _project(ctl, caller, name, project)
    found = ctl.call(env.minion_id, "mc_project.releases", project, timeout=SALT_TIMEOUT)
    items = found if isinstance(found, list) else (found or {}).get("releases", [])
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


@router.post("/{project}/rollback", status_code=202)
def rollback(request: Request, body: Rollback | None = None, name: str = EnvName, project: str = ProjectName,
             caller: Principal = Depends(auth.principal), ctl=Depends(controller)):
    """Make a kept release live again (default: the one before): the ``rollback`` job.

    The release is checked with the project's minion first (a refusal makes no job)."""
    env, row = _project(ctl, caller, name, project, "deployer")
    audit.note(request, target="{}/{}".format(name, project), tenant=row["tenant"])
    clipboard = operations.rollback_request(ctl, name, project, body.release if body else None,
                                            timeout=SALT_TIMEOUT)
    return start_job(request, ctl, lambda job_ctl: operations.rollback(job_ctl, name, project,
                                                                       clipboard=clipboard),
                     env.tenant_id, "{}/{}".format(name, project))


@router.get("/{project}/logs")
def logs(request: Request, name: str = EnvName, project: str = ProjectName,
         lines: int = Query(200, ge=1, le=10000), caller: Principal = Depends(auth.principal),
         ctl=Depends(controller)):
    """The last ``lines`` lines of the project's web log."""
    env, _row = _project(ctl, caller, name, project)
    path = "{}/{}/logs/web.log".format(PROJECTS_ROOT, project)
    text = ctl.call(env.minion_id, "cmd.run", "tail -n {} {}".format(lines, shlex.quote(path)),
                    python_shell=False, timeout=SALT_TIMEOUT)
    return {"lines": str(text or "").splitlines()}
