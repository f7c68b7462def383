"""The inventory as an Ansible dynamic inventory (``ansible-inventory --list``'s JSON).

Every host's resolved variables are in ``_meta.hostvars``, so Ansible never runs
the script once per host (``--host``). Groups: one per inventory group (with the
groups inside it as ``children``), one per region (its cells as ``children``),
one per cell and one per label. Secret variables are never exported; a playbook
that needs one reads it on the host from its pillar, or asks the API.

``ansible_inventory(sess, tenant_ids)`` is the one function: the API route, the
``corpus-inventory`` script and a later playbook runner all call it.
"""

import json
import re

from mc_project.inventory import resolve

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # the plain encoder
    _orjson_dumps = None

INVALID_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")


def group_name(prefix, name):
    """An Ansible group name: letters, digits and '_' (Ansible warns about others)."""
    return INVALID_GROUP_CHARS.sub("_", prefix + name)


def connection_vars(host):
    found = {}
    if host["address"]:
        found["ansible_host"] = host["address"]
    if host["ssh_port"]:
        found["ansible_port"] = host["ssh_port"]
    if host["ssh_user"]:
        found["ansible_user"] = host["ssh_user"]
    return found


def _add(groups, name, host=None, child=None):
    group = groups.setdefault(name, {"hosts": [], "children": []})
    if host is not None:
        group["hosts"].append(host)
    if child is not None and child not in group["children"]:
        group["children"].append(child)


def add_tenant(inventory, snapshot):
    """Add the hosts and groups of one ``resolve.TenantInventory`` to ``inventory``."""
    groups, hostvars = inventory["groups"], inventory["hostvars"]
    tree = snapshot.tree
    group_names = {group_id: group_name("", name) for group_id, name in tree.names.items()}
    for parent_id, children in tree.children().items():
        for child_id in sorted(children, key=group_names.get):
            _add(groups, group_names[parent_id], child=group_names[child_id])
    for group_id in tree.names:
        _add(groups, group_names[group_id])
    for region_id, name in snapshot.regions.items():
        _add(groups, group_name("region_", name))
    for cell_id, (name, region_id) in snapshot.cells.items():
        cell = group_name("cell_", "{}_{}".format(snapshot.regions[region_id], name))
        _add(groups, group_name("region_", snapshot.regions[region_id]), child=cell)
        _add(groups, cell)
    parents = {host["id"]: host["name"] for host in snapshot.hosts}
    labels = snapshot.labels
    for host in snapshot.hosts:
        name = host["name"]
        values = snapshot.public_values(host)
        values.update(connection_vars(host))
        values["corpus_kind"] = host["kind"]
        if host["parent_id"] in parents:
            values["corpus_parent"] = parents[host["parent_id"]]
        hostvars[name] = values
        placed = False
        if host["cell_id"] in snapshot.cells:
            cell_name, region_id = snapshot.cells[host["cell_id"]]
            _add(groups, group_name("cell_", "{}_{}".format(snapshot.regions[region_id], cell_name)), host=name)
            placed = True
        elif host["region_id"] in snapshot.regions:
            _add(groups, group_name("region_", snapshot.regions[host["region_id"]]), host=name)
            placed = True
        for group_id in snapshot.memberships.get(host["id"], ()):
            _add(groups, group_names[group_id], host=name)
            placed = True
        for label in labels.get(host["id"], ()):
            _add(groups, group_name("label_", label), host=name)
            placed = True
        if not placed:
            _add(groups, "ungrouped", host=name)


def ansible_inventory(sess, tenant_ids):
    """The ``--list`` JSON of the hosts of ``tenant_ids``."""
    inventory = {"groups": {}, "hostvars": {}}
    for tenant_id in sorted(tenant_ids):
        add_tenant(inventory, resolve.TenantInventory(sess, tenant_id, with_labels=True))
    groups = inventory["groups"]
    answer = {"_meta": {"hostvars": inventory["hostvars"]}}
    inside = {child for group in groups.values() for child in group["children"]}
    answer["all"] = {"children": sorted(name for name in groups if name not in inside)}
    for name, group in groups.items():
        shown = {}
        if group["hosts"]:
            shown["hosts"] = group["hosts"]
        if group["children"]:
            shown["children"] = group["children"]
        answer[name] = shown
    return answer


def to_json(inventory):
    """The export as JSON bytes."""
    if _orjson_dumps is not None:
        return _orjson_dumps(inventory)
    return json.dumps(inventory, separators=(",", ":")).encode("utf-8")
