"""Projects in an environment: ``init``, ``projects``, ``releases``, ``rollback``, ``logs``."""

import json
import os
import subprocess
import time

import typer

from . import names
from .errors import EXIT_BAD_INPUT, CliError
from .state import state_of

RELEASE_COLUMNS = ["id", "commit", "mode", "status", "time", "live"]
LOG_POLL_SECONDS = 1.0


def register(app):
    app.command("init")(init)
    app.command("projects")(list_projects)
    app.command("releases")(releases)
    app.command("rollback")(rollback)
    app.command("logs")(logs)


def split_target(state, target):
    """``NAME/PROJECT`` -> (env, project); ``NAME`` alone means its (first) project."""
    env, _, project = (target or "").partition("/")
    env = state.env_name(env)
    if project:
        return env, names.project_name(project)
    record = state.client.get(f"/v1/environments/{env}")
    project = record.get("project")
    if not project:
        held = [p.get("name") if isinstance(p, dict) else p for p in record.get("projects") or []]
        if len(held) != 1:
            raise CliError(f"Environment {env} holds {len(held)} projects: name one as {env}/PROJECT",
                           EXIT_BAD_INPUT)
        project = held[0]
    return env, names.project_name(project)


def project_path(env, project):
    return f"/v1/environments/{env}/projects/{project}"


def git_toplevel(cwd=None):
    """The current git checkout's top directory, or None outside one."""
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def add_git_remote(remote_name, url, toplevel):
    """``git remote add`` (or ``set-url`` when the remote exists); the git error if any."""
    exists = subprocess.run(["git", "remote", "get-url", remote_name], cwd=toplevel,
                            capture_output=True, text=True).returncode == 0
    verb = "set-url" if exists else "add"
    done = subprocess.run(["git", "remote", verb, remote_name, url], cwd=toplevel, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise CliError(f"git remote {verb} {remote_name} failed: {reason}")
    return verb


def init(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="The project's name."),
    env: str = typer.Option(None, "--env", "-e", help="The environment (default: yours)."),
    remote_name: str = typer.Option(None, "--remote", help="The git remote's name (default: corpus-ENV)."),
):
    """Make a project's remotes in an environment and add the remote to this checkout."""
    state = state_of(ctx)
    env = state.env_name(env)
    names.project_name(project)
    try:
        answer = state.client.post(f"/v1/environments/{env}/projects", {"project": project})
    except CliError as exc:
        if exc.status != 409:  # one that exists already only needs its remote here
            raise
        state.output.note(f"Project {project} exists in {env} already.")
    else:
        final = state.run_job(answer, show=False)
        state.output.note(f"Project {project} created in {env} (job {final['job_id']}).")
    record = state.client.get(project_path(env, project))
    remote = record.get("remote")
    if not remote:
        raise CliError(f"The controller gave no remote for {env}/{project}")
    remote_name = remote_name or f"corpus-{env}"
    toplevel = git_toplevel()
    outcome = {"env": env, "project": project, "remote": remote, "remote_name": remote_name, "git_remote": None}
    if toplevel:
        verb = add_git_remote(remote_name, remote, toplevel)
        outcome["git_remote"] = "added" if verb == "add" else "updated"
    outcome["checkout"] = toplevel

    def render(data):
        output = state.output
        output.note(f"Remote: {remote}")
        if toplevel:
            output.note(f"git remote {remote_name} {data['git_remote']} in {toplevel}; deploy with: corpus push {env}")
        else:
            output.note(f"{os.getcwd()} is not a git checkout: add the remote in yours with "
                        f"git remote add {remote_name} {remote}")

    state.output.result(outcome, render)


def list_projects(ctx: typer.Context, env: str = typer.Argument(None, help="The environment (default: yours).")):
    """The projects of an environment."""
    state = state_of(ctx)
    env = state.env_name(env)
    page = state.client.get(f"/v1/environments/{env}/projects")
    items = page.get("items") if isinstance(page, dict) else page
    state.output.result(page, lambda data: state.output.table(items or [], empty=f"No projects in {env}."))


def releases(ctx: typer.Context, target: str = typer.Argument(..., metavar="NAME/PROJECT")):
    """A project's kept releases: id, commit, mode, status, time, which is live."""
    state = state_of(ctx)
    env, project = split_target(state, target)
    page = state.client.get(project_path(env, project) + "/releases")
    items = page.get("items") if isinstance(page, dict) else page
    items = items or []
    columns = [c for c in RELEASE_COLUMNS if any(c in item for item in items)] or None
    state.output.result(page, lambda data: state.output.table(items, columns=columns, empty="No releases."))


def rollback(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NAME/PROJECT"),
    release: str = typer.Argument(None, help="The release to make live (default: the one before)."),
):
    """Make a kept release live again (a job: ``corpus undo JOB`` puts the other one back)."""
    state = state_of(ctx)
    env, project = split_target(state, target)
    body = {"release": names.release_id(release)} if release else {}
    answer = state.client.post(project_path(env, project) + "/rollback", body)
    state.run_job(answer, render=lambda output, data: _render_rollback(output, env, project, data))


def _render_rollback(output, env, project, final):
    result = final.get("result") if isinstance(final.get("result"), dict) else {}
    live = result.get("release")
    output.note(f"{env}/{project} rolled back" + (f": {live} is live." if live else "."))


def new_lines(previous, current):
    """The lines of ``current`` (a tail of a log) that ``previous`` (the tail before) lacks:
    those after the longest end of ``previous`` that ``current`` starts with."""
    for overlap in range(min(len(previous), len(current)), 0, -1):
        if previous[-overlap:] == current[:overlap]:
            return current[overlap:]
    return current


def logs(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NAME/PROJECT"),
    lines: int = typer.Option(200, "--lines", "-n", min=1, help="How many of the last lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (every second)."),
):
    """A project's last log lines, and with -f the new ones as they come."""
    state = state_of(ctx)
    env, project = split_target(state, target)
    path = project_path(env, project) + "/logs"
    shown = state.client.get(path, lines=lines).get("lines") or []
    if state.output.json and not follow:
        state.output.document({"env": env, "project": project, "lines": shown})
        return
    _print_lines(state, shown)
    while follow:
        time.sleep(LOG_POLL_SECONDS)
        current = state.client.get(path, lines=lines).get("lines") or []
        _print_lines(state, new_lines(shown, current))
        shown = current


def _print_lines(state, lines):
    for line in lines:
        # With --json -f, one JSON string per line (JSON Lines).
        state.output.raw(json.dumps(line) if state.output.json else str(line))
