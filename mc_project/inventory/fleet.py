"""Changing the fleet inventory: regions, cells, groups, hosts and their variables.

Every function takes an open session and the tenant the caller may act in (the
API checked the role); it refuses bad input with one sentence before changing
anything, and notes each change in the change log. Objects are found by id or,
within one tenant, by name.
"""

from sqlalchemy import delete, func, select

from mc_project.errors import CorpusError
from mc_project.inventory import changelog, fleet_rules, host_rows, resolve, secret_vars
from mc_project.inventory.fleet_models import (
    Cell,
    GroupChild,
    GroupMember,
    Host,
    HostGroup,
    HostLabel,
    VariableSet,
)
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.models import ComputeNode, Environment, Region, Tenant

HOST_FIELDS = ("name", "address", "ssh_port", "ssh_user", "minion_id", "parent", "region", "cell", "labels",
               "groups")
# What a node's or environment's host takes from its node or environment.
BACKED_FIELDS = ("name", "address", "ssh_port", "ssh_user", "minion_id")


# --------------------------------------------------------------------------- finding

def tenant_name(sess, tenant_id):
    return sess.scalar(select(Tenant.name).where(Tenant.id == tenant_id))


def region_by_name(sess, tenant_id, name):
    found = sess.scalar(select(Region).where(Region.tenant_id == tenant_id, Region.name == str(name)))
    if found is None:
        raise NotFound("No region named {}.".format(name))
    return found


def cell_by_name(sess, region, name):
    found = sess.scalar(select(Cell).where(Cell.region_id == region.id, Cell.name == str(name)))
    if found is None:
        raise NotFound("No cell named {} in region {}.".format(name, region.name))
    return found


def group_by_name(sess, tenant_id, name):
    found = sess.scalar(select(HostGroup).where(HostGroup.tenant_id == tenant_id, HostGroup.name == str(name)))
    if found is None:
        raise NotFound("No group named {}.".format(name))
    return found


def host_by_name(sess, tenant_id, name):
    found = sess.execute(host_rows.select_hosts(host_rows.in_tenant(tenant_id), Host.name == str(name))
                         .limit(1)).first()
    if found is None:
        raise NotFound("No host named {}.".format(name))
    return dict(found._mapping)


def cell_tenant(sess, cell):
    return sess.scalar(select(Region.tenant_id).where(Region.id == cell.region_id))


# --------------------------------------------------------------------------- records

def region_record(sess, region):
    cells = sess.scalars(select(Cell.name).where(Cell.region_id == region.id).order_by(Cell.name)).all()
    return {"id": region.id, "name": region.name, "tenant": tenant_name(sess, region.tenant_id),
            "cells": list(cells)}


def cell_record(sess, cell):
    region = sess.get(Region, cell.region_id)
    return {"id": cell.id, "name": cell.name, "region": region.name, "tenant": tenant_name(sess, region.tenant_id)}


def group_record(sess, group):
    children = sess.scalars(select(HostGroup.name).join(GroupChild, GroupChild.child_id == HostGroup.id)
                            .where(GroupChild.parent_id == group.id).order_by(HostGroup.name)).all()
    parents = sess.scalars(select(HostGroup.name).join(GroupChild, GroupChild.parent_id == HostGroup.id)
                           .where(GroupChild.child_id == group.id).order_by(HostGroup.name)).all()
    hosts = sess.scalars(select(Host.name).join(GroupMember, GroupMember.host_id == Host.id)
                         .where(GroupMember.group_id == group.id).order_by(Host.name)).all()
    return {"id": group.id, "name": group.name, "tenant": tenant_name(sess, group.tenant_id),
            "children": list(children), "parents": list(parents), "hosts": list(hosts)}


def host_record(sess, host_id):
    found = host_rows.one(sess, host_id)
    if found is None:
        raise NotFound("No host {}.".format(host_id))
    return host_rows.records(sess, [found])[0]


def variables_record(sess, level, object_id):
    """An object's own variables as the change log and the API show them: secrets masked."""
    found = sess.scalar(select(VariableSet).where(VariableSet.level == level, VariableSet.object_id == object_id))
    if found is None:
        return {}
    shown = dict(found.data or {})
    shown.update((key, resolve.MASK) for key in found.secret_keys or [])
    return shown


# --------------------------------------------------------------------------- regions and cells

def create_region(sess, actor, tenant_id, name):
    fleet_rules.check_name("region", name)
    if sess.scalar(select(Region.id).where(Region.tenant_id == tenant_id, Region.name == name)) is not None:
        raise Conflict("Region {} already exists.".format(name))
    region = Region(tenant_id=tenant_id, name=name)
    sess.add(region)
    sess.flush()
    after = region_record(sess, region)
    changelog.record(sess, actor, tenant_id, "region", region.id, name, None, after)
    return after


def rename_region(sess, actor, region, name):
    fleet_rules.check_name("region", name)
    before = region_record(sess, region)
    if name != region.name and sess.scalar(select(Region.id).where(
            Region.tenant_id == region.tenant_id, Region.name == name)) is not None:
        raise Conflict("Region {} already exists.".format(name))
    region.name = name
    sess.flush()
    after = region_record(sess, region)
    changelog.record(sess, actor, region.tenant_id, "region", region.id, name, before, after)
    return after


def _refuse_if_holding(sess, column, object_id, what):
    count = sess.scalar(select(func.count(Host.id)).where(column == object_id))
    if count:
        raise Conflict("{} still holds {} host(s); move them first.".format(what, count))


def _forget_variables(sess, level, object_ids):
    if object_ids:
        sess.execute(delete(VariableSet).where(VariableSet.level == level, VariableSet.object_id.in_(object_ids)))
        for object_id in object_ids:
            secret_vars.remove(sess, level, object_id)


def delete_region(sess, actor, region):
    _refuse_if_holding(sess, Host.region_id, region.id, "Region {}".format(region.name))
    before = region_record(sess, region)
    cell_ids = sess.scalars(select(Cell.id).where(Cell.region_id == region.id)).all()
    _forget_variables(sess, "cell", cell_ids)
    _forget_variables(sess, "region", [region.id])
    sess.execute(delete(Cell).where(Cell.region_id == region.id))
    sess.delete(region)
    changelog.record(sess, actor, region.tenant_id, "region", region.id, region.name, before, None)


def create_cell(sess, actor, region, name):
    fleet_rules.check_name("cell", name)
    if sess.scalar(select(Cell.id).where(Cell.region_id == region.id, Cell.name == name)) is not None:
        raise Conflict("Cell {} already exists in region {}.".format(name, region.name))
    cell = Cell(region_id=region.id, name=name)
    sess.add(cell)
    sess.flush()
    after = cell_record(sess, cell)
    changelog.record(sess, actor, region.tenant_id, "cell", cell.id, name, None, after)
    return after


def rename_cell(sess, actor, cell, name):
    fleet_rules.check_name("cell", name)
    before = cell_record(sess, cell)
    if name != cell.name and sess.scalar(select(Cell.id).where(
            Cell.region_id == cell.region_id, Cell.name == name)) is not None:
        raise Conflict("Cell {} already exists in region {}.".format(name, before["region"]))
    cell.name = name
    sess.flush()
    after = cell_record(sess, cell)
    changelog.record(sess, actor, cell_tenant(sess, cell), "cell", cell.id, name, before, after)
    return after


def delete_cell(sess, actor, cell):
    _refuse_if_holding(sess, Host.cell_id, cell.id, "Cell {}".format(cell.name))
    before = cell_record(sess, cell)
    tenant_id = cell_tenant(sess, cell)
    _forget_variables(sess, "cell", [cell.id])
    sess.delete(cell)
    changelog.record(sess, actor, tenant_id, "cell", cell.id, cell.name, before, None)


# --------------------------------------------------------------------------- groups

def _group_edges(sess, tenant_id):
    """``{parent id: [child ids]}`` of a tenant's groups."""
    edges = {}
    for parent_id, child_id in sess.execute(select(GroupChild.parent_id, GroupChild.child_id)
                                            .join(HostGroup, HostGroup.id == GroupChild.parent_id)
                                            .where(HostGroup.tenant_id == tenant_id)):
        edges.setdefault(parent_id, []).append(child_id)
    return edges


def set_group_children(sess, group, child_names):
    """Make ``child_names`` the groups directly inside ``group``; a cycle is refused."""
    if not isinstance(child_names, (list, tuple)):
        raise CorpusError("A group's children must be a list of group names.")
    children = [group_by_name(sess, group.tenant_id, name) for name in dict.fromkeys(child_names)]
    sess.execute(delete(GroupChild).where(GroupChild.parent_id == group.id))
    sess.flush()
    edges = _group_edges(sess, group.tenant_id)
    id_names = {child.id: child.name for child in children}
    id_names[group.id] = group.name
    for child in children:
        if child.id == group.id:
            raise CorpusError("Group {} cannot contain itself.".format(group.name))
        path = fleet_rules.find_cycle(edges, child.id, group.id)
        if path is not None:
            names = dict(sess.execute(select(HostGroup.id, HostGroup.name).where(HostGroup.id.in_(path))).all())
            raise CorpusError("Group {} cannot contain group {}: that would make a cycle ({}).".format(
                group.name, child.name, " > ".join([group.name] + [names[step] for step in path])))
        sess.add(GroupChild(parent_id=group.id, child_id=child.id))
        edges.setdefault(group.id, []).append(child.id)
    sess.flush()


def create_group(sess, actor, tenant_id, name, children=()):
    fleet_rules.check_name("group", name)
    if sess.scalar(select(HostGroup.id).where(HostGroup.tenant_id == tenant_id, HostGroup.name == name)):
        raise Conflict("Group {} already exists.".format(name))
    group = HostGroup(tenant_id=tenant_id, name=name)
    sess.add(group)
    sess.flush()
    set_group_children(sess, group, list(children or ()))
    after = group_record(sess, group)
    changelog.record(sess, actor, tenant_id, "group", group.id, name, None, after)
    return after


def update_group(sess, actor, group, name=None, children=None):
    before = group_record(sess, group)
    if name is not None and name != group.name:
        fleet_rules.check_name("group", name)
        if sess.scalar(select(HostGroup.id).where(HostGroup.tenant_id == group.tenant_id, HostGroup.name == name)):
            raise Conflict("Group {} already exists.".format(name))
        group.name = name
    if children is not None:
        set_group_children(sess, group, children)
    sess.flush()
    after = group_record(sess, group)
    changelog.record(sess, actor, group.tenant_id, "group", group.id, group.name, before, after)
    return after


def delete_group(sess, actor, group):
    before = group_record(sess, group)
    _forget_variables(sess, "group", [group.id])
    sess.execute(delete(GroupChild).where((GroupChild.parent_id == group.id) | (GroupChild.child_id == group.id)))
    sess.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    sess.delete(group)
    changelog.record(sess, actor, group.tenant_id, "group", group.id, group.name, before, None)


# --------------------------------------------------------------------------- hosts

def _check_host_fields(fields, backed):
    unknown = sorted(set(fields) - set(HOST_FIELDS))
    if unknown:
        raise CorpusError("Unknown host field {}; a host has: {}.".format(unknown[0], ", ".join(HOST_FIELDS)))
    if backed:
        fixed = sorted(key for key in fields if key in BACKED_FIELDS)
        if fixed:
            raise CorpusError("A node's or environment's host takes its {} from it; change the node or the "
                              "environment instead.".format(fixed[0]))
    if "name" in fields:
        fleet_rules.check_host_name(fields["name"])
    if fields.get("address") is not None and not fleet_rules.ADDRESS_RE.fullmatch(str(fields["address"])):
        raise CorpusError("Address {!r} is not a host name or an IP address.".format(fields["address"]))
    port = fields.get("ssh_port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535):
        raise CorpusError("SSH port {!r} is not a port number (1-65535).".format(port))
    if fields.get("ssh_user") is not None and not fleet_rules.SSH_USER_RE.fullmatch(str(fields["ssh_user"])):
        raise CorpusError("SSH user {!r} is not a user name.".format(fields["ssh_user"]))
    if fields.get("minion_id") is not None:
        fleet_rules.check_name("minion", fields["minion_id"], fleet_rules.HOST_NAME_RE)


def _name_taken(sess, tenant_id, name, host_id=None):
    """Whether another host of the tenant, or any node or environment, is named ``name``."""
    query = host_rows.select_hosts(host_rows.in_tenant(tenant_id), Host.name == name)
    if host_id is not None:
        query = query.where(Host.id != host_id)
    return (sess.execute(query.limit(1)).first() is not None
            or sess.scalar(select(ComputeNode.id).where(ComputeNode.name == name)) is not None
            or sess.scalar(select(Environment.id).where(Environment.name == name)) is not None)


def _minion_taken(sess, minion_id, host_id):
    return (sess.scalar(select(Host.id).where(Host.minion_id == minion_id, Host.id != host_id)) is not None
            or sess.scalar(select(ComputeNode.id).where(ComputeNode.minion_id == minion_id)) is not None
            or sess.scalar(select(Environment.id).where(Environment.minion_id == minion_id)) is not None)


def _apply_host_fields(sess, host, tenant_id, fields):
    """Set ``fields`` on ``host`` (a ``Host`` row), checking every reference first."""
    if "name" in fields and fields["name"] != host.name:
        if _name_taken(sess, tenant_id, fields["name"], host.id):
            raise Conflict("A host named {} already exists.".format(fields["name"]))
        host.name = fields["name"]
    for column in ("address", "ssh_port", "ssh_user"):
        if column in fields:
            setattr(host, column, fields[column])
    if "minion_id" in fields:
        if fields["minion_id"] is not None and _minion_taken(sess, fields["minion_id"], host.id):
            raise Conflict("Minion {} is already another host's.".format(fields["minion_id"]))
        host.minion_id = fields["minion_id"]
    if "region" in fields or "cell" in fields:
        region_name = fields.get("region", None if "region" in fields else _name_of(sess, Region, host.region_id))
        cell_name = fields.get("cell", None if "cell" in fields else _name_of(sess, Cell, host.cell_id))
        region = region_by_name(sess, tenant_id, region_name) if region_name is not None else None
        if cell_name is not None and region is None:
            raise CorpusError("A cell is inside a region: give the region of cell {} too.".format(cell_name))
        cell = cell_by_name(sess, region, cell_name) if cell_name is not None else None
        host.region_id = region.id if region else None
        host.cell_id = cell.id if cell else None
    if "parent" in fields:
        _set_parent(sess, host, tenant_id, fields["parent"])
    if "labels" in fields:
        labels = fleet_rules.check_labels(fields["labels"] or [])
        sess.execute(delete(HostLabel).where(HostLabel.host_id == host.id))
        sess.add_all(HostLabel(host_id=host.id, label=label) for label in labels)
    if "groups" in fields:
        if not isinstance(fields["groups"] or [], (list, tuple)):
            raise CorpusError("A host's groups must be a list of group names.")
        groups = [group_by_name(sess, tenant_id, name) for name in dict.fromkeys(fields["groups"] or [])]
        sess.execute(delete(GroupMember).where(GroupMember.host_id == host.id))
        sess.add_all(GroupMember(group_id=group.id, host_id=host.id) for group in groups)
    sess.flush()


def _name_of(sess, model, object_id):
    return sess.scalar(select(model.name).where(model.id == object_id)) if object_id else None


def _set_parent(sess, host, tenant_id, parent_name):
    if parent_name is None:
        host.parent_id = None
        return
    parent = host_by_name(sess, tenant_id, parent_name)
    chain, current = [host.name], parent
    while current is not None:
        chain.append(current["name"])
        if current["id"] == host.id:
            raise CorpusError("Host {} cannot have {} as parent: that would make a cycle ({}).".format(
                host.name, parent_name, " > ".join(chain)))
        current = host_rows.one(sess, current["parent_id"]) if current["parent_id"] else None
    host.parent_id = parent["id"]


def create_host(sess, actor, tenant_id, fields):
    """A new machine (not a node nor an environment: those are hosts already)."""
    _check_host_fields(fields, backed=False)
    if "name" not in fields:
        raise CorpusError("A host needs a name.")
    if _name_taken(sess, tenant_id, fields["name"]):
        raise Conflict("A host named {} already exists.".format(fields["name"]))
    host = Host(name=fields["name"], kind="machine", tenant_id=tenant_id)
    sess.add(host)
    sess.flush()
    _apply_host_fields(sess, host, tenant_id, dict(fields, name=host.name))
    after = host_record(sess, host.id)
    changelog.record(sess, actor, tenant_id, "host", host.id, host.name, None, after)
    return after


def update_host(sess, actor, host_id, tenant_id, fields):
    host = sess.get(Host, host_id)
    _check_host_fields(fields, backed=host.kind != "machine")
    before = host_record(sess, host_id)
    _apply_host_fields(sess, host, tenant_id, fields)
    after = host_record(sess, host_id)
    changelog.record(sess, actor, tenant_id, "host", host.id, host.name, before, after)
    return after


def delete_host(sess, actor, host_id, tenant_id):
    host = sess.get(Host, host_id)
    if host.kind != "machine":
        raise Conflict("Host {} is {} {}; it goes when that is destroyed or unlinked.".format(
            host.name, "environment" if host.kind == "environment" else "compute node", host.name))
    before = host_record(sess, host_id)
    _forget_variables(sess, "host", [host.id])
    sess.delete(host)
    sess.flush()
    changelog.record(sess, actor, tenant_id, "host", host_id, before["name"], before, None)


# --------------------------------------------------------------------------- variables

def object_label(level, object_id, name):
    return name if name is not None else "{} {}".format(level, object_id)


def set_variables(sess, keyring, actor, tenant_id, level, object_id, object_name, variables=None, secrets=None,
                  remove=(), replace=False):
    """Change an object's own variables: ``variables`` and ``secrets`` (text) set keys,
    ``remove`` drops keys, ``replace`` drops every key not given. Returns them, masked."""
    fleet_rules.check_level(level)
    variables = fleet_rules.check_variables(dict(variables or {}))
    secrets = fleet_rules.check_secrets(dict(secrets or {}))
    both = sorted(set(variables) & set(secrets))
    if both:
        raise CorpusError("Variable {} is given both as plain and as secret.".format(both[0]))
    remove = list(remove or ())
    for key in remove:
        if not isinstance(key, str) or not fleet_rules.VARIABLE_KEY_RE.fullmatch(key):
            raise CorpusError("Variable name {!r} is not valid.".format(key))
    if secrets and keyring is None:
        raise CorpusError("No secrets key file is configured (corpus:secrets_key).")
    before = variables_record(sess, level, object_id)
    found = sess.scalar(select(VariableSet).where(VariableSet.level == level, VariableSet.object_id == object_id))
    if found is None:
        found = VariableSet(tenant_id=tenant_id, level=level, object_id=object_id, data={}, secret_keys=[])
        sess.add(found)
    data = {} if replace else dict(found.data or {})
    secret_keys = set() if replace else set(found.secret_keys or [])
    dropped = set(remove) | (set(found.secret_keys or []) if replace else set())
    for key in remove:
        data.pop(key, None)
        secret_keys.discard(key)
    for key, value in variables.items():
        data[key] = value
        if key in secret_keys:
            secret_keys.discard(key)
            dropped.add(key)
    for key in secrets:
        data.pop(key, None)
        secret_keys.add(key)
    dropped -= set(secrets)
    found.data = data
    found.secret_keys = sorted(secret_keys)
    if dropped:
        secret_vars.remove(sess, level, object_id, dropped)
    if secrets:
        secret_vars.store(sess, keyring, level, object_id, secrets)
    sess.flush()
    after = variables_record(sess, level, object_id)
    # A secret written again with a new value shows the same mask; the change log says it changed.
    changed_secrets = {key: resolve.MASK for key in secrets}
    changelog.record(sess, actor, tenant_id, level, object_id, object_label(level, object_id, object_name),
                     {"variables": before}, {"variables": after, **({"secrets_set": sorted(changed_secrets)}
                                                                    if changed_secrets else {})})
    return after
