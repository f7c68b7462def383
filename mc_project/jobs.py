"""Controller jobs: ordered ``provider:action`` steps sharing a clipboard.

Every controller operation (create an environment, link a node...) is a job: a
list of steps such as ``node:pick``, ``ip:allocate``, ``lxc:clone``. Each step
name maps, in a registry, to a pair of callables ``(do, undo)``::

    REGISTRY = {"lxc:clone": (clone_container, destroy_container), ...}

Both receive a ``StepContext``: ``ctx.clipboard`` is the JSON mapping shared by
all the steps of the job (each reads what earlier ones left and adds its own),
``ctx.undo_data`` is this step's own record of what to take back, and
``ctx.log(line)`` writes to the step's log. Secrets go into the ``secrets``
table, never into the clipboard or a log.

The inventory DB keeps the job, its clipboard (saved after every step) and each
step's status, start, end and log; ``fire(tag, data)`` announces every change
(``corpus/job/<id>/step/<index>/<status>`` and ``corpus/job/<id>/<status>``;
step indexes count from 1, as in messages).

When a step raises, the undo of every step already done runs, newest first,
and the job ends ``failed`` with one sentence saying which step failed and why.
A step must therefore leave nothing behind when it raises itself. A job whose
process died while running shows as ``interrupted``: ``resume`` runs it on
from its first unfinished step (so a step must cope with being run again), and
``undo`` takes back the steps done, including the one that was cut off (so an
undo must cope with a step that did only part of its work).

Steps that do not depend on each other run at the same time: a job's plan
(``Jobs(plans={kind: plan})``; ``operations.PLANS`` for the controller's) lists
step names, and a tuple in it is a group of steps run together, each in a
thread with its own copy of the clipboard; what each adds or changes is merged
into the job's clipboard, in one transaction with its "success". The group
ends when all its steps have; when one fails, the others finish, then every
step done is undone. A job whose step names are not its kind's plan (made by
another version) runs one step at a time.

Only one process runs a job: taking it is a compare-and-swap on the job's row
(status and owner), which the database serialises.
"""

import concurrent.futures
import copy
import datetime
import json
import logging
import os
import socket
import threading
import traceback

import psutil
from sqlalchemy import select, update

from mc_project.common import messages
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Job, JobStep, utcnow

log = logging.getLogger(__name__)

# The steps known to this process: "provider:action" -> (do, undo or None).
REGISTRY = {}
_GONE = object()  # a clipboard key a step removed


class FailedWithReport(CorpusError):
    """A step did its work and found that it failed (a state run or a playbook with failed
    hosts): the job fails, and what the step added to the clipboard (its per-host report)
    is kept, where any other failure's changes are dropped."""


def flatten(plan):
    """The step names of ``plan``, in order."""
    return [name for item in plan for name in (item if isinstance(item, (tuple, list)) else (item,))]


def _groups(plan, steps):
    """``steps`` (a job's, in order) as the groups ``plan`` runs together; one step per group
    when the job's steps are not the plan's."""
    if plan is None or flatten(plan) != [step.name for step in steps]:
        return [[step] for step in steps]
    groups, position = [], 0
    for item in plan:
        size = len(item) if isinstance(item, (tuple, list)) else 1
        groups.append(steps[position:position + size])
        position += size
    return groups


def _changes(before, after):
    """What a step did to the clipboard: {key: new value or _GONE}."""
    changed = {key: value for key, value in after.items() if before.get(key, _GONE) != value}
    changed.update((key, _GONE) for key in before if key not in after)
    return changed


def _apply(clipboard, changes):
    for key, value in changes.items():
        if value is _GONE:
            clipboard.pop(key, None)
        else:
            clipboard[key] = value


def register(name, do, undo=None, registry=None):
    """Make step ``name`` ("provider:action") run ``do`` and be taken back by ``undo``."""
    if ":" not in name:
        raise ValueError("A step name is 'provider:action', not {!r}.".format(name))
    (REGISTRY if registry is None else registry)[name] = (do, undo)


class StepContext:
    """What a step's ``do`` or ``undo`` sees of its job."""

    def __init__(self, job, step, clipboard, undo_data):
        self.job_id = job.id
        self.kind = job.kind
        self.target = job.target
        self.index = step.index
        self.name = step.name
        self.clipboard = clipboard
        self.undo_data = undo_data
        self.lines = []

    def log(self, line):
        """Add a line to this step's log (kept in the inventory)."""
        self.lines.append(str(line))
        log.debug("job %s step %s %s: %s", self.job_id, self.index, self.name, line)


# --------------------------------------------------------------------------- owners

def this_owner():
    """Who we are, as recorded on a job we run: pid, host, process start time."""
    return {"owner_pid": os.getpid(), "owner_host": socket.gethostname(),
            "owner_started": psutil.Process().create_time()}


def owner_alive(job):
    """Whether the process that runs ``job`` still exists.

    A process on another host cannot be checked from here: it counts as alive.
    A pid now used by a younger process, or a zombie, counts as gone.
    """
    if job.owner_pid is None:
        return False
    if job.owner_host != socket.gethostname():
        return True
    try:
        proc = psutil.Process(job.owner_pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    return job.owner_started is None or abs(started - job.owner_started) < 1.0


def _same(column, value):
    return column.is_(None) if value is None else column == value


# --------------------------------------------------------------------------- messages

def reason_of(exc):
    """One sentence (no final period) saying why a step raised."""
    text = messages.first_line(str(exc))
    if isinstance(exc, CorpusError):
        return text or "it failed"
    return "{}: {}".format(type(exc).__name__, text) if text else type(exc).__name__


def _iso(moment):
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes, stored as UTC
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def _seconds(start, end):
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def describe(job):
    """The status of ``job`` as a mapping with a one-sentence ``message``."""
    steps = list(job.steps)
    total = len(steps)
    current = None
    for step in steps:
        if step.status in ("running", "failed", "interrupted", "undo_failed"):
            current = step
            break
    if current is None and job.status in ("pending", "running", "interrupted"):
        current = next((step for step in steps if step.status != "success"), None)
    label = "Job {} ({} {})".format(job.id, job.kind, job.target)
    where = "step {}/{} {}".format(current.index, total, current.name) if current else None
    if job.status == "pending":
        message = "{} is pending: {} steps, none started.".format(label, total)
    elif job.status == "running":
        message = "{} is running {} (pid {} on {}).".format(
            label, where or "its last step", job.owner_pid, job.owner_host)
    elif job.status == "success":
        message = "{} succeeded: {} steps in {}s.".format(
            label, total, _seconds(job.started, job.ended))
    elif job.status == "failed":
        message = "{} {}.".format(label, job.error or "failed")
    elif job.status == "interrupted":
        message = "{} was interrupted at {}: its process (pid {} on {}) is gone; resume or undo it.".format(
            label, where or "its last step", job.owner_pid, job.owner_host)
    else:  # undone
        message = "{} was undone: {} of its steps taken back.".format(
            label, sum(1 for step in steps if step.status == "undone"))
    return {
        "id": job.id,
        "kind": job.kind,
        "target": job.target,
        "status": job.status,
        "message": message,
        "error": job.error,
        "current_step": ({"index": current.index, "name": current.name, "status": current.status}
                         if current else None),
        "created": _iso(job.created),
        "started": _iso(job.started),
        "ended": _iso(job.ended),
        "owner": {"pid": job.owner_pid, "host": job.owner_host},
        "clipboard": job.clipboard,
        "steps": [{"index": step.index, "name": step.name, "status": step.status,
                   "started": _iso(step.started), "ended": _iso(step.ended),
                   "seconds": _seconds(step.started, step.ended), "log": step.log}
                  for step in steps],
    }


# --------------------------------------------------------------------------- jobs

class Jobs:
    """Create, run, inspect, resume and undo jobs kept in the inventory at ``url``.

    ``registry`` maps step names to ``(do, undo)`` (default: ``REGISTRY``);
    ``plans`` maps a job kind to its plan (names, and tuples of names run together);
    ``fire(tag, data)`` publishes events (Salt's event bus in the runners).
    """

    def __init__(self, url, registry=None, fire=None, plans=None):
        self.url = url
        self.registry = REGISTRY if registry is None else registry
        self.plans = plans or {}
        self.fire = fire
        self._saving = threading.Lock()

    # -- creation and running

    def create(self, kind, target, steps, clipboard=None):
        """Record a pending job of ``steps`` (names, or its kind's plan) and return its id."""
        steps = flatten(steps)
        if not steps:
            raise CorpusError("A job needs at least one step.")
        unknown = [name for name in steps if name not in self.registry]
        if unknown:
            raise CorpusError("Unknown job step {}; known steps: {}.".format(
                ", ".join(unknown), ", ".join(sorted(self.registry)) or "none"))
        clipboard = dict(clipboard or {})
        _check_json(clipboard)
        with db.session(self.url) as sess:
            job = Job(kind=kind, target=target, status="pending", clipboard=clipboard,
                      steps=[JobStep(index=number, name=name, status="pending", log="", undo_data={})
                             for number, name in enumerate(steps, 1)])
            sess.add(job)
            sess.flush()
            job_id = job.id
        self._fire_job(job_id, "pending")
        return job_id

    def submit(self, kind, target, steps, clipboard=None):
        """Create a job and run it here; return its status."""
        return self.run(self.create(kind, target, steps, clipboard))

    def run(self, job_id):
        """Run a pending job here; return its status."""
        self._claim(job_id, ("pending",))
        return self._run_steps(job_id)

    def resume(self, job_id):
        """Run an interrupted (or pending) job on from its first unfinished step."""
        self._claim(job_id, ("pending", "interrupted"))
        return self._run_steps(job_id)

    def undo(self, job_id):
        """Take back the done steps of a job, newest first; return its status.

        Works on an interrupted job (the cut-off step is undone too), on a
        succeeded one, and on a failed one whose undo went wrong (it is retried).
        """
        state = self.status(job_id)
        if state["status"] == "failed" and not any(step["status"] == "undo_failed"
                                                   for step in state["steps"]):
            raise CorpusError("{} Its steps were undone when it failed.".format(state["message"]))
        self._claim(job_id, ("pending", "interrupted", "success", "failed"))
        failures = self._undo_steps(job_id, ("success", "interrupted", "undo_failed"))
        if failures:
            self._finish(job_id, "failed", "could not be undone: " + "; ".join(failures))
        else:
            self._finish(job_id, "undone", None)
        return self.status(job_id)

    # -- inspection

    def status(self, job_id):
        """Which step ``job_id`` is on, or where it failed, with every step's state."""
        with db.session(self.url) as sess:
            job = self._get(sess, job_id)
            interrupted = self._mark_if_interrupted(sess, job)
            state = describe(job)
        if interrupted:
            self._fire_job(job_id, "interrupted")
        return state

    def status_for_target(self, target):
        """The statuses of the jobs on ``target``, newest first."""
        with db.session(self.url) as sess:
            ids = sess.scalars(select(Job.id).where(Job.target == target).order_by(Job.id.desc())).all()
        return [self.status(job_id) for job_id in ids]

    # -- internals

    def _get(self, sess, job_id):
        try:
            job_id = int(job_id)
        except (TypeError, ValueError):
            raise CorpusError("{!r} is not a job id.".format(job_id)) from None
        job = sess.get(Job, job_id)
        if job is None:
            raise CorpusError("No job {} in the inventory.".format(job_id))
        return job

    def _mark_if_interrupted(self, sess, job):
        """Record ``interrupted`` on a running job whose process is gone; say if we did."""
        if job.status != "running" or owner_alive(job):
            return False
        done = sess.execute(
            update(Job).where(Job.id == job.id, Job.status == "running",
                              _same(Job.owner_pid, job.owner_pid), _same(Job.owner_host, job.owner_host),
                              _same(Job.owner_started, job.owner_started))
            .values(status="interrupted")).rowcount
        if done:
            sess.execute(update(JobStep).where(JobStep.job_id == job.id, JobStep.status == "running")
                         .values(status="interrupted"))
        sess.expire_all()  # reload the job and its steps as just written
        return bool(done)

    def _claim(self, job_id, allowed):
        """Make this process the job's owner, if its status is one of ``allowed``."""
        with db.session(self.url) as sess:
            job = self._get(sess, job_id)
            interrupted = self._mark_if_interrupted(sess, job)
            refused = None if job.status in allowed else _refusal(describe(job), allowed)
            claimed = 0 if refused else sess.execute(
                update(Job).where(Job.id == job.id, Job.status == job.status,
                                  _same(Job.owner_pid, job.owner_pid), _same(Job.owner_host, job.owner_host),
                                  _same(Job.owner_started, job.owner_started))
                .values(status="running", started=job.started or utcnow(), ended=None,
                        **this_owner())).rowcount
        if interrupted:
            self._fire_job(job_id, "interrupted")
        if refused:
            raise CorpusError(refused)
        if claimed != 1:
            raise CorpusError("Job {} is already being run by another process.".format(job_id))
        self._fire_job(job_id, "running")

    def _run_steps(self, job_id):
        with db.session(self.url) as sess:
            job = self._get(sess, job_id)
            clipboard = dict(job.clipboard or {})
            groups = _groups(self.plans.get(job.kind), list(job.steps))
            total = len(job.steps)
        for group in groups:
            todo = [step for step in group if step.status != "success"]
            if not todo:
                continue
            if len(todo) == 1:
                failed = [self._run_step(job, todo[0], clipboard, total)]
            else:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
                    failed = list(pool.map(lambda step: self._run_step(job, step, clipboard, total), todo))
            errors = [error for error in failed if error]
            if errors:
                error = errors[0]
                failures = self._undo_steps(job_id, ("success",))
                if failures:
                    error += "; the undo failed too: " + "; ".join(failures)
                self._finish(job_id, "failed", error)
                return self.status(job_id)
        self._finish(job_id, "success", None)
        return self.status(job_id)

    def _run_step(self, job, step, clipboard, total):
        """Run one step on its own copy of ``clipboard``, then merge what it changed into it
        (and the job's row); None, or the job's error when the step failed."""
        with self._saving:
            before = copy.deepcopy(clipboard)
        do = self.registry.get(step.name, (None, None))[0]
        ctx = StepContext(job, step, copy.deepcopy(before), dict(step.undo_data or {}))
        self._set_step(job.id, step, status="running", started=utcnow(), ended=None)
        try:
            if do is None:
                raise CorpusError("no step {} is registered on this controller".format(step.name))
            do(ctx)
            _check_json(ctx.clipboard)
            _check_json(ctx.undo_data)
        except Exception as exc:  # any failure of a step fails the job, with its undo
            reason = reason_of(exc)
            ctx.log("failed: " + reason)
            if not isinstance(exc, CorpusError):
                ctx.log(traceback.format_exc().rstrip())
            kept = None
            if isinstance(exc, FailedWithReport):
                with self._saving:
                    _apply(clipboard, _changes(before, ctx.clipboard))
                    kept = clipboard
            self._set_step(job.id, step, status="failed", ended=utcnow(), log=_text(ctx.lines),
                           undo_data=ctx.undo_data, clipboard=kept)
            return "failed at step {}/{} {}: {}".format(step.index, total, step.name, reason)
        with self._saving:
            _apply(clipboard, _changes(before, ctx.clipboard))
            self._set_step(job.id, step, status="success", ended=utcnow(), log=_text(ctx.lines),
                           undo_data=ctx.undo_data, clipboard=clipboard)
        return None

    def _undo_steps(self, job_id, statuses):
        """Run the undo of the steps in ``statuses``, newest first; return failures."""
        with db.session(self.url) as sess:
            job = self._get(sess, job_id)
            clipboard = dict(job.clipboard or {})
            steps = [step for step in reversed(job.steps) if step.status in statuses]
            total = len(job.steps)
        failures = []
        for step in steps:
            undo = self.registry.get(step.name, (None, None))[1]
            ctx = StepContext(job, step, clipboard, dict(step.undo_data or {}))
            ctx.lines = [step.log] if step.log else []
            try:
                if step.name not in self.registry:
                    raise CorpusError("no step {} is registered on this controller".format(step.name))
                if undo is not None:
                    undo(ctx)
                ctx.log("undone")
                status = "undone"
            except Exception as exc:  # keep undoing the others; report this one
                reason = reason_of(exc)
                ctx.log("undo failed: " + reason)
                if not isinstance(exc, CorpusError):
                    ctx.log(traceback.format_exc().rstrip())
                failures.append("step {}/{} {}: {}".format(step.index, total, step.name, reason))
                status = "undo_failed"
            self._set_step(job_id, step, status=status, log=_text(ctx.lines),
                           undo_data=ctx.undo_data, clipboard=ctx.clipboard)
        return failures

    def _set_step(self, job_id, step, clipboard=None, **values):
        """Save a step's new state (and the clipboard) and announce it."""
        with db.session(self.url) as sess:
            sess.execute(update(JobStep).where(JobStep.job_id == job_id, JobStep.index == step.index)
                         .values(**values))
            if clipboard is not None:
                sess.execute(update(Job).where(Job.id == job_id).values(clipboard=dict(clipboard)))
        if "status" in values:
            step.status = values["status"]
            self._emit("corpus/job/{}/step/{}/{}".format(job_id, step.index, values["status"]),
                       {"job": job_id, "step": step.index, "name": step.name, "status": values["status"]})

    def _finish(self, job_id, status, error):
        with db.session(self.url) as sess:
            sess.execute(update(Job).where(Job.id == job_id)
                         .values(status=status, error=error, ended=utcnow()))
        self._fire_job(job_id, status, error)

    def _fire_job(self, job_id, status, error=None):
        self._emit("corpus/job/{}/{}".format(job_id, status),
                   {"job": job_id, "status": status, "error": error})

    def _emit(self, tag, data):
        if self.fire is None:
            return
        try:
            self.fire(tag, data)
        except Exception:  # a lost event must not break the job
            log.warning("Could not fire event %s", tag, exc_info=True)


def _refusal(state, allowed):
    if state["status"] == "running":
        return state["message"][:-1] + "; only one process runs a job."
    verbs = {("pending",): "run", ("pending", "interrupted"): "resumed"}
    verb = verbs.get(tuple(allowed), "undone")
    if verb == "run":
        return "{} It can only be run while pending.".format(state["message"])
    return "{} It cannot be {}.".format(state["message"], verb)


def _check_json(mapping):
    try:
        json.dumps(mapping)
    except (TypeError, ValueError) as exc:
        raise CorpusError("the clipboard must hold JSON values only ({})".format(exc)) from exc


def _text(lines):
    return "\n".join(line for line in lines if line)
