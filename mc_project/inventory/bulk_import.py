"""Bulk import of the inventory from YAML or CSV, all or nothing.

YAML holds any of these keys (every list item a mapping; what exists already is
updated, what does not is made)::

    variables: {ntp: pool.ntp.org}          # the tenant's own
    secrets: {api_token: "..."}
    regions:
      - name: eu
        variables: {dns: [10.0.0.1]}
        cells: [r1, {name: r2, variables: {rack: 7}}]
    groups:
      - {name: web, children: [frontend], variables: {tier: web}}
    hosts:
      - {name: web1, address: 192.0.2.5, region: eu, cell: r1, labels: [ssd],
         groups: [web], parent: rack1, variables: {hardware: {disk: ssd}}}

CSV holds hosts, one a row, under a header naming the columns: ``name`` and any of
``address``, ``ssh_port``, ``ssh_user``, ``minion_id``, ``parent``, ``region``,
``cell``, ``labels`` and ``groups`` (words separated by spaces or ``;``), and
``var.KEY`` (a JSON value, or else text). Regions, cells and groups they name
must exist.

The whole import is one transaction: the first bad item stops it with one
sentence naming the item (``Row 7 (web7): ...``), and nothing is imported.
"""

import csv
import io
import json

import yaml

from mc_project.errors import CorpusError
from mc_project.inventory import fleet
from mc_project.inventory.fleet_rules import Conflict, NotFound

CSV_COLUMNS = ("name", "address", "ssh_port", "ssh_user", "minion_id", "parent", "region", "cell", "labels",
               "groups")
YAML_KEYS = ("variables", "secrets", "regions", "groups", "hosts")
MAX_BYTES = 16 << 20


class ImportRefused(CorpusError):
    """One item of an import was refused; ``status`` is what the API answers."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _refused(where, exc):
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
    return ImportRefused("{}: {}".format(where, str(exc).rstrip(".") + "."), status)


def parse_yaml(text):
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line {}".format(mark.line + 1) if mark is not None else ""
        raise ImportRefused("The YAML is not valid{}: {}.".format(where, getattr(exc, "problem", None) or exc)) \
            from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ImportRefused("The YAML must be a mapping of {}.".format(", ".join(YAML_KEYS)))
    unknown = sorted(str(key) for key in document if key not in YAML_KEYS)
    if unknown:
        raise ImportRefused("Unknown key {} in the YAML; it may hold {}.".format(unknown[0], ", ".join(YAML_KEYS)))
    return document


def _words(text):
    return [word for word in text.replace(";", " ").split() if word]


def _csv_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_csv(text):
    """``{"hosts": [...]}`` from CSV text; a bad row is refused by its number."""
    try:
        return _parse_csv(text)
    except csv.Error as exc:
        raise ImportRefused("The CSV is not valid: {}.".format(str(exc).rstrip("."))) from None


def _parse_csv(text):
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "name" not in header:
        raise ImportRefused("The CSV's first line must name its columns, among them name.")
    for column in header:
        if column not in CSV_COLUMNS and not (column or "").startswith("var."):
            raise ImportRefused("Unknown CSV column {!r}; use {} or var.KEY.".format(column, ", ".join(CSV_COLUMNS)))
    hosts = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise ImportRefused("Row {}: it has more fields than the header names.".format(number))
        host = {"_where": "Row {} ({})".format(number, row.get("name") or "no name")}
        variables = {}
        for column, value in row.items():
            value = (value or "").strip()
            if column.startswith("var."):
                if value:
                    variables[column[4:]] = _csv_value(value)
            elif column in ("labels", "groups"):
                host[column] = _words(value)
            elif column == "ssh_port" and value:
                if not value.isdigit():
                    raise ImportRefused("{}: ssh_port {!r} is not a port number.".format(host["_where"], value))
                host[column] = int(value)
            elif value:
                host[column] = value
        if variables:
            host["variables"] = variables
        hosts.append(host)
    return {"hosts": hosts}


def _items(document, key):
    items = document.get(key) or []
    if not isinstance(items, list):
        raise ImportRefused("{} must be a list.".format(key.capitalize()))
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ImportRefused("{}[{}] must be a mapping.".format(key, index))
        yield item.get("_where") or "{}[{}] ({})".format(key, index, item.get("name", "no name")), item


def _set_variables(sess, keyring, actor, tenant_id, level, object_id, name, item):
    if "variables" in item or "secrets" in item:
        fleet.set_variables(sess, keyring, actor, tenant_id, level, object_id, name,
                            variables=item.get("variables") or {}, secrets=item.get("secrets") or {})


def _only(item, allowed, where):
    unknown = sorted(str(key) for key in item if key not in allowed and key != "_where")
    if unknown:
        raise CorpusError("unknown field {}".format(unknown[0]))


def apply(sess, keyring, actor, tenant_id, document):
    """Import ``document`` (from ``parse_yaml`` or ``parse_csv``) into tenant ``tenant_id``;
    return how many of each kind were made or changed. The caller rolls back on a refusal."""
    counts = {"regions": 0, "cells": 0, "groups": 0, "hosts": 0}
    where = "variables"
    try:
        tenant_name = fleet.tenant_name(sess, tenant_id)
        _set_variables(sess, keyring, actor, tenant_id, "tenant", tenant_id, tenant_name, document)
        for where, item in _items(document, "regions"):
            _only(item, ("name", "cells", "variables", "secrets"), where)
            try:
                region = fleet.region_by_name(sess, tenant_id, item.get("name"))
            except NotFound:
                fleet.create_region(sess, actor, tenant_id, item.get("name"))
                region = fleet.region_by_name(sess, tenant_id, item["name"])
            counts["regions"] += 1
            _set_variables(sess, keyring, actor, tenant_id, "region", region.id, region.name, item)
            if not isinstance(item.get("cells") or [], list):
                raise CorpusError("cells must be a list")
            for cell_item in item.get("cells") or []:
                cell_item = {"name": cell_item} if isinstance(cell_item, str) else cell_item
                if not isinstance(cell_item, dict):
                    raise CorpusError("a cell is a name or a mapping")
                _only(cell_item, ("name", "variables", "secrets"), where)
                try:
                    cell = fleet.cell_by_name(sess, region, cell_item.get("name"))
                except NotFound:
                    fleet.create_cell(sess, actor, region, cell_item.get("name"))
                    cell = fleet.cell_by_name(sess, region, cell_item["name"])
                counts["cells"] += 1
                _set_variables(sess, keyring, actor, tenant_id, "cell", cell.id, cell.name, cell_item)
        groups = list(_items(document, "groups"))
        for where, item in groups:  # every group first, then what is inside which
            _only(item, ("name", "children", "variables", "secrets"), where)
            try:
                fleet.group_by_name(sess, tenant_id, item.get("name"))
            except NotFound:
                fleet.create_group(sess, actor, tenant_id, item.get("name"))
            counts["groups"] += 1
        for where, item in groups:
            group = fleet.group_by_name(sess, tenant_id, item["name"])
            if "children" in item:
                fleet.update_group(sess, actor, group, children=item["children"])
            _set_variables(sess, keyring, actor, tenant_id, "group", group.id, group.name, item)
        hosts = list(_items(document, "hosts"))
        made = {}
        for where, item in hosts:  # every host first, then their parents
            _only(item, fleet.HOST_FIELDS + ("variables", "secrets"), where)
            fields = {key: value for key, value in item.items() if key in fleet.HOST_FIELDS and key != "parent"}
            try:
                existing = fleet.host_by_name(sess, tenant_id, item.get("name"))
            except NotFound:
                existing = None
            if existing is None:
                made[item.get("name")] = fleet.create_host(sess, actor, tenant_id, fields)["id"]
            else:
                fields.pop("name", None)
                if existing["kind"] != "machine":
                    fields = {key: value for key, value in fields.items() if key not in fleet.BACKED_FIELDS}
                fleet.update_host(sess, actor, existing["id"], tenant_id, fields)
                made[item["name"]] = existing["id"]
            counts["hosts"] += 1
        for where, item in hosts:
            host_id = made[item["name"]]
            if "parent" in item:
                fleet.update_host(sess, actor, host_id, tenant_id, {"parent": item["parent"]})
            _set_variables(sess, keyring, actor, tenant_id, "host", host_id, item["name"], item)
    except ImportRefused:
        raise
    except CorpusError as exc:
        raise _refused(where, exc) from None
    return counts


def parse(text, fmt):
    if len(text) > MAX_BYTES:
        raise ImportRefused("The import is {} bytes; at most {} are allowed.".format(len(text), MAX_BYTES))
    if fmt == "yaml":
        return parse_yaml(text)
    if fmt == "csv":
        return parse_csv(text)
    raise ImportRefused("Unknown import format {!r}; use yaml or csv.".format(fmt))


def needs_keyring(document):
    """Whether the import writes secret variables (and so needs the secrets key)."""
    if document.get("secrets"):
        return True
    for key in ("regions", "groups", "hosts"):
        items = document.get(key) or []
        for item in items if isinstance(items, list) else []:
            cells = item.get("cells") if isinstance(item, dict) else None
            if isinstance(item, dict) and (item.get("secrets") or isinstance(cells, list) and any(
                    isinstance(cell, dict) and cell.get("secrets") for cell in cells)):
                return True
    return False
