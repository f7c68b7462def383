"""``corpus detectors list|run|state``: the detectors that put hosts in groups."""

import httpx
import typer

from .errors import EXIT_FAILED, CliError
from .state import state_of

detectors_app = typer.Typer(name="detectors", help="Detectors: rules that put hosts in groups from what runs on them.",
                            no_args_is_help=True, add_completion=False, rich_markup_mode=None)

RUN_COLUMNS = ["host", "status", "groups", "added", "removed", "error"]


def register(app):
    app.add_typer(detectors_app, name="detectors")


@detectors_app.command("list")
def list_detectors(ctx: typer.Context):
    """The detector rules the hosts run."""
    state = state_of(ctx)
    found = state.client.get("/v1/detectors")

    def render(data):
        state.output.table(data.get("items") or [], columns=["name", "apply_if", "add_groups"],
                           empty="No detectors are configured (master option corpus_detectors).")
        interval = data.get("interval")
        state.output.note("Run on every host every {} s.".format(interval) if interval else "Not scheduled.")

    state.output.result(found, render)


@detectors_app.command("run")
def run_detectors(
    ctx: typer.Context,
    hosts: list[str] = typer.Argument(None, metavar="[HOST]...", help="Only these hosts (default: all)."),
    tenant: str = typer.Option(None, "--tenant", help="Only the hosts of this tenant."),
    timeout: int = typer.Option(20, "--timeout", min=1, max=600, help="Seconds to wait for the minions."),
):
    """Run the detectors now on the hosts' minions and write the groups they found."""
    state = state_of(ctx)
    body = {"timeout": timeout}
    if hosts:
        body["hosts"] = list(hosts)
    if tenant:
        body["tenant"] = tenant
    client = state.client
    try:
        # The controller waits up to --timeout for the minions: the answer may take that long.
        response = client.http.post("/v1/detectors/run", json=body, timeout=timeout + 30)
    except httpx.HTTPError as exc:
        raise client.unreachable(exc) from None
    found = client.decode(response)
    items = found.get("items") or []
    failed = [item for item in items if item.get("status") != "done"]
    if not state.output.json:
        state.output.table(items, columns=RUN_COLUMNS, empty="No host with a minion.")
    elif not failed:  # a failure is one document too: the result with its error
        state.output.document(found)
    if failed:
        raise CliError("{} of {} hosts gave no result: {}".format(len(failed), len(items), failed[0].get("error")),
                       EXIT_FAILED, data=found)


@detectors_app.command("state")
def detectors_state(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant")):
    """Each host and the groups its detectors put it in."""
    state = state_of(ctx)
    found = state.client.get("/v1/detectors/state", tenant=tenant)
    state.output.result(found, lambda data: state.output.table(data.get("items") or [],
                                                                columns=["host", "minion_id", "groups"],
                                                                empty="No host with a minion."))
