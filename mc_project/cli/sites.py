"""Sites, planned and applied: ``plan SITE.yml``, ``apply PLAN_ID``, ``site status SITE``,
``site destroy SITE``. (``corpus status`` and ``corpus destroy`` are an environment's.)"""

import json
import sys

import typer

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from .state import state_of

EXIT_CHANGES = 2  # plan --detailed-exitcode: the plan has changes, as Terraform's
site_app = typer.Typer(name="site", help="A site's status and destruction.", no_args_is_help=True)


def register(app):
    app.command("plan")(plan)
    app.command("apply")(apply)
    site_app.command("status")(status)
    site_app.command("destroy")(destroy)
    app.add_typer(site_app, name="site")


def _change_text(changes):
    parts = []
    for key, (before, after) in changes.items():
        if key == "records":
            gone = [row for row in before if row not in after]
            new = [row for row in after if row not in before]
            parts.extend("-record {} {} {}".format(*row[:3]) for row in gone)
            parts.extend("+record {} {} {}".format(*row[:3]) for row in new)
        else:
            parts.append("{}: {} -> {}".format(key, json.dumps(before), json.dumps(after)))
    return parts


def print_actions(output, actions):
    for action in actions:
        output.raw("{:>3} {} {}".format(action["op"], action["kind"], action["name"]))
        for line in _change_text(action.get("changes") or {}):
            output.raw("        " + line)


def _read(path):
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError(f"Cannot read the blueprint {path}: {exc.strerror}", EXIT_BAD_INPUT) from None


def plan(
    ctx: typer.Context,
    blueprint: str = typer.Argument(..., metavar="SITE.yml", help="The site's blueprint (YAML or JSON; - for stdin)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                           help="Exit 2 when the plan has changes, 0 when it has none."),
    out: str = typer.Option(None, "--out", help="Also write the plan (JSON) to this file."),
):
    """Compare a site's blueprint with the inventory: what apply would add (+), change (~),
    replace (-/+) and destroy (-). The plan is stored; apply it with corpus apply PLAN_ID."""
    state = state_of(ctx)
    answer = state.client.post("/v1/plans", {"blueprint": _read(blueprint)})
    _show_plan(state, answer, out)
    if detailed_exitcode and answer.get("actions"):
        raise typer.Exit(EXIT_CHANGES)
    return answer


def _show_plan(state, answer, out=None):
    if out:
        try:
            with open(out, "w", encoding="utf-8") as handle:
                json.dump(answer, handle, indent=2, sort_keys=True)
        except OSError as exc:
            raise CliError(f"Cannot write the plan to {out}: {exc.strerror}", EXIT_BAD_INPUT) from None

    def render(data):
        print_actions(state.output, data.get("actions") or [])
        state.output.note(data.get("message", ""))
        if data.get("actions"):
            state.output.note(f"Plan {data['id']} of site {data['site']}: corpus apply {data['id']}")

    state.output.result(answer, render)


def apply(
    ctx: typer.Context,
    plan_id: int = typer.Argument(..., metavar="PLAN_ID", help="The plan corpus plan stored.", min=1),
):
    """Run exactly the stored plan as one job, and follow it."""
    state = state_of(ctx)
    stored = state.client.get(f"/v1/plans/{plan_id}")
    answer = state.client.post(f"/v1/plans/{plan_id}/apply")
    if not answer.get("job_id"):
        state.output.result(answer, lambda data: state.output.note(data.get("message") or "Nothing to apply."))
        return answer
    message = stored.get("message", "").replace("Plan: ", "")
    return state.run_job(answer, render=lambda output, data: output.note(
        f"Apply complete (plan {plan_id}, job {data['job_id']}): {message}"))


def status(ctx: typer.Context, site: str = typer.Argument(..., help="The site.")):
    """What the site owns and its drift from what was applied; exit 1 on drift."""
    state = state_of(ctx)
    answer = state.client.get(f"/v1/sites/{site}/status")

    def render(data):
        state.output.table(data.get("objects") or [], columns=["kind", "name"], empty="Nothing.")
        print_actions(state.output, data.get("drift") or [])
        state.output.note(data.get("message", ""))

    state.output.result(answer, render)
    if answer.get("drifted"):
        raise typer.Exit(EXIT_FAILED)


def destroy(
    ctx: typer.Context,
    site: str = typer.Argument(..., help="The site whose environments, domains and checks are removed."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
):
    """Remove everything the site owns: shows the plan, asks, then applies it."""
    state = state_of(ctx)
    answer = state.client.post("/v1/plans", {"site": site, "destroy": True})
    _show_plan(state, answer)
    if not answer.get("actions"):
        return answer
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"Destroying site {site} needs --yes when not run from a terminal", EXIT_BAD_INPUT)
        typed = typer.prompt(f"This removes all site {site} owns. Type its name to go on")
        if typed.strip() != site:
            raise CliError(f"Not destroyed: {typed.strip()!r} is not {site!r}", EXIT_BAD_INPUT)
    started = state.client.post(f"/v1/plans/{answer['id']}/apply")
    return state.run_job(started, render=lambda output, data: output.note(f"Site {site} destroyed."))
