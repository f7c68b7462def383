"""``corpus kv get|put|rm|watch``: the key/value store of a tenant through ``/v1/kv``.

``get`` prints a value as it is stored (bytes); ``--recurse`` lists the keys under a
prefix with their values. ``put KEY VALUE`` (``-`` reads the value from stdin);
``--cas N`` writes only if the key's modify index is N (0: only if it does not
exist) and exits 1 when it is not. ``watch KEY`` prints the value, then each new
value as it changes, from blocking reads, until interrupted (or ``--count`` values).
``--json`` prints the API's records (values base64-encoded); ``watch --json`` prints
one record per line.
"""

import base64
import json
import sys
import urllib.parse

import httpx
import typer

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from .state import state_of

kv_app = typer.Typer(name="kv", help="The key/value store: get, put, rm and watch keys.",
                     no_args_is_help=True, add_completion=False, rich_markup_mode=None)

INDEX_HEADER = "X-Corpus-Index"
# A blocking read is answered within its wait; the transport waits a little longer.
WAIT_MARGIN_SECONDS = 30
TenantOption = typer.Option(None, "--tenant", help="The tenant whose store it is (default: your first).")


def register(app):
    app.add_typer(kv_app, name="kv")


def _path(key):
    return "/v1/kv/" + urllib.parse.quote(key, safe="/")


def _call(client, method, key, content=None, timeout=None, missing_ok=False, **params):
    """``(response, index)``; an error answer is the API's sentence and exit code (404 is
    returned as it is with ``missing_ok``)."""
    params = {name: value for name, value in params.items() if value is not None and value is not False}
    try:
        response = client.http.request(method, _path(key), content=content, params=params or None,
                                       timeout=timeout or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise client.unreachable(exc) from None
    if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
        client.decode(response)  # raises the API's sentence
    return response, int(response.headers.get(INDEX_HEADER) or 0)


def _text(value):
    """A value for people: its text, or its size when it is not UTF-8 text."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "<{} bytes>".format(len(value))


def _write_value(value):
    sys.stdout.buffer.write(value if value.endswith(b"\n") or not value else value + b"\n")
    sys.stdout.flush()


@kv_app.command("get")
def get(ctx: typer.Context, key: str = typer.Argument(..., help="The key (or, with --recurse, a prefix)."),
        recurse: bool = typer.Option(False, "--recurse", help="Every key under the prefix KEY."),
        tenant: str = TenantOption):
    """Print a key's value (with --recurse, each key under a prefix and its value)."""
    state = state_of(ctx)
    client = state.client
    if recurse:
        response, _index = _call(client, "GET", key, recurse="true", tenant=tenant)
        items = client.decode(response).get("items") or []
        rows = [{"key": item["key"], "value": _text(base64.b64decode(item["value"])),
                 "flags": item["flags"], "modify_index": item["modify_index"]} for item in items]
        state.output.result(client.decode(response), lambda data: state.output.table(
            rows, columns=["key", "value", "flags", "modify_index"], empty="No keys under {}.".format(key)))
        return
    if state.output.json:
        response, _index = _call(client, "GET", key, tenant=tenant)
        state.output.document(client.decode(response))
        return
    response, _index = _call(client, "GET", key, raw="true", tenant=tenant)
    _write_value(response.content)


@kv_app.command("put")
def put(ctx: typer.Context, key: str = typer.Argument(...),
        value: str = typer.Argument(..., help="The value; - reads it from stdin."),
        cas: int = typer.Option(None, "--cas", min=0, help="Only if the key's modify index is N (0: only if absent)."),
        flags: int = typer.Option(None, "--flags", min=0, help="An integer kept with the value."),
        tenant: str = TenantOption):
    """Set a key's value."""
    state = state_of(ctx)
    content = sys.stdin.buffer.read() if value == "-" else value.encode("utf-8")
    response, index = _call(state.client, "PUT", key, content=content, cas=cas, flags=flags, tenant=tenant)
    written = response.json() is True
    answer = {"key": key, "written": written, "index": index}
    if not written:
        raise CliError("Key {} was not set: its modify index is {}, not {}".format(key, index, cas), EXIT_FAILED,
                       data=answer)
    state.output.result(answer, lambda data: state.output.note("Key {} set (index {}).".format(key, index)))


@kv_app.command("rm")
def rm(ctx: typer.Context, key: str = typer.Argument(..., help="The key (or, with --recurse, a prefix)."),
       recurse: bool = typer.Option(False, "--recurse", help="Every key under the prefix KEY."),
       cas: int = typer.Option(None, "--cas", min=0, help="Only if the key's modify index is N."),
       tenant: str = TenantOption):
    """Delete a key (with --recurse, every key under a prefix)."""
    state = state_of(ctx)
    if recurse and cas is not None:
        raise CliError("--cas applies to one key, not with --recurse", EXIT_BAD_INPUT)
    response, index = _call(state.client, "DELETE", key, recurse=recurse and "true", cas=cas, tenant=tenant)
    deleted = response.json() is True
    answer = {"key": key, "deleted": deleted, "index": index}
    if not deleted:
        raise CliError("Key {} was not deleted: its modify index is not {}".format(key, cas), EXIT_FAILED,
                       data=answer)
    what = "Keys under {}".format(key) if recurse else "Key {}".format(key)
    state.output.result(answer, lambda data: state.output.note("{} deleted.".format(what)))


@kv_app.command("watch")
def watch(ctx: typer.Context, key: str = typer.Argument(..., help="The key (or, with --recurse, a prefix)."),
          recurse: bool = typer.Option(False, "--recurse", help="Every key under the prefix KEY."),
          wait: int = typer.Option(300, "--wait", min=1, max=600, help="Seconds of each blocking read."),
          count: int = typer.Option(None, "--count", min=1, help="Stop after this many values."),
          tenant: str = TenantOption):
    """Print a key's value, then each new value as it changes (blocking reads)."""
    state = state_of(ctx)
    client = state.client
    timeout = httpx.Timeout(wait + WAIT_MARGIN_SECONDS, connect=10.0)
    shown, index = 0, None
    while count is None or shown < count:
        response, new_index = _call(client, "GET", key, timeout=timeout, missing_ok=True, tenant=tenant,
                                    recurse=recurse and "true", index=index,
                                    wait="{}s".format(wait) if index is not None else None)
        if index is not None and new_index == index:
            continue  # the wait ended with nothing new
        index = new_index
        shown += 1
        _show_change(state, key, response, recurse)


def _show_change(state, key, response, recurse):
    body = response.json()
    if state.output.json:
        sys.stdout.write(json.dumps(body, sort_keys=True) + "\n")
        sys.stdout.flush()
    elif response.status_code == 404:
        state.output.err.print("{} does not exist.".format(key), markup=False)
    elif recurse:
        for item in body.get("items") or []:
            state.output.raw("{} = {}".format(item["key"], _text(base64.b64decode(item["value"]))))
        state.output.raw("--")
    else:
        _write_value(base64.b64decode(body["value"]))
