"""Finding hosts: by name, kind, label, group (and the groups inside it), region, cell,
and by the resolved value of a variable (``hardware.disk:ssd``).

The plain filters are SQL. A variable's filter decides first the hosts that set
the key themselves, in the database (it compares text along mapping keys itself, or
hands back that one key's value), then resolves the rest from the levels above,
which are a few hundred rows, once per place (region, cell, groups) -- never every
variable of every host.
"""

import json

from sqlalchemy import Text, and_, cast, false, func, literal, not_, or_, select, type_coerce
from sqlalchemy.orm import aliased

from mc_project.errors import CorpusError
from mc_project.inventory import fleet_rules, host_rows, resolve
from mc_project.inventory.fleet_models import Cell, GroupMember, Host, HostGroup, HostLabel, VariableSet
from mc_project.inventory.models import Region

MISSING = object()


def parse_var_filter(text):
    """``("hardware", ["disk"], "ssd")`` from ``hardware.disk:ssd``."""
    path, sep, expected = str(text).partition(":")
    keys = path.split(".") if path else []
    if not sep or not keys or not all(keys) or not fleet_rules.VARIABLE_KEY_RE.fullmatch(keys[0]):
        raise CorpusError("A variable filter reads KEY[.SUBKEY...]:VALUE, for example hardware.disk:ssd; "
                          "got {!r}.".format(text))
    return keys[0], keys[1:], expected


def matches(value, path, expected):
    for step in path:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return False
    if isinstance(value, resolve.SecretRef):
        return False  # a secret is never searchable: a match would tell its value
    if isinstance(value, str):
        return value == expected
    return json.dumps(value, sort_keys=True) == expected


def sql_filters(sess, tenant_id, name=None, kind=None, label=None, group=None, region=None, cell=None):
    """WHERE clauses for the plain filters (an unknown group, region or cell matches nothing)."""
    where = [host_rows.in_tenant(tenant_id)]
    if name is not None:
        where.append(Host.name == name)
    if kind is not None:
        where.append(Host.kind == kind)
    if label is not None:
        where.append(Host.id.in_(select(HostLabel.host_id).where(HostLabel.label == label)))
    if group is not None:
        tree = resolve.GroupTree.load(sess, tenant_id)
        wanted = [gid for gid, gname in tree.names.items() if gname == group]
        ids = tree.with_descendants(wanted[0]) if wanted else set()
        where.append(Host.id.in_(select(GroupMember.host_id).where(GroupMember.group_id.in_(sorted(ids)))))
    if region is not None:
        where.append(Host.region_id.in_(select(Region.id).where(Region.tenant_id == tenant_id,
                                                                 Region.name == region)))
    if cell is not None:
        where.append(Host.cell_id.in_(select(Cell.id).join(Region, Region.id == Cell.region_id).where(
            Region.tenant_id == tenant_id, Cell.name == cell)))
    return where


def _has_key(data, key, dialect):
    """SQL: the JSON mapping ``data`` has ``key`` (even set to null)."""
    if dialect == "sqlite":
        return func.json_type(data, '$."{}"'.format(key)).is_not(None)
    return data[key].is_not(None)


def _text_at(data, keys, expected, dialect):
    """SQL: the value at path ``keys`` in ``data`` is the text ``expected``."""
    if dialect == "sqlite":
        path = "$" + "".join('."{}"'.format(step) for step in keys)
        return and_(func.json_type(data, path) == "text", func.json_extract(data, path) == expected)
    return and_(func.jsonb_typeof(data[tuple(keys)]) == "string", data[tuple(keys)].as_string() == expected)


def _compared_in_sql(path, expected):
    """Whether the database can tell a match itself: text compared along mapping keys.
    Anything else (a number, true, a list index) is decided in Python."""
    try:
        json.loads(expected)
        return False
    except ValueError:
        return all(fleet_rules.VARIABLE_KEY_RE.fullmatch(step) for step in path)


def _above_values(sess, tenant_id, key):
    """``{(level, id): value of key}`` of the levels above the hosts that set it."""
    above = {}
    for (level, object_id), (data, secret_keys) in resolve.load_varsets(
            sess, tenant_id, levels=("tenant", "region", "cell", "group")).items():
        if key in secret_keys:
            above[(level, object_id)] = resolve.SecretRef(level, object_id, key)
        elif key in data:
            above[(level, object_id)] = data[key]
    return above


def matching_hosts(sess, tenant_id, where, key, path, expected):
    """``{host id: name}`` of the hosts of ``where`` whose resolved ``key`` matches.

    A host that sets the key itself is decided by its own value: the database compares
    it when it can (text along mapping keys), or hands back that one value. Only the
    hosts that do not set it are resolved from the levels above, once per place."""
    dialect = sess.connection().dialect.name
    own = aliased(VariableSet)
    present = _has_key(own.data, key, dialect)
    hosts = host_rows.joined(select(Host.id, Host.name, Host.region_id, Host.cell_id)).outerjoin(
        own, and_(own.level == "host", own.object_id == Host.id)).where(*where)
    connection = sess.connection()
    secret_hosts = {object_id for object_id, secret_keys in connection.execute(
        select(VariableSet.object_id, type_coerce(VariableSet.secret_keys, Text)).where(
            VariableSet.tenant_id == tenant_id, VariableSet.level == "host",
            cast(VariableSet.secret_keys, Text) != "[]"))
        if key in (resolve.decode_json(secret_keys) or ())}
    found = {}
    if _compared_in_sql(path, expected):
        query = hosts.with_only_columns(Host.id, Host.name).where(present, _text_at(own.data, [key] + path,
                                                                                  expected, dialect))
        found.update(connection.execute(query).all())
    else:
        # SQLite's extraction turns true and false into 1 and 0; its json_type still tells them.
        kind = func.json_type(own.data, '$."{}"'.format(key)) if dialect == "sqlite" else literal(None)
        query = hosts.with_only_columns(Host.id, Host.name, type_coerce(own.data[key], Text), kind).where(present)
        for host_id, name, value, value_kind in connection.execute(query):
            value = value_kind == "true" if value_kind in ("true", "false") else resolve.decode_json(value)
            if matches(value, path, expected):
                found[host_id] = name
    # The hosts that do not set the key take it from the levels above.
    undecided = [dict(zip(("id", "name", "region_id", "cell_id"), row)) for row in connection.execute(
        hosts.where(or_(own.id.is_(None), not_(present))))]
    undecided = [host for host in undecided if host["id"] not in secret_hosts]
    if undecided:
        above = _above_values(sess, tenant_id, key)
        tree, memberships = None, {}
        if any(level == "group" for level, _id in above):
            tree = resolve.GroupTree.load(sess, tenant_id)
            for group_id, host_id in connection.execute(
                    select(GroupMember.group_id, GroupMember.host_id)
                    .join(HostGroup, HostGroup.id == GroupMember.group_id).where(HostGroup.tenant_id == tenant_id)):
                memberships.setdefault(host_id, []).append(group_id)
        by_place = {}
        for host in undecided:
            groups = frozenset(memberships.get(host["id"], ()))
            place = (host["region_id"], host["cell_id"], groups)
            if place not in by_place:
                value = MISSING
                order = tree.order(groups) if tree is not None else ()
                for layer in reversed(resolve.layers(host, tenant_id, order)[:-1]):
                    if layer in above:
                        value = above[layer]
                        break
                by_place[place] = value is not MISSING and matches(value, path, expected)
            if by_place[place]:
                found[host["id"]] = host["name"]
    for host_id in secret_hosts:
        found.pop(host_id, None)  # a secret never matches: a match would tell its value
    return found


def find(sess, tenant_ids, limit, offset, var_filters=(), **filters):
    """``(host rows of one page, total)`` of the hosts of ``tenant_ids`` matching every filter."""
    parsed = [parse_var_filter(text) for text in var_filters]
    if not parsed:
        where = or_(*(and_(*sql_filters(sess, tenant_id, **filters)) for tenant_id in tenant_ids)) \
            if tenant_ids else false()
        total = sess.scalar(host_rows.joined(select(func.count(Host.id))).where(where))
        found = sess.execute(host_rows.select_hosts(where).order_by(Host.name, Host.id).limit(limit).offset(offset))
        return [dict(row._mapping) for row in found], total
    matching = {}
    for tenant_id in tenant_ids:
        where = sql_filters(sess, tenant_id, **filters)
        found = None
        for key, path, expected in parsed:
            these = matching_hosts(sess, tenant_id, where, key, path, expected)
            found = these if found is None else {host_id: name for host_id, name in found.items()
                                                 if host_id in these}
        matching.update(found)
    ordered = sorted(matching.items(), key=lambda item: (item[1], item[0]))
    page_ids = [host_id for host_id, _name in ordered[offset:offset + limit]]
    return (host_rows.rows(sess, Host.id.in_(page_ids)) if page_ids else []), len(ordered)
