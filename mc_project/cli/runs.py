"""Runs on the inventory: ``run TARGET state.apply [SLS...] [--test]`` (Salt) and
``playbook TARGET FILE [--check]`` (Ansible), each a job followed live: one line per
host event, then the summary per host. A run that failed or left a host unreachable
is exit 1."""

from pathlib import Path

import typer

from .errors import EXIT_BAD_INPUT, CliError
from .state import state_of

MAX_PLAYBOOK_BYTES = 256 * 1024
TARGET_HELP = ("A group, a label (key=value) or a region of the inventory; or group:NAME, region:NAME, "
               "cell:NAME, label:LABEL, host:NAME.")


def register(app):
    app.command("run")(run)
    app.command("playbook")(playbook)


def _render(output, final):
    output.note(f"Job {final['job_id']} {final.get('status')}.")


def run(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TARGET", help=TARGET_HELP),
    function: str = typer.Argument(..., metavar="FUNCTION", help="state.apply, state.sls or state.highstate."),
    sls: list[str] = typer.Argument(None, metavar="[SLS]...", help="The SLS to apply (state.apply without: "
                                    "the highstate); test=True is --test."),
    test: bool = typer.Option(False, "--test", help="A dry run: Salt's test=True, nothing is changed."),
    tenant: str = typer.Option(None, "--tenant", help="The tenant whose hosts TARGET names."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the run (default) or print its job id."),
):
    """Run a Salt state on the minions of the inventory's hosts TARGET names."""
    names = []
    for item in sls or ():
        if item.replace(" ", "").lower() in ("test=true", "test=1"):
            test = True  # Salt's own spelling of the dry run
        else:
            names.append(item)
    state = state_of(ctx)
    body = {"target": target, "function": function, "sls": names, "test": test}
    if tenant:
        body["tenant"] = tenant
    answer = state.client.post("/v1/runs", body)
    state.run_job(answer, wait=wait, render=_render)


def playbook(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TARGET", help=TARGET_HELP),
    path: Path = typer.Argument(..., metavar="FILE", help="The playbook (YAML), sent to the controller."),
    check: bool = typer.Option(False, "--check", help="A dry run: Ansible's --check, nothing is changed."),
    tenant: str = typer.Option(None, "--tenant", help="The tenant whose hosts TARGET names."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the run (default) or print its job id."),
):
    """Run an Ansible playbook over SSH on the inventory's hosts TARGET names."""
    try:
        if path.stat().st_size > MAX_PLAYBOOK_BYTES:
            raise CliError(f"{path} is over {MAX_PLAYBOOK_BYTES // 1024} KiB; a playbook is sent whole",
                           EXIT_BAD_INPUT)
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise CliError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}", EXIT_BAD_INPUT) from None
    state = state_of(ctx)
    body = {"target": target, "playbook": content, "check": check}
    if tenant:
        body["tenant"] = tenant
    answer = state.client.post("/v1/playbooks", body)
    state.run_job(answer, wait=wait, render=_render)
