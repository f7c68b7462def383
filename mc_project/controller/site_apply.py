"""A site's stored plans, and applying one as one job.

``store_plan`` compares a blueprint with the inventory (``site_plan``) and keeps the
result: id, site, blueprint and its hash, the fingerprint of the inventory rows it
read, the actions, who, when. ``apply`` runs exactly those actions as one job
``apply_site`` (its steps are the plan's actions, ``steps/site.py``), after reading the
inventory again: it refuses, in one sentence, a plan whose fingerprint no longer
matches (the inventory changed since: make a new plan) or one applied already.

A failed apply stops at the failed action and keeps what the actions before it did
(each recorded as the site's, ``SiteObject``): the next plan starts from there. An
undo of a succeeded apply's job takes back what its steps can (``steps/site.py``).
"""

import datetime

from sqlalchemy import select, update

from mc_project.controller import site_blueprint, site_plan
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.models import Job
from mc_project.inventory.site_models import SitePlan

KIND = "apply_site"


def _iso(moment):
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)).isoformat()


def plan_record(row):
    """A stored plan as the API shows it."""
    return {"id": row.id, "site": row.site, "destroy": row.destroy, "blueprint_hash": row.blueprint_hash,
            "fingerprint": row.fingerprint, "actions": row.actions, "summary": site_plan.summary(row.actions),
            "message": site_plan.summary_line(row.actions), "who": row.who, "created": _iso(row.created),
            "applied": _iso(row.applied), "job_id": row.job_id, "blueprint": row.blueprint,
            "tenant_id": row.tenant_id}


def store_plan(sess, blueprint, tenant_id, who=None, destroy=False):
    """Plan ``blueprint`` (a checked ``Blueprint``) against the inventory and keep the plan."""
    actions, fingerprint = site_plan.make(sess, blueprint, tenant_id)
    row = SitePlan(site=blueprint.site, tenant_id=tenant_id, destroy=destroy, blueprint_hash=blueprint.digest(),
                   fingerprint=fingerprint, blueprint=blueprint.canonical(), actions=actions, who=who)
    sess.add(row)
    sess.flush()
    return plan_record(row)


def find_plan(sess, plan_id):
    row = sess.get(SitePlan, plan_id)
    if row is None:
        raise NotFound("No plan {}.".format(plan_id))
    return row


def check_applicable(sess, row):
    """Refuse, in one sentence, a plan applied already or made before the inventory changed."""
    if row.applied is not None:
        raise Conflict("Plan {} was applied already{}; make a new plan.".format(
            row.id, " (job {})".format(row.job_id) if row.job_id else ""))
    running = sess.scalar(select(Job.id).where(Job.kind == KIND, Job.target == row.site,
                                              Job.status.in_(("pending", "running"))).limit(1))
    if running is not None:
        raise Conflict("Site {} is being applied by job {}; plan again when it ends.".format(row.site, running))
    blueprint = site_blueprint.Blueprint.model_validate(row.blueprint)
    view = site_plan.read_inventory(sess, blueprint, row.tenant_id)
    if site_plan.fingerprint(view) != row.fingerprint:
        raise Conflict("The inventory changed since plan {} was made; make a new plan and review it.".format(row.id))


def claim(url, plan_id):
    """Check plan ``plan_id`` and mark it applied (once: a compare-and-set); its record."""
    with db.session(url) as sess:
        row = find_plan(sess, plan_id)
        check_applicable(sess, row)
        taken = sess.execute(update(SitePlan).where(SitePlan.id == row.id, SitePlan.applied.is_(None))
                             .values(applied=datetime.datetime.now(datetime.timezone.utc))).rowcount
        if taken != 1:
            raise Conflict("Plan {} was applied already; make a new plan.".format(row.id))
        sess.refresh(row)
        return plan_record(row)


def registry(ctl):
    """The controller's steps, with the site steps' undos left out: a failed apply keeps
    what it finished (``corpus undo`` of a succeeded apply uses the full registry)."""
    return {name: (do, None if name.startswith("site:") else undo) for name, (do, undo) in ctl.registry().items()}


def apply(ctl, plan_id, progress=None):
    """Run plan ``plan_id`` as one job; the job's final state (``{"job": None}`` for a plan
    with no actions, which is only marked applied)."""
    plan = claim(ctl.url, plan_id)
    if not plan["actions"]:
        return {"job": None, "status": "success", "message": site_plan.summary_line([])}
    names = [action["step"] for action in plan["actions"]]
    total = len(names)

    def fire(tag, data):
        ctl.fire(tag, data)
        if progress is not None and "step" in data and data["status"] != "pending":
            progress("{} step {}/{} {}: {}".format(KIND, data["step"], total, data["name"], data["status"]))

    manager = ctl.jobs(registry=registry(ctl))
    manager.fire = fire
    clipboard = {"site": plan["site"], "plan_id": plan["id"], "tenant_id": plan["tenant_id"], "who": plan["who"],
                 "actions": plan["actions"]}
    try:
        job_id = manager.create(KIND, plan["site"], names, clipboard)
    except Exception:
        with db.session(ctl.url) as sess:  # no job: the plan may be applied again
            sess.execute(update(SitePlan).where(SitePlan.id == plan["id"]).values(applied=None))
        raise
    with db.session(ctl.url) as sess:
        sess.execute(update(SitePlan).where(SitePlan.id == plan["id"]).values(job_id=job_id))
    state = manager.run(job_id)
    return {"job": state["id"], "status": state["status"], "message": state["message"]}


def status(sess, site, tenant_id):
    """What ``site`` owns and how the inventory drifted from what was last applied."""
    actions, count = site_plan.drift(sess, site, tenant_id)
    if not count:
        raise NotFound("Site {} owns nothing: no plan of it was applied.".format(site))
    last = sess.scalar(select(SitePlan).where(SitePlan.site == site, SitePlan.applied.is_not(None))
                       .order_by(SitePlan.id.desc()).limit(1))
    return {"site": site, "objects": site_plan.owned(sess, site), "drift": actions, "drifted": bool(actions),
            "message": ("Site {} matches what was applied.".format(site) if not actions else
                        "Site {} drifted: {}".format(site, site_plan.summary_line(actions)[len("Plan: "):])),
            "last_plan": last.id if last else None, "last_job": last.job_id if last else None}


def check_site_name(site):
    if not site_blueprint.SITE_NAME_RE.fullmatch(str(site)):
        raise CorpusError("{!r} is not a site name: lower-case letters, digits and inner dashes.".format(site))
    return site

