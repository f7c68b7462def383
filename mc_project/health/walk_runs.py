"""Site walks as controller jobs: a walk's id is its job's id.

A walk is the job ``site_walk`` on its site, of two steps: ``walk:fetch`` asks every
target (``walks.walk``) and keeps the per-target results in the job's clipboard (one
log line each); ``walk:verdict`` fails the job, with one sentence naming the targets
that failed, when any did. The jobs tables hold everything, so walks need no table
of their own, and ``/v1/jobs`` shows them too.

A finished walk tells the handlers what it changed (``walk_alerts``): a failure, and
the recovery when a walk passes after one.

Scheduled walks: the master option ``corpus_walks`` (``sites:`` a list, ``interval:``
seconds) makes the API walk those sites on its own, every ``interval`` seconds.
"""

import logging

from sqlalchemy import func, select, update

from mc_project import jobs
from mc_project.common.service_thread import ServiceThread
from mc_project.errors import CorpusError
from mc_project.health import walk_alerts, walks
from mc_project.inventory import db
from mc_project.inventory.models import Job, Tenant

log = logging.getLogger(__name__)

KIND = "site_walk"
PLAN = ("walk:fetch", "walk:verdict")
OPTION = "corpus_walks"


def fetch(ctx):
    clip = ctx.clipboard
    results = walks.walk(clip["targets"], clip.get("timeout", walks.DEFAULT_TIMEOUT))
    clip["results"] = results
    for result in results:
        ctx.log("{} {} {}: {}".format(result["kind"], result["name"], result["url"],
                                      "OK {} in {}s".format(result["status"], result["seconds"]) if result["ok"]
                                      else "FAILED: " + result["error"]))


def verdict(ctx):
    results = ctx.clipboard.get("results") or []
    ctx.log(walks.summary(results))
    if any(not result["ok"] for result in results):
        raise CorpusError(walks.summary(results).rstrip("."))


REGISTRY = {"walk:fetch": (fetch, None), "walk:verdict": (verdict, None)}


def manager(ctl):
    return jobs.Jobs(ctl.url, registry=REGISTRY, fire=ctl.fire, plans={KIND: PLAN})


def prepare(url, site, tenant_ids, timeout=walks.DEFAULT_TIMEOUT):
    """Check ``site`` and read its targets; the clipboard of its walk (refused before any job)."""
    with db.session(url) as sess:
        found = walks.site_targets(sess, site, tenant_ids)
    return {"site": found["site"], "site_kind": found["kind"], "tenant_id": found["tenant_id"],
            "targets": found["targets"], "timeout": timeout}


def create(ctl, clipboard):
    """Record a walk (pending) of the prepared ``clipboard``; its id."""
    walk_id = manager(ctl).create(KIND, clipboard["site"], PLAN, clipboard)
    with db.session(ctl.url) as sess:
        sess.execute(update(Job).where(Job.id == walk_id).values(tenant_id=clipboard["tenant_id"]))
    return walk_id


def run(ctl, walk_id):
    """Run a created walk here; its record. Its failure or recovery is told to the handlers."""
    manager(ctl).run(walk_id)
    found = record_of(ctl.url, walk_id)
    try:
        walk_alerts.notify(ctl, found)
    except Exception:  # pylint: disable=broad-except
        # The walk is recorded whatever its alert does.
        log.exception("site walk %s: its notifications failed", walk_id)
    return found


def walk_now(ctl, site, tenant_ids, timeout=walks.DEFAULT_TIMEOUT):
    return run(ctl, create(ctl, prepare(ctl.url, site, tenant_ids, timeout)))


def _describe(job):
    state = jobs.describe(job)
    clip = job.clipboard or {}
    results = clip.get("results")
    if job.status == "success":
        status = "ok"
    elif job.status == "failed" and results is not None:
        status = "failed"
    else:
        status = job.status
    failed = [result for result in results or [] if not result["ok"]]
    return {"id": job.id, "site": job.target, "status": status,
            "message": walks.summary(results) if results is not None else state["message"],
            "created": state["created"], "started": state["started"], "ended": state["ended"],
            "seconds": state["steps"][0]["seconds"] if state["steps"] else None,
            "targets": len(clip.get("targets") or []), "failed": len(failed),
            "results": results or []}


def record_of(url, walk_id, site=None, tenant_ids=None):
    """A walk's record (its results per target); None when there is no such walk (for them)."""
    with db.session(url) as sess:
        job = sess.get(Job, walk_id)
        if job is None or job.kind != KIND or (site is not None and job.target != site) or (
                tenant_ids is not None and job.tenant_id not in tenant_ids):
            return None
        return _describe(job)


def history(url, site, tenant_ids, limit, offset):
    """``(records without per-target results, total)``, newest first."""
    where = (Job.kind == KIND, Job.target == site, Job.tenant_id.in_(list(tenant_ids)))
    with db.session(url) as sess:
        total = sess.scalar(select(func.count(Job.id)).where(*where))
        found = sess.scalars(select(Job).where(*where).order_by(Job.id.desc()).limit(limit).offset(offset)).all()
        items = []
        for job in found:
            item = _describe(job)
            item.pop("results")
            items.append(item)
    return items, total


def schedule_settings(opts):
    given = (opts or {}).get(OPTION) or {}
    if not isinstance(given, dict):
        raise CorpusError("The master option {} must be a mapping (sites, interval).".format(OPTION))
    unknown = sorted(str(key) for key in given if key not in ("sites", "interval", "timeout"))
    if unknown:
        raise CorpusError("Unknown setting {}:{}; it has sites, interval and timeout.".format(OPTION, unknown[0]))
    sites = given.get("sites") or []
    if not isinstance(sites, list):
        raise CorpusError("The setting {}:sites must be a list of sites.".format(OPTION))
    sites = [walks.check_site(site) for site in sites]
    interval = given.get("interval", 300)
    timeout = given.get("timeout", walks.DEFAULT_TIMEOUT)
    for name, value in (("interval", interval), ("timeout", timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise CorpusError("The setting {}:{} must be a positive number of seconds.".format(OPTION, name))
    return {"sites": sites, "interval": interval, "timeout": timeout}


class Scheduler(ServiceThread):
    """Walks the sites of ``corpus_walks`` every ``interval`` seconds, in a thread."""

    thread_name = "corpus-site-walks"

    def __init__(self, ctl, settings):
        super().__init__()
        self.ctl = ctl
        self.settings = settings

    def start(self):
        return super().start() if self.settings["sites"] else self

    def walk_all(self):
        with db.session(self.ctl.url) as sess:
            every_tenant = sess.scalars(select(Tenant.id)).all()
        for site in self.settings["sites"]:
            try:
                walk_now(self.ctl, site, every_tenant, self.settings["timeout"])
            except Exception as exc:  # pylint: disable=broad-except
                log.warning("scheduled walk of %s: %s", site, exc)

    def run(self):
        while not self._stop.wait(self.settings["interval"]):
            self.walk_all()
