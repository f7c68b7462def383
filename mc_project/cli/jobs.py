"""Jobs: ``jobs``, ``job ID [--follow]``, ``undo JOB``, ``resume JOB``."""

import typer

from . import names, progress
from .errors import EXIT_FAILED, CliError
from .state import state_of

JOB_COLUMNS = ["id", "kind", "target", "status", "current_step", "created", "ended"]
STEP_COLUMNS = ["index", "name", "status", "seconds", "started", "ended"]


def register(app):
    app.command("jobs")(list_jobs)
    app.command("job")(job)
    app.command("undo")(undo)
    app.command("resume")(resume)


def list_jobs(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="Only jobs of this kind (init_env, destroy_env...)."),
    target: str = typer.Option(None, "--target", help="Only jobs on this environment or node."),
    status: str = typer.Option(None, "--status", help="Only jobs in this status."),
    limit: int = typer.Option(20, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """The latest jobs, with filters."""
    state = state_of(ctx)
    page = state.client.paged("/v1/jobs", limit=limit, offset=offset, kind=kind, target=target, status=status)
    items = page.get("items") or []

    def render(data):
        columns = [c for c in JOB_COLUMNS if any(c in item for item in items)] or None
        state.output.table(items, columns=columns, empty="No jobs.")
        total = data.get("total")
        if isinstance(total, int) and total > len(items) + (offset or 0):
            state.output.note(f"{len(items)} of {total}; see more with --offset {offset + len(items)}.")

    state.output.result(page, render)


def job(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Watch its steps until it ends."),
):
    """A job: its status and steps; with --follow, live until it ends."""
    state = state_of(ctx)
    names.job_id(job_id)
    if follow:
        record = state.client.get(f"/v1/jobs/{job_id}")  # 404 before any stream
        final = progress.follow(state.client, job_id, state.output.err if state.output.json else state.output.out)
        if not progress.succeeded(final):
            raise CliError(progress.failure_reason(final), EXIT_FAILED, data=final)
        final = dict(record, **final)
        state.output.result(final, lambda data: state.output.note(f"Job {job_id} {data.get('status')}."))
        return
    record = state.client.get(f"/v1/jobs/{job_id}")
    steps = state.client.get(f"/v1/jobs/{job_id}/steps")
    step_items = steps.get("items") if isinstance(steps, dict) else steps
    record = dict(record, steps=step_items or [])

    def render(data):
        state.output.fields({k: v for k, v in data.items() if k not in ("steps", "result") and v is not None})
        if data.get("result"):
            state.output.fields({"result": data["result"]})
        items = data["steps"]
        if items:
            state.output.note("")
            columns = [c for c in STEP_COLUMNS if any(c in item for item in items)] or None
            if columns and "name" not in columns and any("step" in item for item in items):
                columns.insert(0, "step")
            state.output.table(items, columns=columns)
            for item in items:
                if str(item.get("status")).lower() in ("failed", "undo_failed", "interrupted") and item.get("log"):
                    state.output.note(f"{item.get('name') or item.get('step')} log:")
                    log = item["log"]
                    for line in (log if isinstance(log, list) else str(log).splitlines())[-20:]:
                        state.output.note(f"  {line}")

    state.output.result(record, render)


def undo(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="JOB"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the undo to its end (default)."),
):
    """Undo every step a job did, last first."""
    state = state_of(ctx)
    answer = state.client.post(f"/v1/jobs/{names.job_id(job_id)}/undo")
    state.run_job(answer, wait=wait, render=lambda output, data: output.note(f"Job {job_id} undone."),
                  also_done=("undone",))


def resume(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="JOB"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job to its end (default)."),
):
    """Finish a job that stopped (its controller died), from the step it was on."""
    state = state_of(ctx)
    answer = state.client.post(f"/v1/jobs/{names.job_id(job_id)}/resume")
    state.run_job(answer, wait=wait, render=lambda output, data: output.note(f"Job {job_id} finished."))
