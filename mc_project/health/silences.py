"""Silences: maintenance windows on a host, a group or a check (or a mix: each one set
narrows it), with who set it, why, and until when. A notification a silence covers is
recorded as suppressed, naming the silence, and not sent."""

import datetime

from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.health import scope
from mc_project.inventory.health_models import Silence
from mc_project.inventory.models import utcnow

MAX_WHY = 2000


def aware(moment):
    """``moment`` in UTC (SQLite gives back naive datetimes for what was stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def active(sess, tenant_id, now=None):
    """The silences of ``tenant_id`` in force at ``now``."""
    now = now or utcnow()
    found = sess.scalars(select(Silence).where(Silence.tenant_id == tenant_id, Silence.until > now)).all()
    return [silence for silence in found if aware(silence.starts) <= aware(now) < aware(silence.until)]


def covering(silences, host_id, groups, check_id):
    """The first of ``silences`` that covers check ``check_id`` on host ``host_id``
    (in ``groups``), or None."""
    for silence in silences:
        if scope.covers(host_id, groups, check_id, silence.host_id, silence.group_id, silence.check_id):
            return silence
    return None


def create(sess, tenant_id, who, why, until, starts=None, host_id=None, group_id=None, check_id=None):
    """A new silence; refused without a target, a reason, or an end after its start."""
    starts = aware(starts or utcnow())
    until = aware(until)
    if host_id is None and group_id is None and check_id is None:
        raise CorpusError("A silence is on a host, a group or a check: name at least one.")
    if not (why or "").strip():
        raise CorpusError("A silence needs a reason (why).")
    if len(why) > MAX_WHY:
        raise CorpusError("A silence's reason is at most {} characters.".format(MAX_WHY))
    if until <= starts:
        raise CorpusError("A silence must end after it starts.")
    silence = Silence(tenant_id=tenant_id, who=who, why=why.strip(), starts=starts, until=until,
                      host_id=host_id, group_id=group_id, check_id=check_id)
    sess.add(silence)
    sess.flush()
    return silence
