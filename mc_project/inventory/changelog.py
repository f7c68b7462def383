"""The change log of inventory objects: who changed what, when, from what to what.

``before`` and ``after`` are the object's records as the API shows them; a
secret variable appears as ``resolve.MASK``, never its value (``secret_vars``
keeps the values out of the records in the first place).
"""

import datetime

from sqlalchemy import func, select

from mc_project.inventory.fleet_models import ChangeRecord


def record(sess, actor, tenant_id, object_type, object_id, object_name, before, after):
    """Note one change; ``before`` None is a creation, ``after`` None a deletion. A change
    that changes nothing is not noted."""
    if before == after:
        return None
    action = "create" if before is None else "delete" if after is None else "update"
    row = ChangeRecord(user=actor, tenant_id=tenant_id, object_type=object_type, object_id=object_id,
                       object_name=object_name, action=action, before=before, after=after)
    sess.add(row)
    return row


def _iso(moment):
    # SQLite hands back naive datetimes, stored as UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def page(sess, object_type, object_id, limit, offset):
    """``(rows, total)`` of one object's changes, newest first."""
    where = (ChangeRecord.object_type == object_type, ChangeRecord.object_id == object_id)
    total = sess.scalar(select(func.count(ChangeRecord.id)).where(*where))
    found = sess.scalars(select(ChangeRecord).where(*where).order_by(ChangeRecord.id.desc())
                         .limit(limit).offset(offset)).all()
    return [{"id": row.id, "at": _iso(row.at), "user": row.user, "object": row.object_type,
             "name": row.object_name, "action": row.action, "before": row.before, "after": row.after}
            for row in found], total
