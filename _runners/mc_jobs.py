"""Salt runner: inspect, resume and undo corpus controller jobs.

The jobs live in the inventory database named by the master option
``corpus:db_url`` (default: an SQLite file under the master's cachedir).
Progress is published on the master's event bus as ``corpus/job/<id>/...``, signed by
the controller: ``watch`` shows only those, whatever a minion fires under the same tags.
"""

from mc_project.controller import events
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError

__virtualname__ = "mc_jobs"


def __virtual__():
    return __virtualname__


def _jobs():
    """The job manager, with the controller's steps (environments) registered."""
    return Controller(__opts__).jobs()


def _report(state):
    """A job's status; ``salt-run`` exits 1 when it failed or was interrupted."""
    if state["status"] in ("failed", "interrupted"):
        __context__["retcode"] = 1
        state["retcode"] = 1  # what salt-run reads for its exit code
    return state


def _refused(exc):
    """An error as a value: one sentence, exit code 1, no traceback."""
    __context__["retcode"] = 1
    return {"result": False, "comment": str(exc), "retcode": 1}


def status(job_or_target):
    """
    Say which step a job is on, or where it failed: by job id, or for every
    job of a target (an environment, a node...), newest first.

    CLI Example:

    .. code-block:: bash

        salt-run mc_jobs.status 12
        salt-run mc_jobs.status myapp-staging
    """
    try:
        manager = _jobs()
        if str(job_or_target).isdigit():
            return _report(manager.status(int(job_or_target)))
        found = manager.status_for_target(str(job_or_target))
        if not found:
            raise CorpusError("No job has target {}.".format(job_or_target))
        return found
    except CorpusError as exc:
        return _refused(exc)


def resume(job_id):
    """
    Run an interrupted job on from its first unfinished step.

    CLI Example:

    .. code-block:: bash

        salt-run mc_jobs.resume 12
    """
    try:
        return _report(_jobs().resume(job_id))
    except CorpusError as exc:
        return _refused(exc)


def undo(job_id):
    """
    Take back the done steps of a job (interrupted, succeeded, or whose undo
    failed), newest first.

    CLI Example:

    .. code-block:: bash

        salt-run mc_jobs.undo 12
    """
    try:
        return _report(_jobs().undo(job_id))
    except CorpusError as exc:
        return _refused(exc)


def watch(job_id, timeout=600):
    """
    Show a job's progress as it happens (only events the controller signed), until it
    ends; returns its status then.

    CLI Example:

    .. code-block:: bash

        salt-run mc_jobs.watch 12
    """
    try:
        manager = _jobs()
        state = manager.status(int(job_id))
    except (CorpusError, ValueError) as exc:
        return _refused(exc if isinstance(exc, CorpusError) else CorpusError(
            "Job id {!r} is not a number.".format(job_id)))
    if state["status"] not in events.FINAL:
        def show(tag, data):
            print("{} {}".format(tag, data.get("name") or data.get("error") or ""), flush=True)

        def forged(tag, data):
            print("ignored: {} was not fired by the controller".format(tag), flush=True)

        try:
            events.watch(__opts__, int(job_id), float(timeout), show, forged)
        except CorpusError as exc:
            return _refused(exc)
        state = manager.status(int(job_id))
    return _report(state)
