"""``corpus compliance ...``: rules that a group's or a host's hosts must follow, audited
(Salt's ``test=True``: what differs is reported, nothing changes) or enforced, through the API.

``corpus compliance rules add perms --kind file --group web --param path=/etc/shadow
--param mode=0640`` defines a rule; ``corpus compliance run`` runs the rules, each in its own
mode (``--audit`` / ``--enforce``: all of them so), following the job's progress as
``corpus run`` does; ``corpus compliance state`` shows the newest result of each rule on
each host and exits 1 while a drift is not waived (or a rule failed); ``corpus compliance
waive RULE --host web1 --reason ... --until 2027-01-31`` accepts a drift until a time.
"""

from pathlib import Path

import typer

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from .inventory import parse_assignment
from .state import state_of

compliance_app = typer.Typer(name="compliance", help="Compliance: rules audited or enforced, waivers, results.",
                             no_args_is_help=True, add_completion=False, rich_markup_mode=None)
rules_app = typer.Typer(name="rules", help="The compliance rules: add, list, rm.", no_args_is_help=True,
                        add_completion=False, rich_markup_mode=None)
compliance_app.add_typer(rules_app, name="rules")

RULE_COLUMNS = ["id", "name", "kind", "group", "host", "mode", "impact", "params"]
WAIVER_COLUMNS = ["id", "rule", "host", "group", "who", "reason", "until", "in_force"]
STATE_COLUMNS = ["rule", "host", "status", "mode", "at", "why"]
HISTORY_COLUMNS = ["at", "run", "rule", "host", "mode", "status", "why"]
MAX_SLS_BYTES = 64 * 1024
# What keeps ``corpus compliance state`` from exit 0.
NOT_COMPLIANT = ("drifted", "failed")


def register(app):
    app.add_typer(compliance_app, name="compliance")


def _why(item):
    """One line of what differed, changed or failed (a waiver's reason for a waived drift)."""
    if item.get("waiver"):
        return "waived by {} until {}: {}".format(item["waiver"]["who"], item["waiver"]["until"],
                                                  item["waiver"]["reason"])
    parts = ["{}{}".format(entry["state"] + ": " if entry.get("state") else "", entry.get("comment") or "")
             for entry in item.get("detail") or []]
    return "; ".join(part for part in parts if part)


@rules_app.command("add")
def add_rule(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    kind: str = typer.Option(..., "--kind", help="file, pkg_present, pkg_absent, service_running, user_present, "
                                                 "sysctl or sls."),
    group: str = typer.Option(None, "--group", help="The rule is on the hosts of this group."),
    host: str = typer.Option(None, "--host", help="The rule is on this host."),
    param: list[str] = typer.Option(None, "--param", help="KEY=VALUE (repeatable): path=, mode=, user=, group= "
                                                          "(file); name=, version= (pkg); name=, value= (sysctl)..."),
    sls: Path = typer.Option(None, "--sls", help="A Salt state file (YAML), for --kind sls."),
    mode: str = typer.Option("audit", "--mode", help="audit (report drift) or enforce (fix it)."),
    impact: float = typer.Option(0.5, "--impact", min=0.0, max=1.0, help="0.0 (none) to 1.0 (critical)."),
    description: str = typer.Option(None, "--description"),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Define a compliance rule on a group or a host."""
    state = state_of(ctx)
    if (group is None) == (host is None):
        raise CliError("Name the rule's --group or its --host, one of them", EXIT_BAD_INPUT)
    params = dict(parse_assignment(text) for text in param or [])
    if sls is not None:
        try:
            if sls.stat().st_size > MAX_SLS_BYTES:
                raise CliError(f"{sls} is over {MAX_SLS_BYTES // 1024} KiB", EXIT_BAD_INPUT)
            params["sls"] = sls.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise CliError(f"Cannot read {sls}: {getattr(exc, 'strerror', None) or exc}", EXIT_BAD_INPUT) from None
    body = {"name": name, "kind": kind, "group": group, "host": host, "params": params, "mode": mode,
            "impact": impact, "description": description, "tenant": tenant}
    made = state.client.post("/v1/compliance/rules", {key: value for key, value in body.items() if value is not None})
    state.output.result(made, lambda data: state.output.note("Rule {} defined ({}).".format(name, data["mode"])))


@rules_app.command("list")
def list_rules(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant"),
               limit: int = typer.Option(None, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0)):
    """The compliance rules: kind, group or host, mode, impact, params."""
    state = state_of(ctx)
    page = state.client.paged("/v1/compliance/rules", limit=limit, offset=offset, tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=RULE_COLUMNS,
                                                               empty="No compliance rule is defined."))


def _rule_id(client, name, tenant=None):
    found = [item for item in client.get("/v1/compliance/rules", limit=500, tenant=tenant).get("items") or []
             if item["name"] == name]
    if not found:
        raise CliError("No compliance rule named {}".format(name), EXIT_BAD_INPUT, 404)
    return found[0]["id"]


@rules_app.command("rm")
def remove_rule(ctx: typer.Context, name: str = typer.Argument(...), tenant: str = typer.Option(None, "--tenant")):
    """Remove a rule and its waivers (its results stay in the history)."""
    state = state_of(ctx)
    state.client.delete("/v1/compliance/rules/{}".format(_rule_id(state.client, name, tenant)))
    state.output.result({"removed": name}, lambda data: state.output.note("Rule {} removed.".format(name)))


@compliance_app.command("waive")
def waive(
    ctx: typer.Context,
    rule: str = typer.Argument(..., help="The rule whose drift is accepted."),
    host: str = typer.Option(None, "--host"),
    group: str = typer.Option(None, "--group"),
    reason: str = typer.Option(..., "--reason", help="Why the drift is accepted (shown with it)."),
    until: str = typer.Option(..., "--until", help="Its expiry, ISO 8601 (UTC unless an offset is given)."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Waive a rule's drift on a host or a group, for a reason, until a time."""
    state = state_of(ctx)
    if (host is None) == (group is None):
        raise CliError("Name the waiver's --host or its --group, one of them", EXIT_BAD_INPUT)
    body = {"rule": rule, "host": host, "group": group, "reason": reason, "until": until, "tenant": tenant}
    made = state.client.post("/v1/compliance/waivers", {key: value for key, value in body.items() if value is not None})
    state.output.result(made, lambda data: state.output.note("Waiver {} of rule {} until {}.".format(
        data["id"], rule, data["until"])))


@compliance_app.command("waivers")
def list_waivers(ctx: typer.Context, expired: bool = typer.Option(False, "--expired", help="Also those expired."),
                 tenant: str = typer.Option(None, "--tenant")):
    """The waivers in force (with --expired, all of them)."""
    state = state_of(ctx)
    page = state.client.paged("/v1/compliance/waivers", expired="true" if expired else None, tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=WAIVER_COLUMNS,
                                                               empty="No waiver."))


def _render_run(output, final):
    result = final.get("result") or {}
    output.note("Job {} {}: {}.".format(final["job_id"], final.get("status"), ", ".join(
        "{} {}".format(count, status) for status, count in sorted((result.get("totals") or {}).items()))
        or "no host in the rules' scope"))


@compliance_app.command("run")
def run(
    ctx: typer.Context,
    rule: str = typer.Option(None, "--rule", help="Only this rule (default: all of them)."),
    enforce: bool = typer.Option(False, "--enforce", help="Enforce every rule run (fix what drifted)."),
    audit: bool = typer.Option(False, "--audit", help="Audit every rule run (Salt's test=True: nothing changes)."),
    tenant: str = typer.Option(None, "--tenant"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the run (default) or print its job id."),
):
    """Run the compliance rules on their hosts, each in its own mode unless --audit or --enforce."""
    if enforce and audit:
        raise CliError("--audit or --enforce, not both", EXIT_BAD_INPUT)
    state = state_of(ctx)
    body = {"mode": "enforce" if enforce else "audit" if audit else "rules"}
    if rule:
        body["rule"] = rule
    if tenant:
        body["tenant"] = tenant
    answer = state.client.post("/v1/compliance/runs", body)
    state.run_job(answer, wait=wait, render=_render_run)


def _rows(items):
    return [dict(item, why=_why(item)) for item in items]


@compliance_app.command("state")
def compliance_state(
    ctx: typer.Context,
    rule: str = typer.Option(None, "--rule"),
    host: str = typer.Option(None, "--host"),
    status: str = typer.Option(None, "--status", help="passed, drifted, fixed, failed or waived."),
    tenant: str = typer.Option(None, "--tenant"),
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """The newest result of each rule on each host, worst first; exit 1 while a drift is
    not waived or a rule failed."""
    state = state_of(ctx)
    filters = {"rule": rule, "host": host, "tenant": tenant}
    page = state.client.paged("/v1/compliance/state", limit=limit, offset=offset, status=status, **filters)
    page["items"] = _rows(page.get("items") or [])
    bad = {name: state.client.paged("/v1/compliance/state", limit=1, status=name, **filters).get("total", 0)
           for name in NOT_COMPLIANT}
    page["compliant"] = not any(bad.values())

    def render(data):
        state.output.table(data["items"], columns=STATE_COLUMNS, empty="No rule has run yet.")

    if page["compliant"]:
        state.output.result(page, render)
        return
    if not state.output.json:
        render(page)  # with --json, the error's document carries the page
    raise CliError("Not compliant: {}".format(", ".join("{} {}".format(count, name)
                                                        for name, count in bad.items() if count)),
                   EXIT_FAILED, data=page if state.output.json else None)


@compliance_app.command("history")
def history(
    ctx: typer.Context,
    rule: str = typer.Option(None, "--rule"),
    host: str = typer.Option(None, "--host"),
    status: str = typer.Option(None, "--status"),
    run_id: int = typer.Option(None, "--run", min=1, help="Only the results of this run."),
    tenant: str = typer.Option(None, "--tenant"),
    limit: int = typer.Option(20, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """Every result of the rules on the hosts, newest first, as it was recorded."""
    state = state_of(ctx)
    page = state.client.paged("/v1/compliance/history", limit=limit, offset=offset, rule=rule, host=host,
                              status=status, run=run_id, tenant=tenant)
    page["items"] = _rows(page.get("items") or [])
    state.output.result(page, lambda data: state.output.table(data["items"], columns=HISTORY_COLUMNS,
                                                               empty="No result yet."))
