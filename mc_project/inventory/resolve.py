"""A host's variables resolved from every level it belongs to, with where each came from.

The rule (craton's): the nearest level that sets a key wins, and its value is
taken whole -- mappings are not merged, lists are not concatenated. Levels from
farthest to nearest: the tenant, the host's region, its cell, its groups, the
host itself. Groups are ordered as Ansible orders them: a group before the groups
inside it (a child group is nearer), groups at the same depth by name, the later
name winning. A host's groups are the groups it is in and every group that
contains one of those.

Every key therefore has exactly one source, which ``provenance`` names. A secret
variable takes part like any other; its value is a ``SecretRef`` until someone
allowed to read it asks for the plain text (``secret_vars.reveal``).
"""

from sqlalchemy import Text, and_, or_, select, type_coerce

from mc_project.inventory import host_rows
from mc_project.inventory.fleet_models import Cell, GroupChild, GroupMember, Host, HostGroup, HostLabel, VariableSet
from mc_project.inventory.models import Region, Tenant

MASK = "********"


class SecretRef:
    """Where a secret variable's value is kept: ``secrets`` row ``owner``/``key``."""

    __slots__ = ("level", "object_id", "key")

    def __init__(self, level, object_id, key):
        self.level, self.object_id, self.key = level, object_id, key

    @property
    def owner(self):
        return owner_of(self.level, self.object_id)

    def __repr__(self):
        return "<SecretRef {}/{} {}>".format(self.level, self.object_id, MASK)


def owner_of(level, object_id):
    """The ``secrets.owner`` of an inventory object's secret variables."""
    return "inventory:{}:{}".format(level, object_id)


class GroupTree:
    """A tenant's groups: names and which groups each one is inside."""

    def __init__(self, names, parents):
        self.names = names  # {id: name}
        self.parents = parents  # {child id: [parent ids]}
        self._orders = {}
        self._depths = {}

    @classmethod
    def load(cls, sess, tenant_id):
        names = dict(sess.execute(select(HostGroup.id, HostGroup.name).where(HostGroup.tenant_id == tenant_id)).all())
        parents = {}
        if names:
            for parent_id, child_id in sess.execute(
                    select(GroupChild.parent_id, GroupChild.child_id)
                    .join(HostGroup, HostGroup.id == GroupChild.child_id).where(HostGroup.tenant_id == tenant_id)):
                parents.setdefault(child_id, []).append(parent_id)
        return cls(names, parents)

    def depth(self, group_id):
        """The longest path from a group inside no other (depth 0) down to this one."""
        if group_id not in self._depths:
            self._depths[group_id] = max((self.depth(parent) + 1 for parent in self.parents.get(group_id, ())),
                                         default=0)
        return self._depths[group_id]

    def with_ancestors(self, group_ids):
        found, todo = set(), list(group_ids)
        while todo:
            group_id = todo.pop()
            if group_id not in found:
                found.add(group_id)
                todo.extend(self.parents.get(group_id, ()))
        return found

    def order(self, direct_ids):
        """The groups whose variables a host in ``direct_ids`` takes, farthest first."""
        key = frozenset(direct_ids)
        if key not in self._orders:
            self._orders[key] = sorted(self.with_ancestors(key), key=lambda gid: (self.depth(gid), self.names[gid]))
        return self._orders[key]

    def children(self):
        found = {}
        for child, parents in self.parents.items():
            for parent in parents:
                found.setdefault(parent, []).append(child)
        return found

    def with_descendants(self, group_id):
        children, found, todo = self.children(), set(), [group_id]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(children.get(current, ()))
        return found


def layers(host, tenant_id, group_order):
    """``[(level, object id)]`` of ``host`` (a ``host_rows`` mapping), farthest first."""
    found = [("tenant", tenant_id)]
    if host["region_id"]:
        found.append(("region", host["region_id"]))
    if host["cell_id"]:
        found.append(("cell", host["cell_id"]))
    found.extend(("group", group_id) for group_id in group_order)
    found.append(("host", host["id"]))
    return found


def merge(host_layers, varsets, sources=False):
    """The resolved variables of ``host_layers`` from ``varsets`` (``{(level, id): (data,
    secret keys)}``): ``values``, and with ``sources`` also ``{key: (level, id)}``."""
    values, origin = {}, {}
    for layer in host_layers:
        found = varsets.get(layer)
        if found is None:
            continue
        data, secret_keys = found
        values.update(data)
        for key in secret_keys:
            values[key] = SecretRef(layer[0], layer[1], key)
        if sources:
            for key in data:
                origin[key] = layer
            for key in secret_keys:
                origin[key] = layer
    return (values, origin) if sources else values


def without_secrets(values):
    return {key: value for key, value in values.items() if not isinstance(value, SecretRef)}


def decode_json(text):
    """A JSON column's text as Python values (orjson when installed: the export decodes
    one mapping per host). psycopg2 decodes PostgreSQL's ``json`` itself: its values pass."""
    if not isinstance(text, (str, bytes)):
        return text
    return _loads(text)


try:
    from orjson import loads as _loads
except ImportError:  # the plain decoder: twice as slow, the same values
    from json import loads as _loads


def load_varsets(sess, tenant_id, host_layers=None, levels=None):
    """``{(level, id): (data, secret keys)}`` of a tenant: all of them (or those of ``levels``),
    or those of ``host_layers``. The JSON is decoded here, from the rows' text."""
    columns = (VariableSet.level, VariableSet.object_id, type_coerce(VariableSet.data, Text),
               type_coerce(VariableSet.secret_keys, Text))
    if host_layers is not None:
        # By (level, object id) alone: each term of the OR is a lookup in their unique index.
        wanted = {}
        for level, object_id in host_layers:
            wanted.setdefault(level, []).append(object_id)
        query = select(*columns).where(or_(*(and_(VariableSet.level == level, VariableSet.object_id.in_(ids))
                                             for level, ids in wanted.items())))
    else:
        query = select(*columns).where(VariableSet.tenant_id == tenant_id)
        if levels is not None:
            query = query.where(VariableSet.level.in_(levels))
    return {(level, object_id): (decode_json(data) or {}, decode_json(secret_keys) or [])
            for level, object_id, data, secret_keys in sess.connection().execute(query)}


def direct_groups(sess, host_id):
    return sess.scalars(select(GroupMember.group_id).where(GroupMember.host_id == host_id)).all()


def layer_names(sess, host, tree):
    """``{(level, id): name}`` for provenance: the tenant, region, cell, groups, host (one query)."""
    tenant, region, cell = sess.execute(
        select(Tenant.name, Region.name, Cell.name).select_from(Tenant)
        .outerjoin(Region, Region.id == (host["region_id"] or 0))
        .outerjoin(Cell, Cell.id == (host["cell_id"] or 0))
        .where(Tenant.id == host["tenant_id"])).one()
    names = {("host", host["id"]): host["name"], ("tenant", host["tenant_id"]): tenant,
             ("region", host["region_id"]): region, ("cell", host["cell_id"]): cell}
    names.update((("group", group_id), name) for group_id, name in tree.names.items())
    return names


def host_variables(sess, host, with_sources=True):
    """``(values, provenance)`` of one host (a ``host_rows`` mapping), in five small queries:
    provenance is ``{key: {"level", "name"}}``."""
    tenant_id = host["tenant_id"]
    tree = GroupTree.load(sess, tenant_id)
    host_layers = layers(host, tenant_id, tree.order(direct_groups(sess, host["id"])))
    varsets = load_varsets(sess, tenant_id, host_layers)
    if not with_sources:
        return merge(host_layers, varsets), None
    values, origin = merge(host_layers, varsets, sources=True)
    names = layer_names(sess, host, tree)
    return values, {key: {"level": layer[0], "name": names.get(layer)} for key, layer in origin.items()}


class TenantInventory:
    """Everything needed to resolve every host of a tenant, read in seven queries.

    Hosts in the same region, cell and groups share every level above their own:
    that part is merged once per such place, then each host adds its own variables.
    """

    def __init__(self, sess, tenant_id, where=(), with_labels=False):
        self.tenant_id = tenant_id
        self.hosts = host_rows.rows(sess, host_rows.in_tenant(tenant_id), *where)
        self.labels = {}
        if with_labels:
            for host_id, label in sess.connection().execute(host_rows.joined(
                    select(HostLabel.host_id, HostLabel.label).join(Host, Host.id == HostLabel.host_id))
                    .where(host_rows.in_tenant(tenant_id)).order_by(HostLabel.label)):
                self.labels.setdefault(host_id, []).append(label)
        self.tree = GroupTree.load(sess, tenant_id)
        self.memberships = {}
        for group_id, host_id in sess.connection().execute(
                select(GroupMember.group_id, GroupMember.host_id)
                .join(HostGroup, HostGroup.id == GroupMember.group_id).where(HostGroup.tenant_id == tenant_id)):
            self.memberships.setdefault(host_id, []).append(group_id)
        self.varsets = load_varsets(sess, tenant_id)
        self.regions = dict(sess.execute(select(Region.id, Region.name).where(Region.tenant_id == tenant_id)).all())
        self.cells = {cell_id: (name, region_id) for cell_id, name, region_id in sess.execute(
            select(Cell.id, Cell.name, Cell.region_id).join(Region, Region.id == Cell.region_id)
            .where(Region.tenant_id == tenant_id))}
        self._bases = {}

    def layers_of(self, host):
        return layers(host, self.tenant_id, self.tree.order(self.memberships.get(host["id"], ())))

    def _base(self, host):
        """``(values, public values)`` of the levels above ``host``, merged once per place."""
        place = (host["region_id"], host["cell_id"], frozenset(self.memberships.get(host["id"], ())))
        found = self._bases.get(place)
        if found is None:
            values = merge(self.layers_of(host)[:-1], self.varsets)
            found = self._bases[place] = (values, without_secrets(values))
        return found

    def values(self, host):
        """The host's resolved variables, secrets as ``SecretRef``."""
        values = dict(self._base(host)[0])
        data, secret_keys = self.varsets.get(("host", host["id"]), ({}, []))
        values.update(data)
        for key in secret_keys:
            values[key] = SecretRef("host", host["id"], key)
        return values

    def public_values(self, host):
        """The host's resolved variables without any secret (what an export may show)."""
        values = dict(self._base(host)[1])
        data, secret_keys = self.varsets.get(("host", host["id"]), ({}, []))
        values.update(data)
        for key in secret_keys:
            values.pop(key, None)
        return values
