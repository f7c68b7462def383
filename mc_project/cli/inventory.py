"""``corpus inventory ...``: the fleet inventory through the API.

Objects are named by KIND and NAME: ``tenant acme``, ``region eu``, ``cell eu/r1``,
``group web``, ``host web1``. Variables are ``KEY=VALUE`` where VALUE is JSON
(``disk='{"type": "ssd"}'``, ``cpus=8``, ``tags='["a","b"]'``) or else text.
"""

import json
from enum import Enum
from pathlib import Path

import typer
import yaml

from .errors import EXIT_BAD_INPUT, CliError
from .state import state_of

inventory_app = typer.Typer(name="inventory", help="The fleet inventory: regions, cells, groups, hosts, variables.",
                            no_args_is_help=True, add_completion=False, rich_markup_mode=None)

HOST_COLUMNS = ["name", "kind", "address", "ssh_port", "region", "cell", "groups", "labels", "parent"]


class Kind(str, Enum):
    tenant = "tenant"
    region = "region"
    cell = "cell"
    group = "group"
    host = "host"


PLURAL = {"region": "regions", "cell": "cells", "group": "groups", "host": "hosts"}


def register(app):
    app.add_typer(inventory_app, name="inventory")


def object_path(client, kind, name):
    """``/v1/<kind>s/<id>`` (or ``/v1/tenants/<name>``) of the object ``kind`` named ``name``."""
    if kind == "tenant":
        return "/v1/tenants/{}".format(name)
    params = {"name": name}
    if kind == "cell":
        region, slash, cell = name.partition("/")
        if not slash or not region or not cell:
            raise CliError("A cell is named REGION/CELL, for example eu/r1; got {}".format(name), EXIT_BAD_INPUT)
        params = {"region": region, "name": cell}
    found = client.get("/v1/" + PLURAL[kind], **params).get("items") or []
    if not found:
        raise CliError("No {} named {}".format(kind, name), EXIT_BAD_INPUT, 404)
    if len(found) > 1:
        raise CliError("{} {}s are named {}; add --tenant to list them per tenant".format(len(found), kind, name),
                       EXIT_BAD_INPUT)
    return "/v1/{}/{}".format(PLURAL[kind], found[0]["id"])


def parse_assignment(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CliError("A variable is KEY=VALUE; got {}".format(text), EXIT_BAD_INPUT)
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _host_fields(address, port, user, minion, parent, region, cell, labels, groups):
    fields = {"address": address, "ssh_port": port, "ssh_user": user, "minion_id": minion, "parent": parent,
              "region": region, "cell": cell}
    fields = {key: value for key, value in fields.items() if value is not None}
    if labels:
        fields["labels"] = list(labels)
    if groups:
        fields["groups"] = list(groups)
    return fields


@inventory_app.command("list")
def list_objects(
    ctx: typer.Context,
    kind: Kind = typer.Argument(..., help="region, cell, group or host."),
    label: str = typer.Option(None, "--label", help="Hosts with this label."),
    group: str = typer.Option(None, "--group", help="Hosts in this group (or a group inside it)."),
    region: str = typer.Option(None, "--region", help="Hosts (or cells) in this region."),
    cell: str = typer.Option(None, "--cell", help="Hosts in this cell."),
    var: list[str] = typer.Option(None, "--var", help="KEY[.SUB]:VALUE of a resolved variable (repeatable)."),
    tenant: str = typer.Option(None, "--tenant"),
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """List regions, cells, groups or hosts (hosts: search by label, group, region, cell, variable)."""
    state = state_of(ctx)
    if kind == Kind.tenant:
        raise CliError("Tenants are listed by corpus's tenant verbs; list region, cell, group or host",
                       EXIT_BAD_INPUT)
    filters = {"tenant": tenant}
    if kind == Kind.host:
        filters.update(label=label, group=group, region=region, cell=cell, vars=list(var or []) or None)
    elif kind == Kind.cell:
        filters.update(region=region)
    page = state.client.paged("/v1/" + PLURAL[kind.value], limit=limit, offset=offset, **filters)
    columns = HOST_COLUMNS if kind == Kind.host else None
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=columns,
                                                               empty="No {}s.".format(kind.value)))


@inventory_app.command("show")
def show(ctx: typer.Context, kind: Kind = typer.Argument(...), name: str = typer.Argument(...)):
    """One object: a host's address, region, cell, groups, labels; a group's children..."""
    state = state_of(ctx)
    if kind == Kind.tenant:
        record = state.client.get("/v1/tenants/{}".format(name))
    else:
        record = state.client.get(object_path(state.client, kind.value, name))
    state.output.result(record, lambda data: state.output.fields(data))


@inventory_app.command("add")
def add(
    ctx: typer.Context,
    kind: Kind = typer.Argument(..., help="region, cell (REGION/CELL), group or host."),
    name: str = typer.Argument(...),
    address: str = typer.Option(None, "--address", help="A host's address (name or IP)."),
    port: int = typer.Option(None, "--port", min=1, max=65535, help="A host's SSH port."),
    user: str = typer.Option(None, "--user", help="A host's SSH user."),
    minion: str = typer.Option(None, "--minion", help="A host's Salt minion id (none: salt-ssh reaches it)."),
    parent: str = typer.Option(None, "--parent", help="A host's parent host."),
    region: str = typer.Option(None, "--region"),
    cell: str = typer.Option(None, "--cell"),
    label: list[str] = typer.Option(None, "--label", help="A host's label (repeatable)."),
    group: list[str] = typer.Option(None, "--group", help="A host's group (repeatable)."),
    child: list[str] = typer.Option(None, "--child", help="A group inside a new group (repeatable)."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Add a region, a cell, a group or a host (a machine: nodes and environments are hosts already)."""
    state = state_of(ctx)
    body = {"name": name}
    if tenant:
        body["tenant"] = tenant
    if kind == Kind.tenant:
        raise CliError("Tenants are made by an admin of tenant default (POST /v1/tenants)", EXIT_BAD_INPUT)
    if kind == Kind.cell:
        region_name, slash, cell_name = name.partition("/")
        if not slash:
            raise CliError("A cell is named REGION/CELL, for example eu/r1; got {}".format(name), EXIT_BAD_INPUT)
        body.update(region=region_name, name=cell_name)
    if kind == Kind.group and child:
        body["children"] = list(child)
    if kind == Kind.host:
        body.update(_host_fields(address, port, user, minion, parent, region, cell, label, group))
    made = state.client.post("/v1/" + PLURAL[kind.value], body)
    state.output.result(made, lambda data: state.output.note("{} {} added.".format(kind.value.capitalize(), name)))


@inventory_app.command("change")
def change(
    ctx: typer.Context,
    kind: Kind = typer.Argument(...),
    name: str = typer.Argument(...),
    rename: str = typer.Option(None, "--rename", help="Its new name."),
    address: str = typer.Option(None, "--address"),
    port: int = typer.Option(None, "--port", min=1, max=65535),
    user: str = typer.Option(None, "--user"),
    minion: str = typer.Option(None, "--minion"),
    parent: str = typer.Option(None, "--parent"),
    region: str = typer.Option(None, "--region"),
    cell: str = typer.Option(None, "--cell"),
    label: list[str] = typer.Option(None, "--label", help="The host's labels (replace them all)."),
    group: list[str] = typer.Option(None, "--group", help="The host's groups (replace them all)."),
    child: list[str] = typer.Option(None, "--child", help="The group's children (replace them all)."),
):
    """Change an object: rename it; a host's address, place, parent, labels, groups; a group's children."""
    state = state_of(ctx)
    body = {"name": rename} if rename else {}
    if kind == Kind.host:
        body.update(_host_fields(address, port, user, minion, parent, region, cell, label, group))
    if kind == Kind.group and child:
        body["children"] = list(child)
    if not body:
        raise CliError("Nothing to change: give --rename or what to set", EXIT_BAD_INPUT)
    path = object_path(state.client, kind.value, name)
    changed = state.client.request("PATCH", path, json_body=body)
    state.output.result(changed, lambda data: state.output.fields(data))


@inventory_app.command("remove")
def remove(ctx: typer.Context, kind: Kind = typer.Argument(...), name: str = typer.Argument(...)):
    """Remove a region (and its cells), a cell, a group or a host."""
    state = state_of(ctx)
    state.client.delete(object_path(state.client, kind.value, name))
    state.output.result({"removed": name}, lambda data: state.output.note("{} {} removed.".format(
        kind.value.capitalize(), name)))


@inventory_app.command("vars")
def variables(
    ctx: typer.Context,
    kind: Kind = typer.Argument(...),
    name: str = typer.Argument(...),
    resolved: bool = typer.Option(False, "--resolved", help="A host's values from every level, and where each "
                                                            "came from."),
    reveal: bool = typer.Option(False, "--reveal-secrets", help="Show secret values (deployers and admins)."),
):
    """An object's variables; ``--resolved`` for a host: what it gets, and from which level."""
    state = state_of(ctx)
    if resolved and kind != Kind.host:
        raise CliError("Only a host's variables are resolved; use host NAME", EXIT_BAD_INPUT)
    answer = state.client.get(object_path(state.client, kind.value, name) + "/variables",
                              resolved="true" if resolved else None, reveal_secrets="true" if reveal else None)

    def render(data):
        provenance = data.get("provenance") or {}
        rows = [{"key": key, "value": json.dumps(value, sort_keys=True) if not isinstance(value, str) else value,
                 "from": "{} {}".format(provenance[key]["level"], provenance[key]["name"])
                 if key in provenance else "-"} for key, value in sorted(data["variables"].items())]
        state.output.table(rows, columns=["key", "value", "from"] if resolved else ["key", "value"],
                           empty="No variables.")

    state.output.result(answer, render)


@inventory_app.command("set")
def set_variables(
    ctx: typer.Context,
    kind: Kind = typer.Argument(...),
    name: str = typer.Argument(...),
    assignments: list[str] = typer.Argument(None, metavar="KEY=VALUE...", help="Variables to set."),
    secret: list[str] = typer.Option(None, "--secret", help="KEY=VALUE kept encrypted (repeatable)."),
    unset: list[str] = typer.Option(None, "--unset", help="A KEY to remove (repeatable)."),
):
    """Set (or ``--unset``) some of an object's variables; ``--secret`` ones are stored encrypted."""
    state = state_of(ctx)
    body = {"variables": dict(parse_assignment(text) for text in assignments or []),
            "secrets": {key: value if isinstance(value, str) else json.dumps(value)
                        for key, value in (parse_assignment(text) for text in secret or [])},
            "remove": list(unset or [])}
    if not any(body.values()):
        raise CliError("Nothing to set: give KEY=VALUE, --secret KEY=VALUE or --unset KEY", EXIT_BAD_INPUT)
    answer = state.client.request("PATCH", object_path(state.client, kind.value, name) + "/variables",
                                  json_body=body)
    state.output.result(answer, lambda data: state.output.fields(data["variables"]) if data["variables"]
                        else state.output.note("No variables."))


@inventory_app.command("changes")
def changes(
    ctx: typer.Context,
    kind: Kind = typer.Argument(...),
    name: str = typer.Argument(...),
    limit: int = typer.Option(None, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
):
    """An object's change log, newest first (secret values never shown)."""
    state = state_of(ctx)
    page = state.client.paged(object_path(state.client, kind.value, name) + "/changes", limit=limit, offset=offset)
    state.output.result(page, lambda data: state.output.table(
        data.get("items") or [], columns=["at", "user", "action", "before", "after"], empty="No changes."))


@inventory_app.command("import")
def import_file(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A YAML (.yaml, .yml) or CSV (.csv) file."),
    file_format: str = typer.Option(None, "--format", help="yaml or csv (default: from the file's name)."),
    tenant: str = typer.Option(None, "--tenant"),
):
    """Import regions, cells, groups, hosts and variables, all or nothing."""
    state = state_of(ctx)
    fmt = file_format or ("csv" if path.suffix.lower() == ".csv" else "yaml")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise CliError("Cannot read {}: {}".format(path, getattr(exc, "strerror", None) or exc), EXIT_BAD_INPUT) \
            from None
    body = {"format": fmt, "content": content}
    if tenant:
        body["tenant"] = tenant
    answer = state.client.post("/v1/inventory/import", body)
    state.output.result(answer, lambda data: state.output.note("Imported into {}: {}.".format(
        data["tenant"], ", ".join("{} {}".format(count, kind) for kind, count in data["imported"].items()))))


@inventory_app.command("ansible")
def ansible(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant")):
    """The Ansible dynamic inventory (JSON), as ``corpus-inventory --list`` prints it."""
    state = state_of(ctx)
    state.output.document(state.client.get("/v1/ansible-inventory", tenant=tenant))


@inventory_app.command("roster")
def roster(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant")):
    """The salt-ssh roster (YAML) of the hosts that run no minion."""
    state = state_of(ctx)
    found = state.client.get("/v1/salt-roster", tenant=tenant)
    if state.output.json:
        state.output.document(found)
    else:
        state.output.raw(yaml.safe_dump(found, default_flow_style=False, sort_keys=True) if found else "{}")
