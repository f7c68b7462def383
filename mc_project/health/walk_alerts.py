"""A site walk's alerts: a walk that fails, and the next one that passes (the recovery),
are told to the handlers, as a check's hard change is (``handlers``: routed, silenced,
recorded in ``/v1/notifications``, then sent).

A site's state is its last finished walk's (``CRITICAL`` failed, ``OK`` passed;
``PENDING`` before its first walk): a walk tells only a change of it -- a failed walk
after a failed walk tells no one, but a handler with a ``repeat`` hears it again once
that long has passed since it was last told. A first walk that passes tells no one.

Who: the handlers of the walk's tenant for the whole tenant or for a group of one of
the site's hosts (the hosts of the walked environments). A silence with no check that
covers every host whose target failed (or, for a recovery, had failed) suppresses it.
A notification of a walk names ``site walk`` as its check and the site as its host.
"""

from sqlalchemy import func, select

from mc_project.health import handlers, scope, silences
from mc_project.inventory import db, host_rows
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.health_models import PENDING, Notification
from mc_project.inventory.models import Environment, Job, utcnow

# What a walk's notifications name as their check (no check is named so: a check's name has no space).
CHECK_NAME = "site walk"
OK, CRITICAL = "OK", "CRITICAL"
KIND = "site_walk"
FINISHED = ("success", "failed")


def state_of(record):
    """A walk's record (``walk_runs.record_of``) as a state: OK, CRITICAL or None (it did
    not walk: an error before any target was asked)."""
    return {"ok": OK, "failed": CRITICAL}.get(record["status"])


def previous_walk(sess, walk_id, site, tenant_id):
    """The clipboard and state of the last walk of ``site`` (for ``tenant_id``) that
    finished before ``walk_id``: ``(PENDING, {})`` when there is none."""
    found = sess.execute(select(Job.status, Job.clipboard).where(
        Job.kind == KIND, Job.target == site, Job.tenant_id == tenant_id, Job.id < walk_id,
        Job.status.in_(FINISHED)).order_by(Job.id.desc()).limit(20)).all()
    for status, clipboard in found:
        if (clipboard or {}).get("results") is not None:
            return (OK if status == "success" else CRITICAL), clipboard
    return PENDING, {}


def _failed_environments(results):
    return {result["environment"] for result in results or [] if not result["ok"]}


def site_hosts(sess, tenant_id, environments):
    """The inventory's hosts of the environments named ``environments`` (of ``tenant_id``),
    each with its environment's name (``environment``)."""
    if not environments:
        return []
    names = dict(sess.execute(select(Host.id, Environment.name).join(Environment, Host.environment_id == Environment.id)
                              .where(Environment.tenant_id == tenant_id, Environment.name.in_(environments))).all())
    return [dict(host, environment=names[host["id"]]) for host in host_rows.rows(sess, Host.id.in_(list(names)))]


def _silence(sess, tenant_id, hosts, now):
    """The silence (without a check) that covers every host of ``hosts``, or None."""
    if not hosts:
        return None
    active = [found for found in silences.active(sess, tenant_id, now) if found.check_id is None]
    covering = [silences.covering(active, host["id"], scope.host_groups(sess, host), None) for host in hosts]
    return covering[0] if all(found is not None for found in covering) else None


def last_told(sess, handler_id, site):
    """When ``handler_id`` was last told (or found silenced) of ``site``'s walks."""
    return sess.scalar(select(func.max(Notification.at)).where(
        Notification.handler_id == handler_id, Notification.check_name == CHECK_NAME,
        Notification.host_name == site, Notification.state_id.is_(None)))


def plan(sess, record, tenant_id, clipboard, now=None):
    """The deliveries the walk ``record`` calls for (suppressed ones recorded now)."""
    now = now or utcnow()
    state = state_of(record)
    if state is None:
        return []
    previous, before = previous_walk(sess, record["id"], record["site"], tenant_id)
    if state == OK and previous != CRITICAL:
        return []
    environments = sorted({target["environment"] for target in clipboard.get("targets") or []})
    hosts = site_hosts(sess, tenant_id, environments)
    groups = set()
    for host in hosts:
        groups |= set(scope.host_groups(sess, host))
    routed = handlers.routed(sess, tenant_id, groups)
    repeat = state == previous
    if repeat:
        routed = [handler for handler in routed if handler.repeat and _due(sess, handler, record["site"], now)]
    if not routed:
        return []
    # A recovery is silenced by what silences the hosts that had failed.
    failed = _failed_environments(record["results"] if state == CRITICAL else before.get("results"))
    silence = _silence(sess, tenant_id, [host for host in hosts if host["environment"] in failed], now)
    change = {"tenant_id": tenant_id, "state_id": None, "check": CHECK_NAME, "host": record["site"],
              "walk": record["id"], "previous": previous, "state": state, "repeat": repeat,
              "output": (record["message"] or "")[:handlers.MAX_OUTPUT], "at": now}
    return handlers.deliveries_of(sess, routed, change, silence)


def _due(sess, handler, site, now):
    last = last_told(sess, handler.id, site)
    return last is None or (now - silences.aware(last)).total_seconds() >= handler.repeat


def notify(ctl, record):
    """Tell the handlers what the walk ``record`` changed; the statuses of what was sent."""
    with db.session(ctl.url) as sess:
        job = sess.get(Job, record["id"])
        deliveries = plan(sess, record, job.tenant_id, job.clipboard or {})
    smtp = (getattr(ctl, "settings", None) or {}).get("smtp")
    return handlers.dispatch(ctl.url, deliveries, smtp)
