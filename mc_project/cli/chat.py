"""``corpus chat set|show|rm``: a tenant's chat settings through ``/v1/tenants/{tenant}/chat``.

``set`` takes the outgoing webhook (job progress is posted there), the file holding
the incoming shared secret (never a command-line argument: it would show in ``ps``)
and the chat users allowed, each ``CHATNAME=LOGIN``; a webhook or secret left out is
kept. Without ``--tenant``, the tenant is the one you administer, if only one.
"""

import typer

from .errors import EXIT_BAD_INPUT, EXIT_NOT_ALLOWED, CliError
from .state import state_of

chat_app = typer.Typer(name="chat", help="Chat: job progress to a webhook, commands from a chat bridge.",
                       no_args_is_help=True, add_completion=False, rich_markup_mode=None)

TenantOption = typer.Option(None, "--tenant", help="The tenant (default: the one you administer).")
FIELDS = ["tenant", "webhook", "secret", "users", "updated", "updated_by"]


def register(app):
    app.add_typer(chat_app, name="chat")


def _tenant(state, tenant):
    if tenant:
        return tenant
    administered = [row["name"] for row in state.client.paged("/v1/tenants").get("items") or []
                    if row.get("role") == "admin"]
    if len(administered) == 1:
        return administered[0]
    if not administered:
        raise CliError("You are admin of no tenant; chat settings are a tenant admin's", EXIT_NOT_ALLOWED)
    raise CliError("You are admin of {}; name one with --tenant".format(", ".join(administered)), EXIT_BAD_INPUT)


def _users(pairs):
    users = {}
    for pair in pairs or []:
        chat_name, sep, login = pair.partition("=")
        if not sep or not chat_name.strip() or not login.strip():
            raise CliError("--user takes CHATNAME=LOGIN, not {!r}".format(pair), EXIT_BAD_INPUT)
        users[chat_name.strip()] = login.strip()
    return users


def _secret(path):
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            secret = fh.read().strip()
    except (OSError, UnicodeError) as exc:
        raise CliError("Cannot read the secret file {}: {}".format(path, getattr(exc, "strerror", None) or exc),
                       EXIT_BAD_INPUT) from None
    if not secret:
        raise CliError("The secret file {} is empty".format(path), EXIT_BAD_INPUT)
    return secret


def _show(state, record):
    state.output.result(record, lambda data: state.output.fields(data, FIELDS))


@chat_app.command("set")
def set_chat(
    ctx: typer.Context,
    webhook: str = typer.Option(None, "--webhook", help="Where job progress is posted ('' removes it)."),
    secret_file: str = typer.Option(None, "--secret-file", help="A file holding the incoming shared secret."),
    user: list[str] = typer.Option(None, "--user", help="CHATNAME=LOGIN: a chat user and the login it acts as."),
    tenant: str = TenantOption,
):
    """Set a tenant's chat settings (its admins only)."""
    users = _users(user)
    body = {"users": users}
    secret = _secret(secret_file)
    if secret is not None:
        body["secret"] = secret
    if webhook is not None:
        body["webhook"] = webhook
    state = state_of(ctx)
    _show(state, state.client.request("PUT", "/v1/tenants/{}/chat".format(_tenant(state, tenant)), json_body=body))


@chat_app.command("show")
def show_chat(ctx: typer.Context, tenant: str = TenantOption):
    """A tenant's chat settings (the webhook masked, the secret never shown)."""
    state = state_of(ctx)
    _show(state, state.client.get("/v1/tenants/{}/chat".format(_tenant(state, tenant))))


@chat_app.command("rm")
def remove_chat(ctx: typer.Context, tenant: str = TenantOption):
    """Forget a tenant's chat settings: no more progress posted, no more commands taken."""
    state = state_of(ctx)
    name = _tenant(state, tenant)
    state.client.delete("/v1/tenants/{}/chat".format(name))
    state.output.result({"removed": name}, lambda data: state.output.note("Chat settings of {} removed.".format(name)))
