"""Group memberships the detectors found, kept in the inventory's own group tables.

A membership a detector made is an ordinary row of ``host_group_members`` (so the
group is an Ansible group, a Salt target, a level of variables like any other) and
the host carries the label ``detected:<group>``: that label is the membership's
source. It is a label rather than a column so that no migration is needed, and it
shows wherever a host's labels show. A detection run then only takes back the
memberships it made itself: one an operator made by hand (no label) is never
removed, and is not claimed either.

The groups a detector names are made in the host's tenant when missing. Every
change goes to the inventory's change log as the user ``detectors``.
"""

from sqlalchemy import delete, select

from mc_project.inventory import changelog, fleet, host_rows
from mc_project.inventory.fleet_models import GroupMember, Host, HostGroup, HostLabel

LABEL_PREFIX = "detected:"
ACTOR = "detectors"


def label_of(group):
    return LABEL_PREFIX + group


def detected_of(sess, host_ids):
    """``{host id: [groups its detectors put it in]}``."""
    found = {host_id: [] for host_id in host_ids}
    if host_ids:
        for host_id, label in sess.execute(select(HostLabel.host_id, HostLabel.label).where(
                HostLabel.host_id.in_(host_ids), HostLabel.label.like(LABEL_PREFIX + "%")).order_by(HostLabel.label)):
            found[host_id].append(label[len(LABEL_PREFIX):])
    return found


def _group(sess, tenant_id, name):
    found = sess.scalar(select(HostGroup).where(HostGroup.tenant_id == tenant_id, HostGroup.name == name))
    if found is None:
        fleet.create_group(sess, ACTOR, tenant_id, name)
        found = sess.scalar(select(HostGroup).where(HostGroup.tenant_id == tenant_id, HostGroup.name == name))
    return found


def record(sess, host, groups):
    """Make ``groups`` the detected groups of ``host`` (a ``host_rows`` mapping);
    ``{"added": [...], "removed": [...], "groups": [...]}``."""
    tenant_id, host_id = host["tenant_id"], host["id"]
    before_record = fleet.host_record(sess, host_id)
    owned = set(detected_of(sess, [host_id])[host_id])
    wanted = set(groups)
    added, removed = [], []
    for name in sorted(owned - wanted):
        group = sess.scalar(select(HostGroup).where(HostGroup.tenant_id == tenant_id, HostGroup.name == name))
        if group is not None:
            sess.execute(delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.host_id == host_id))
        sess.execute(delete(HostLabel).where(HostLabel.host_id == host_id, HostLabel.label == label_of(name)))
        removed.append(name)
    for name in sorted(wanted - owned):
        group = _group(sess, tenant_id, name)
        member = sess.get(GroupMember, (group.id, host_id))
        if member is not None:
            continue  # an operator's membership: theirs to keep or remove
        sess.add(GroupMember(group_id=group.id, host_id=host_id))
        sess.add(HostLabel(host_id=host_id, label=label_of(name)))
        added.append(name)
    sess.flush()
    if added or removed:
        host_name = sess.scalar(select(Host.name).where(Host.id == host_id))
        changelog.record(sess, ACTOR, tenant_id, "host", host_id, host_name, before_record,
                         fleet.host_record(sess, host_id))
    return {"added": added, "removed": removed,
            "groups": sorted((owned - set(removed)) | set(added))}


def record_for_minion(sess, minion_id, groups):
    """``record`` for the host whose minion is ``minion_id``; None when it is no host's."""
    host = host_rows.by_minion(sess, minion_id)
    if host is None or host["tenant_id"] is None:
        return None
    return dict(record(sess, host, groups), host=host["name"])


def state(sess, tenant_ids):
    """Every host of ``tenant_ids`` with a minion: its detected groups (``[]``: none)."""
    hosts = host_rows.rows(sess, host_rows.TENANT_ID.in_(list(tenant_ids)))
    hosts = [host for host in hosts if host["minion_id"]]
    detected = detected_of(sess, [host["id"] for host in hosts])
    return [{"host": host["name"], "minion_id": host["minion_id"], "groups": detected[host["id"]]}
            for host in hosts]


def minions_of_group(sess, tenant_id, name):
    """The minion ids of the hosts in group ``name`` or any group inside it: a Salt list target."""
    group = fleet.group_by_name(sess, tenant_id, name)
    edges = {}
    for parent_id, child_id in sess.execute(select(fleet.GroupChild.parent_id, fleet.GroupChild.child_id)):
        edges.setdefault(parent_id, []).append(child_id)
    ids, todo = set(), [group.id]
    while todo:
        current = todo.pop()
        if current not in ids:
            ids.add(current)
            todo.extend(edges.get(current, ()))
    host_ids = sess.scalars(select(GroupMember.host_id).where(GroupMember.group_id.in_(ids))).all()
    hosts = host_rows.rows(sess, Host.id.in_(list(host_ids))) if host_ids else []
    return sorted({host["minion_id"] for host in hosts if host["minion_id"]})
