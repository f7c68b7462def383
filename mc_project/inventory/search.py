"""Finding hosts: by name, kind, label, group (and the groups inside it), region, cell,
and by the resolved value of a variable (``hardware.disk:ssd``).

The plain filters are SQL. A variable's filter needs each host's resolved value of
one key: it reads, in a handful of queries, the levels above the hosts (a few
hundred rows), the hosts' own value of that key only (the database extracts it
from their JSON), and who is in which group, then resolves that one key per host
in Python -- never every variable of every host.
"""

import json

from sqlalchemy import Text, and_, cast, false, func, or_, select, type_coerce

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


def resolved_key(sess, tenant_id, key, host_rows_found):
    """``{host id: resolved value of key}`` (hosts where no level sets it are left out)."""
    above = {}
    for (level, object_id), (data, secret_keys) in resolve.load_varsets(
            sess, tenant_id, levels=("tenant", "region", "cell", "group")).items():
        if key in secret_keys:
            above[(level, object_id)] = resolve.SecretRef(level, object_id, key)
        elif key in data:
            above[(level, object_id)] = data[key]
    # The database extracts the one key from each host's JSON; a host without it reads None.
    own = {}
    for object_id, value in sess.connection().execute(
            select(VariableSet.object_id, type_coerce(VariableSet.data[key], Text)).where(
                VariableSet.tenant_id == tenant_id, VariableSet.level == "host")):
        if value is not None and value != "null":  # SQLite quotes a missing key as JSON null
            own[object_id] = value
    # Few hosts have secrets: only their rows are read for them.
    secret_hosts = {object_id for object_id, secret_keys in sess.connection().execute(
        select(VariableSet.object_id, type_coerce(VariableSet.secret_keys, Text)).where(
            VariableSet.tenant_id == tenant_id, VariableSet.level == "host",
            cast(VariableSet.secret_keys, Text) != "[]"))
        if key in (resolve.decode_json(secret_keys) or ())}
    # Who is in which group matters only for hosts that do not set the key themselves.
    unresolved = any(host["id"] not in own and host["id"] not in secret_hosts for host in host_rows_found)
    tree = resolve.GroupTree.load(sess, tenant_id) \
        if unresolved and any(level == "group" for level, _id in above) else None
    memberships = {}
    if tree is not None:
        for group_id, host_id in sess.connection().execute(
                select(GroupMember.group_id, GroupMember.host_id)
                .join(HostGroup, HostGroup.id == GroupMember.group_id).where(HostGroup.tenant_id == tenant_id)):
            memberships.setdefault(host_id, []).append(group_id)
    found, by_place = {}, {}
    for host in host_rows_found:
        host_id = host["id"]
        if host_id in secret_hosts:
            found[host_id] = resolve.SecretRef("host", host_id, key)
            continue
        if host_id in own:
            found[host_id] = resolve.decode_json(own[host_id])
            continue
        groups = frozenset(memberships.get(host_id, ()))
        place = (host["region_id"], host["cell_id"], groups)
        if place not in by_place:
            value = MISSING
            order = tree.order(groups) if tree is not None else ()
            for layer in reversed(resolve.layers(host, tenant_id, order)[:-1]):
                if layer in above:
                    value = above[layer]
                    break
            by_place[place] = value
        if by_place[place] is not MISSING:
            found[host_id] = by_place[place]
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
    matching = []
    for tenant_id in tenant_ids:
        # Only what the resolution needs of each candidate; the page's hosts are read whole after.
        candidates = [dict(zip(("id", "name", "region_id", "cell_id"), row)) for row in sess.connection().execute(
            host_rows.joined(select(Host.id, Host.name, Host.region_id, Host.cell_id))
            .where(*sql_filters(sess, tenant_id, **filters)))]
        for key, path, expected in parsed:
            values = resolved_key(sess, tenant_id, key, candidates)
            candidates = [host for host in candidates
                          if host["id"] in values and matches(values[host["id"]], path, expected)]
        matching.extend(candidates)
    matching.sort(key=lambda row: (row["name"], row["id"]))
    page_ids = [row["id"] for row in matching[offset:offset + limit]]
    return (host_rows.rows(sess, Host.id.in_(page_ids)) if page_ids else []), len(matching)
