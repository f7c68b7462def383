"""Environments and nodes: ``listhosts``, ``envs``, ``init_env``, ``status``, ``credentials``,
``destroy``, ``redeploy``, ``trim``, ``enlarge``."""

import sys
from enum import Enum

import typer

from mc_project.common.vocabulary import NODE_NAME_RE

from . import names, progress
from .errors import EXIT_BAD_INPUT, CliError
from .push import forget_host_key, write_private_key
from .sizes import parse_size_mb
from .state import state_of

ENV_COLUMNS = ["name", "type", "status", "project", "node", "ssh", "domains", "disk_size_mb", "image"]
STATUS_KEYS = ["name", "uuid", "type", "status", "tenant", "project", "projects", "node", "ip", "ssh", "domains",
               "disk_size_mb", "image"]


class EnvType(str, Enum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


def register(app):
    app.command("listhosts")(listhosts)
    app.command("envs")(list_envs)
    app.command("init_env")(init_env)
    app.command("status")(status)
    app.command("credentials")(credentials)
    app.command("destroy")(destroy)
    app.command("redeploy")(redeploy)
    app.command("trim")(trim)
    app.command("enlarge")(enlarge)


WAIT = typer.Option(True, "--wait/--no-wait", help="Follow the job to its end (default), or print its id.")


def listhosts(
    ctx: typer.Context,
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """The compute nodes: address, DNS name, free slots."""
    state = state_of(ctx)
    page = state.client.paged("/v1/nodes", limit=limit, offset=offset)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], empty="No nodes."))


def list_envs(
    ctx: typer.Context,
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """Your environments: type, status, node, SSH, domains."""
    state = state_of(ctx)
    page = state.client.paged("/v1/environments", limit=limit, offset=offset)
    state.output.result(page, lambda data: state.output.table(
        data.get("items") or [], columns=ENV_COLUMNS, empty="No environments."))


def init_env(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The environment's name (a DNS label)."),
    env_type: EnvType = typer.Argument(..., metavar="TYPE", help="What it is for: dev, staging or prod."),
    project: str = typer.Option(None, "--project", "-p", help="Its first project (default: NAME)."),
    host: str = typer.Option(None, "--host", help="The node to put it on (default: one with a free slot)."),
    disk: str = typer.Option(None, "--disk", help="Its disk size: 10G, 512M..."),
    image: str = typer.Option(None, "--image", metavar="NAME[:VERSION]",
                              help="The image to clone it from (default: the default image's current version)."),
    wait: bool = WAIT,
):
    """Create an environment (a container) and follow the job."""
    state = state_of(ctx)
    body = {"name": names.env_name(name), "type": env_type.value}
    if project:
        body["project"] = names.project_name(project)
    if host:
        if not NODE_NAME_RE.match(host):
            raise CliError(f"Bad node name {host!r}", EXIT_BAD_INPUT)
        body["host"] = host
    if disk:
        body["disk_size_mb"] = parse_size_mb(disk)
    if image:
        body["image"] = image
    answer = state.client.post("/v1/environments", body)
    final = state.run_job(answer, wait=wait, render=lambda output, data: _render_created(state, name, data))
    return final


def _render_created(state, name, final):
    output = state.output
    output.note(f"Environment {name} is ready (job {final['job_id']}).")
    result = final.get("result") if isinstance(final.get("result"), dict) else {}
    output.fields(result, [key for key in ("ssh", "domains", "git_remote", "remote", "ip", "node") if result.get(key)])
    output.note(f"Next: corpus init PROJECT --env {name}, then corpus push {name}.")


def status(ctx: typer.Context, name: str = typer.Argument(None, help="The environment (default: yours).")):
    """An environment: type, status, node, address, SSH, domains, projects."""
    state = state_of(ctx)
    name = state.env_name(name)
    env = state.client.get(f"/v1/environments/{name}")
    state.output.result(env, lambda data: state.output.fields(
        data, STATUS_KEYS + [key for key in data if key not in STATUS_KEYS]))


def credentials(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The environment (default: yours)."),
    key_file: str = typer.Option(None, "--key-file", help="Write the SSH private key to this file (0600)."),
):
    """An environment's SSH access, root password and SSH private key."""
    state = state_of(ctx)
    name = state.env_name(name)
    creds = state.client.get(f"/v1/environments/{name}/credentials")
    if key_file:
        write_private_key(key_file, creds.get("ssh_private_key") or "")

    def render(data):
        state.output.fields(data, ["name", "ssh", "root_password"])
        if key_file:
            state.output.note(f"SSH private key written to {key_file}.")
        elif data.get("ssh_private_key"):
            state.output.raw(data["ssh_private_key"])

    state.output.result(creds, render)


def destroy(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The environment to remove, with everything it holds."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    wait: bool = WAIT,
):
    """Remove an environment: its container, projects, data, DNS names and ports."""
    state = state_of(ctx)
    name = state.env_name(name)
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"Destroying {name} needs --yes when not run from a terminal", EXIT_BAD_INPUT)
        typed = typer.prompt(f"This removes {name} and all its data. Type its name to go on")
        if typed.strip() != name:
            raise CliError(f"Not destroyed: {typed.strip()!r} is not {name!r}", EXIT_BAD_INPUT)
    ssh = state.client.get(f"/v1/environments/{name}").get("ssh")
    answer = state.client.delete(f"/v1/environments/{name}")
    final = state.run_job(answer, wait=wait,
                          render=lambda output, data: output.note(f"Environment {name} destroyed."))
    if wait and progress.succeeded(final):
        forget_host_key(ssh)


def redeploy(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The environment (default: yours)."),
    image: str = typer.Option(None, "--image", help="The golden image to build from (default: the current one)."),
    wait: bool = WAIT,
):
    """Move an environment to a new container (new root password and SSH keys), with no downtime."""
    state = state_of(ctx)
    name = state.env_name(name)
    body = {"image": image} if image else {}
    ssh = state.client.get(f"/v1/environments/{name}").get("ssh")
    answer = state.client.post(f"/v1/environments/{name}/redeploy", body)
    final = state.run_job(answer, wait=wait, render=lambda output, data: output.note(
        f"Environment {name} redeployed: new root password and SSH keys (corpus credentials {name})."))
    if wait and progress.succeeded(final):
        forget_host_key(ssh)


def _resize(ctx, name, size, grow, wait):
    state = state_of(ctx)
    name = state.env_name(name)
    size_mb = parse_size_mb(size)
    answer = state.client.post(f"/v1/environments/{name}/resize", {"size_mb": size_mb, "grow": grow})
    verb = "enlarged" if grow else "trimmed"
    state.run_job(answer, wait=wait,
                  render=lambda output, data: output.note(f"Environment {name} {verb} to {size_mb} MiB."))


def trim(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    size: str = typer.Argument(..., help="The new disk size: 10G, 512M, 1.5G (a plain number is MiB)."),
    wait: bool = WAIT,
):
    """Shrink an environment's disk (refused below the space in use)."""
    _resize(ctx, name, size, False, wait)


def enlarge(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    size: str = typer.Argument(..., help="The new disk size: 10G, 512M, 1.5G (a plain number is MiB)."),
    wait: bool = WAIT,
):
    """Grow an environment's disk."""
    _resize(ctx, name, size, True, wait)
