"""``corpus login``, ``corpus logout``, ``corpus whoami``."""

import os
import sys

import typer

from . import config
from .errors import EXIT_BAD_INPUT, CliError
from .state import state_of


def register(app):
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def login(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", "-u", help="Your user name (else CORPUS_USER, else the config file)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
):
    """Log in to the controller and keep the token (0600) for the other verbs."""
    state = state_of(ctx)
    settings = state.settings
    url = settings.require_url()
    name = user or settings.user
    if not name:
        if not sys.stdin.isatty():
            raise CliError("No user name: give --user, or set user in the configuration file or CORPUS_USER",
                           EXIT_BAD_INPUT)
        name = typer.prompt("User")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("CORPUS_PASSWORD"):
        password = os.environ["CORPUS_PASSWORD"]
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True)
    else:
        raise CliError("No password: use --password-stdin (or CORPUS_PASSWORD) when not run from a terminal",
                       EXIT_BAD_INPUT)
    state.settings.token = ""  # log in without the old token
    answer = state.client.post("/v1/login", {"username": name, "password": password})
    token = answer.get("token")
    if not token:
        raise CliError(f"The controller at {url} answered the login without a token")
    config.save_token(token)
    # The next verbs find the controller and the user without flags.
    config.save_file_values(url=url, user=name)
    shown = {key: value for key, value in answer.items() if key != "token"}
    shown["token_file"] = str(config.token_path())
    state.output.result(shown, lambda data: _render_login(state.output, url, data))


def _render_login(output, url, data):
    user = data.get("user") or {}
    expires = data.get("expires_at")
    output.note(f"Logged in to {url} as {user.get('name', '?')}" + (f" until {expires}." if expires else "."))
    _render_tenants(output, user)


def _render_tenants(output, user):
    tenants = user.get("tenants") or []
    if tenants:
        output.note("Tenants: " + ", ".join(f"{t.get('name')} ({t.get('role')})" for t in tenants))


def logout(ctx: typer.Context):
    """Revoke the token on the controller and forget it here."""
    state = state_of(ctx)
    if state.settings.token and state.settings.url:
        try:
            state.client.post("/v1/logout")
        except CliError as exc:
            if exc.exit_code != 3:  # an expired token is as good as revoked
                raise
    config.forget_token()
    state.output.result({"logged_out": True}, lambda data: state.output.note("Logged out."))


def whoami(ctx: typer.Context):
    """Who the token belongs to, and your tenants and roles."""
    state = state_of(ctx)
    if not state.settings.token:
        raise CliError("Not logged in: run corpus login", 3)
    user = state.client.get("/v1/whoami")

    def render(data):
        state.output.note(f"{data.get('name')} on {state.settings.url}")
        _render_tenants(state.output, data)

    state.output.result(user, render)
