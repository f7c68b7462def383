"""The chat texts of a job's progress: started, each step done, done, failed (with the
step and the reason), undone, interrupted.

``event_of(tag, data)`` reads a job event (``corpus/job/<id>/<status>`` or
``corpus/job/<id>/step/<index>/<status>``); ``text(event, job)`` says it, or None for
the events chat is not told of (a job made and pending, a step starting, failing --
the job's failure says which and why -- or being undone). ``job`` is what the
inventory knows of the job: ``id``, ``kind``, ``target``, ``steps`` (how many),
``error``, ``seconds`` (the whole job's) and ``step_seconds`` (the event's step's).
"""

import re

TAG_RE = re.compile(r"^corpus/job/(?P<job>\d+)/(?:step/(?P<step>\d+)/)?(?P<status>[a-z_]+)$")
JOB_STATUSES = ("running", "success", "failed", "undone", "interrupted")
STEP_STATUSES = ("success",)
PREFIX = "[corpus]"


def event_of(tag, data):
    """``{"job", "step", "name", "status"}`` of a job event chat is told of, or None."""
    found = TAG_RE.match(str(tag or ""))
    if found is None:
        return None
    status = found.group("status")
    step = found.group("step")
    if (step is None and status not in JOB_STATUSES) or (step is not None and status not in STEP_STATUSES):
        return None
    data = data if isinstance(data, dict) else {}
    return {"job": int(found.group("job")), "step": int(step) if step else None,
            "name": data.get("name") if step else None, "status": status}


def _seconds(value):
    return "" if value is None else " in {:g} s".format(round(value, 1))


def _steps(count):
    return "{} step{}".format(count, "" if count == 1 else "s")


def label(job):
    return "Job {} ({} {})".format(job["id"], job["kind"], job["target"])


def text(event, job):
    """The chat text of ``event`` of ``job``, or None."""
    head = "{} {}".format(PREFIX, label(job))
    status = event["status"]
    if event["step"] is not None:
        return "{} step {}/{} {} done{}.".format(head, event["step"], job["steps"], event["name"],
                                                _seconds(job.get("step_seconds")))
    if status == "running":
        return "{} started: {}.".format(head, _steps(job["steps"]))
    if status == "success":
        return "{} done: {}{}.".format(head, _steps(job["steps"]), _seconds(job.get("seconds")))
    if status == "failed":
        # The job's error is "failed at step 2/3 provider:action: why" (jobs._run_step).
        return "{} FAILED{}.".format(head, _after_failed(job.get("error")))
    if status == "undone":
        return "{} was undone.".format(head)
    return "{} was interrupted: its process is gone; resume or undo it.".format(head)


def _after_failed(error):
    error = (error or "").rstrip(".")
    if error.startswith("failed"):
        return error[len("failed"):]
    return ": " + error if error else ""
