"""What the API shows of a job: its summary, its steps, and its result.

A job's state is only ever the inventory's (``jobs.describe``); its result is read
from its clipboard: a new environment's access details, a new project's remotes, the
release a rollback made live.
"""

from mc_project import jobs
from mc_project.common.vocabulary import PROJECTS_ROOT
from mc_project.controller import envs, inventory_runs
from mc_project.health import compliance_runs


def remotes(clip):
    """A project's git remotes: ``{"name", "remote", "pillar_remote"}``."""
    remote = clip.get("git_remote")
    if not remote:
        return None
    root = "{}/{}".format(PROJECTS_ROOT, clip["project"])
    return {"name": clip["project"], "remote": remote,
            "pillar_remote": remote.replace(root + "/git/project.git", root + "/git/pillar.git")}


def result(state):
    """The result of a job (``jobs.describe``'s mapping), or None while it has none."""
    if state["kind"] in inventory_runs.KINDS:
        return inventory_runs.report(state)  # a failed run's too: its summary per host says why
    if state["kind"] == compliance_runs.KIND:
        return compliance_runs.report(state)  # a failed run's too: its results say which rule failed where
    if state["status"] != "success":
        return None
    clip = state.get("clipboard") or {}
    try:
        if state["kind"] == "init_env":
            return dict(envs.access_details(clip), remotes=remotes(clip))
        if state["kind"] == "add_project":
            return remotes(clip)
        if state["kind"] == "rollback":
            return {"env": state["target"], "project": clip["project"], "release": clip["release"],
                    "previous": clip.get("live_before")}
    except (KeyError, TypeError):
        return None
    return {"target": state["target"]}


def step(row):
    return {"index": row["index"], "name": row["name"], "status": row["status"],
            "started": row["started"], "ended": row["ended"], "seconds": row["seconds"]}


def summary(state):
    """``GET /v1/jobs/{id}``: kind, target, status, created, ended, result, error, steps summary."""
    counts = {}
    for row in state["steps"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"id": state["id"], "kind": state["kind"], "target": state["target"], "status": state["status"],
            "message": state["message"], "created": state["created"], "started": state["started"],
            "ended": state["ended"], "result": result(state), "error": state["error"],
            "current_step": state["current_step"],
            "steps": {"total": len(state["steps"]), "by_status": counts}}


def describe(job):
    return jobs.describe(job)
