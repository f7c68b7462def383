"""``corpus walk SITE``: walk a site's fronts and backends; ``corpus walks SITE``: its walks."""

import time

import typer

from .errors import EXIT_FAILED, CliError
from .state import state_of

RESULT_COLUMNS = ["kind", "name", "status", "seconds", "error"]
HISTORY_COLUMNS = ["id", "status", "targets", "failed", "started", "seconds"]
POLL = 0.2


def register(app):
    app.command("walk")(walk)
    app.command("walks")(list_walks)


def walk(
    ctx: typer.Context,
    site: str = typer.Argument(..., metavar="SITE", help="A compute node or a domain."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, max=60, help="Seconds each target has to answer."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the walk's results (default)."),
):
    """Walk a site: every domain through its front, every backend's health path directly."""
    state = state_of(ctx)
    started = state.client.request("PUT", f"/v1/sites/{site}/walks", json_body={"timeout": timeout})
    walk_id = started.get("walk_id")
    if not wait:
        state.output.result(started, lambda data: state.output.note(f"Walk {walk_id} started."))
        return
    deadline = time.monotonic() + timeout + 60
    while True:
        found = state.client.get(f"/v1/sites/{site}/walks/{walk_id}")
        if found.get("status") not in ("pending", "running") or time.monotonic() > deadline:
            break
        time.sleep(POLL)

    def render(data):
        state.output.table(data.get("results") or [], columns=RESULT_COLUMNS, empty="No targets.")
        state.output.note(f"Walk {walk_id}: {data.get('message')}")

    if found.get("status") != "ok":
        # A failed walk is one JSON document (its record, with the error) in --json mode.
        if not state.output.json:
            render(found)
        raise CliError(found.get("message") or f"Walk {walk_id} is {found.get('status')}", EXIT_FAILED, data=found)
    state.output.result(found, render)


def list_walks(
    ctx: typer.Context,
    site: str = typer.Argument(..., metavar="SITE"),
    limit: int = typer.Option(20, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """The walks of a site, newest first."""
    state = state_of(ctx)
    page = state.client.paged(f"/v1/sites/{site}/walks", limit=limit, offset=offset)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=HISTORY_COLUMNS,
                                                               empty="No walks."))
