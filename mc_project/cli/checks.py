"""``corpus checks ...``, ``corpus silence ...``, ``corpus handlers ...``: the fleet's
health through the API.

``corpus checks`` lists each check's state on each host, worst first; ``corpus checks
show ID`` one of them with its history; ``corpus checks define`` and ``remove`` manage
what is checked; ``corpus checks pass ID`` pushes a TTL check's pass. ``corpus silence
add --host web1 --why "kernel upgrade" --minutes 30`` silences a host (or a group, or
a check); ``corpus handlers add`` tells a mail address or a webhook of changes.
"""

import typer

from .errors import EXIT_BAD_INPUT, CliError
from .inventory import parse_assignment
from .state import state_of

checks_app = typer.Typer(name="checks", help="The fleet's checks: states, history, definitions, TTL passes.",
                         invoke_without_command=True, add_completion=False, rich_markup_mode=None)
silence_app = typer.Typer(name="silence", help="Silences: maintenance windows that hold back notifications.",
                          no_args_is_help=True, add_completion=False, rich_markup_mode=None)
handlers_app = typer.Typer(name="handlers", help="Handlers: who is told of state changes, and what they were told.",
                           no_args_is_help=True, add_completion=False, rich_markup_mode=None)

STATE_COLUMNS = ["id", "check", "host", "state", "since", "last_state", "attempts", "output"]
DEFINITION_COLUMNS = ["id", "name", "kind", "group", "host", "interval", "timeout", "retries", "params"]
SILENCE_COLUMNS = ["id", "host", "group", "check", "who", "why", "starts", "until"]
HANDLER_COLUMNS = ["id", "name", "kind", "target", "group", "repeat"]
NOTIFICATION_COLUMNS = ["id", "at", "handler_name", "check_name", "host_name", "previous", "state", "status", "detail"]


def register(app):
    app.add_typer(checks_app, name="checks")
    app.add_typer(silence_app, name="silence")
    app.add_typer(handlers_app, name="handlers")


def _list_states(state, check_state=None, check=None, host=None, tenant=None, limit=None, offset=0):
    page = state.client.paged("/v1/checks", limit=limit, offset=offset, state=check_state, check=check, host=host,
                              tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=STATE_COLUMNS,
                                                               empty="No check has a state yet."))


@checks_app.callback()
def checks_main(ctx: typer.Context):
    """Without a verb: ``corpus checks list``."""
    if ctx.invoked_subcommand is None:
        _list_states(state_of(ctx))


@checks_app.command("list")
def list_states(
    ctx: typer.Context,
    check_state: str = typer.Option(None, "--state", help="OK, WARNING, CRITICAL, UNKNOWN or PENDING."),
    check: str = typer.Option(None, "--check", help="Only this check."),
    host: str = typer.Option(None, "--host", help="Only this host."),
    tenant: str = typer.Option(None, "--tenant"),
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """Each check's state on each host, worst first."""
    _list_states(state_of(ctx), check_state and check_state.upper(), check, host, tenant, limit, offset)


@checks_app.command("show")
def show(ctx: typer.Context, state_id: int = typer.Argument(..., min=1, help="The check's id (corpus checks)."),
         limit: int = typer.Option(20, "--limit", min=1, help="How many changes of its history.")):
    """One check on one host: its state and the changes of its history, newest first."""
    state = state_of(ctx)
    record = state.client.get("/v1/checks/{}".format(state_id))
    record["history"] = state.client.paged("/v1/checks/{}/history".format(state_id), limit=limit).get("items") or []

    def render(data):
        state.output.fields({key: value for key, value in data.items() if key != "history"})
        state.output.note("")
        state.output.table(data["history"], columns=["at", "state", "hard", "attempts", "output"],
                           empty="No history.")

    state.output.result(record, render)


@checks_app.command("definitions")
def definitions(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant"),
                limit: int = typer.Option(None, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0)):
    """The checks defined: kind, group or host, interval, timeout, retries."""
    state = state_of(ctx)
    page = state.client.paged("/v1/checks/definitions", limit=limit, offset=offset, tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=DEFINITION_COLUMNS,
                                                               empty="No check is defined."))


@checks_app.command("define")
def define(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    kind: str = typer.Option(..., "--kind", help="http, tcp, script or ttl."),
    group: str = typer.Option(None, "--group", help="Check the hosts of this group."),
    host: str = typer.Option(None, "--host", help="Check this host."),
    param: list[str] = typer.Option(None, "--param", help="KEY=VALUE (repeatable): url=, status=, body=, tls_days=; "
                                                          "host=, port=; command=."),
    interval: int = typer.Option(60, "--interval", min=1, help="Seconds between runs (a TTL check's time to live)."),
    timeout: int = typer.Option(10, "--timeout", min=1),
    retries: int = typer.Option(0, "--retries", min=0, help="Results that differ before the state changes."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Define a check on a group or a host."""
    state = state_of(ctx)
    if (group is None) == (host is None):
        raise CliError("Name the check's --group or its --host, one of them", EXIT_BAD_INPUT)
    body = {"name": name, "kind": kind, "group": group, "host": host,
            "params": dict(parse_assignment(text) for text in param or []), "interval": interval,
            "timeout": timeout, "retries": retries, "tenant": tenant}
    made = state.client.post("/v1/checks/definitions", {key: value for key, value in body.items() if value is not None})
    state.output.result(made, lambda data: state.output.note("Check {} defined.".format(name)))


def _definition_path(client, name):
    found = [item for item in client.get("/v1/checks/definitions", limit=500).get("items") or []
             if item["name"] == name]
    if not found:
        raise CliError("No check named {}".format(name), EXIT_BAD_INPUT, 404)
    return "/v1/checks/definitions/{}".format(found[0]["id"])


@checks_app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...)):
    """Remove a check, its states and their history."""
    state = state_of(ctx)
    state.client.delete(_definition_path(state.client, name))
    state.output.result({"removed": name}, lambda data: state.output.note("Check {} removed.".format(name)))


@checks_app.command("pass")
def pass_check(ctx: typer.Context, state_id: int = typer.Argument(..., min=1),
               output: str = typer.Option(None, "--output", help="What the service says of itself.")):
    """Push a TTL check's pass: OK for one more time to live."""
    state = state_of(ctx)
    record = state.client.request("PUT", "/v1/checks/{}/pass".format(state_id),
                                  json_body={"output": output} if output else None)
    state.output.result(record, lambda data: state.output.note("Check {} on {} is {}.".format(
        data["check"], data["host"], data["state"])))


@silence_app.command("list")
def list_silences(ctx: typer.Context, ended: bool = typer.Option(False, "--ended", help="Also those that ended."),
                  tenant: str = typer.Option(None, "--tenant")):
    """The silences in force or to come."""
    state = state_of(ctx)
    page = state.client.paged("/v1/silences", ended="true" if ended else None, tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=SILENCE_COLUMNS,
                                                               empty="No silence."))


@silence_app.command("add")
def add_silence(
    ctx: typer.Context,
    why: str = typer.Option(..., "--why", help="Why (shown with every notification it holds back)."),
    host: str = typer.Option(None, "--host"),
    group: str = typer.Option(None, "--group"),
    check: str = typer.Option(None, "--check"),
    minutes: int = typer.Option(None, "--minutes", min=1, help="How long, from its start."),
    until: str = typer.Option(None, "--until", help="Its end, ISO 8601 (UTC unless an offset is given)."),
    starts: str = typer.Option(None, "--starts", help="Its start, ISO 8601 (default: now)."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Silence a host, a group or a check (any mix narrows it)."""
    state = state_of(ctx)
    if not (host or group or check):
        raise CliError("Name what to silence: --host, --group or --check", EXIT_BAD_INPUT)
    if (minutes is None) == (until is None):
        raise CliError("Say when the silence ends: --minutes or --until, one of them", EXIT_BAD_INPUT)
    body = {"why": why, "host": host, "group": group, "check": check, "minutes": minutes, "until": until,
            "starts": starts, "tenant": tenant}
    made = state.client.post("/v1/silences", {key: value for key, value in body.items() if value is not None})
    state.output.result(made, lambda data: state.output.note("Silence {} set until {}.".format(
        data["id"], data["until"])))


@silence_app.command("change")
def change_silence(ctx: typer.Context, silence_id: int = typer.Argument(..., min=1),
                   why: str = typer.Option(None, "--why"), minutes: int = typer.Option(None, "--minutes", min=1,
                                                                                      help="Its end, from now."),
                   until: str = typer.Option(None, "--until")):
    """Change a silence's reason or its end."""
    state = state_of(ctx)
    body = {key: value for key, value in {"why": why, "minutes": minutes, "until": until}.items() if value is not None}
    if not body:
        raise CliError("Nothing to change: give --why, --minutes or --until", EXIT_BAD_INPUT)
    changed = state.client.request("PATCH", "/v1/silences/{}".format(silence_id), json_body=body)
    state.output.result(changed, lambda data: state.output.fields(data))


@silence_app.command("end")
def end_silence(ctx: typer.Context, silence_id: int = typer.Argument(..., min=1)):
    """End a silence now."""
    state = state_of(ctx)
    ended = state.client.delete("/v1/silences/{}".format(silence_id))
    state.output.result(ended, lambda data: state.output.note("Silence {} ended.".format(silence_id)))


@handlers_app.command("list")
def list_handlers(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant")):
    """The handlers (a webhook's URL shows its host only)."""
    state = state_of(ctx)
    page = state.client.paged("/v1/handlers", tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=HANDLER_COLUMNS,
                                                               empty="No handler."))


@handlers_app.command("add")
def add_handler(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    mail: str = typer.Option(None, "--mail", help="Mail this address."),
    webhook: str = typer.Option(None, "--webhook", help="POST {\"text\": ...} to this URL (Slack, Mattermost...)."),
    group: str = typer.Option(None, "--group", help="Only for the hosts of this group."),
    repeat: int = typer.Option(None, "--repeat", min=1, help="Seconds between reminders while a state is not OK."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Tell a mail address or a webhook of every hard state change."""
    state = state_of(ctx)
    if (mail is None) == (webhook is None):
        raise CliError("Give the handler's --mail or its --webhook, one of them", EXIT_BAD_INPUT)
    body = {"name": name, "kind": "mail" if mail else "webhook", "target": mail or webhook, "group": group,
            "repeat": repeat, "tenant": tenant}
    made = state.client.post("/v1/handlers", {key: value for key, value in body.items() if value is not None})
    state.output.result(made, lambda data: state.output.note("Handler {} added.".format(name)))


@handlers_app.command("remove")
def remove_handler(ctx: typer.Context, name: str = typer.Argument(...)):
    """Remove a handler (its notifications stay recorded)."""
    state = state_of(ctx)
    found = [item for item in state.client.get("/v1/handlers", limit=500).get("items") or [] if item["name"] == name]
    if not found:
        raise CliError("No handler named {}".format(name), EXIT_BAD_INPUT, 404)
    state.client.delete("/v1/handlers/{}".format(found[0]["id"]))
    state.output.result({"removed": name}, lambda data: state.output.note("Handler {} removed.".format(name)))


@handlers_app.command("notifications")
def notifications(
    ctx: typer.Context,
    status: str = typer.Option(None, "--status", help="sent, suppressed or failed."),
    check: str = typer.Option(None, "--check"),
    host: str = typer.Option(None, "--host"),
    limit: int = typer.Option(None, "--limit", min=1),
):
    """Every notification, newest first: sent, suppressed by a silence, or failed (why)."""
    state = state_of(ctx)
    page = state.client.paged("/v1/notifications", limit=limit, status=status, check=check, host=host)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=NOTIFICATION_COLUMNS,
                                                               empty="No notification."))
