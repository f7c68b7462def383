"""``corpus push [ENV]``: the current checkout to an environment's remote, through its
NATed SSH port, with the deploy's output streamed as git prints it."""

import os
import shlex
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import typer

from . import config, names
from .errors import EXIT_BAD_INPUT, CliError
from .projects import git_toplevel, project_path
from .state import state_of

DEFAULT_BRANCH = "main"  # the projects' deploy branch unless their pillar says otherwise


def register(app):
    app.command("push")(push)


def write_private_key(path, key):
    """Write an SSH private key to ``path``, 0600, ending with a newline as ssh wants."""
    if not key.strip():
        raise CliError("The controller gave no SSH private key for this environment")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.strip() + "\n")


def forget_host_key(ssh):
    """Drop ``HOST:PORT``'s key from corpus's known_hosts: an environment made again
    behind the same port has a new one, which ssh would refuse as changed."""
    host, _, port = (ssh or "").rpartition(":")
    known_hosts = config.known_hosts_path()
    if not host or not port.isdigit() or not known_hosts.exists():
        return
    try:
        subprocess.run(["ssh-keygen", "-R", f"[{host}]:{port}", "-f", str(known_hosts)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        pass


def ssh_command(key_file, known_hosts, host_name=None):
    words = [
        "ssh", "-i", shlex.quote(str(key_file)),
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", shlex.quote(f"UserKnownHostsFile={known_hosts}"),
    ]
    if host_name:
        words += ["-o", shlex.quote(f"HostName={host_name}")]
    return " ".join(words)


def resolves(host):
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def address_instead(remote, env_ssh, resolve=resolves):
    """The address to reach an ``ssh://`` remote through when its host name does not
    resolve (a new environment's DNS name may not have reached this machine yet): the
    node's address of the environment's ``ssh`` (``HOST:PORT``, the same NATed port)."""
    parts = urlsplit(remote or "")
    host, _, port = (env_ssh or "").rpartition(":")
    if parts.scheme != "ssh" or not parts.hostname or not host or resolve(parts.hostname):
        return None
    if parts.port is not None and port and str(parts.port) != port:
        return None
    return host.strip("[]")


def push(
    ctx: typer.Context,
    env: str = typer.Argument(None, help="The environment (default: yours)."),
    project: str = typer.Option(None, "--project", "-p", help="The project (default: the checkout's directory name)."),
    branch: str = typer.Option(DEFAULT_BRANCH, "--branch", "-b", help="The branch to push to (the deploy branch)."),
    force: bool = typer.Option(False, "--force", help="git push --force."),
):
    """Push this checkout's HEAD to the environment and stream its deploy."""
    state = state_of(ctx)
    env = state.env_name(env)
    toplevel = git_toplevel()
    if not toplevel:
        raise CliError(f"{os.getcwd()} is not a git checkout: run corpus push from one", EXIT_BAD_INPUT)
    project = names.project_name(project or Path(toplevel).name)
    try:
        record = state.client.get(project_path(env, project))
    except CliError as exc:
        if exc.status == 404:
            raise CliError(f"No project {project} in {env}: create it with corpus init {project} --env {env}, "
                           "or name another with --project", EXIT_BAD_INPUT, 404) from None
        raise
    remote = record.get("remote")
    if not remote:
        raise CliError(f"The controller gave no remote for {env}/{project}")
    creds = state.client.get(f"/v1/environments/{env}/credentials")
    # The environment's "ssh" is its node's address and NATed port (HOST:PORT).
    via = address_instead(remote, state.client.get(f"/v1/environments/{env}").get("ssh"))
    if via:
        state.output.notes.print(f"{urlsplit(remote).hostname} does not resolve here: pushing through {via}.",
                                 markup=False)
    known_hosts = config.known_hosts_path()
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="corpus-push-") as tmp:
        key_file = Path(tmp) / "id"
        write_private_key(key_file, creds.get("ssh_private_key") or "")
        environ = dict(os.environ, GIT_SSH_COMMAND=ssh_command(key_file, known_hosts, via))
        command = ["git", "push"] + (["--force"] if force else []) + [remote, f"HEAD:refs/heads/{branch}"]
        state.output.notes.print(f"Pushing {toplevel} to {env}/{project} ({remote})", markup=False)
        # git's stderr (the deploy's output, from the remote hook) goes straight to the user.
        stdout = subprocess.DEVNULL if state.output.json else None
        try:
            done = subprocess.run(command, cwd=toplevel, env=environ, stdout=stdout)
        except FileNotFoundError:
            raise CliError("git is not installed") from None
    outcome = {"env": env, "project": project, "remote": remote, "branch": branch, "exit_code": done.returncode}
    if state.output.json:
        state.output.document(outcome)
    elif done.returncode == 0:
        state.output.note(f"Deployed {env}/{project}.")
    else:
        state.output.err.print(f"corpus: the push to {env}/{project} failed (git exit {done.returncode}).",
                               markup=False)
    if done.returncode:
        raise typer.Exit(done.returncode)
