"""Long operations run as jobs in a thread of the API process.

An operation of ``controller.operations`` (or a ``Jobs`` method) checks its
request, creates its job and runs it to the end. ``start`` runs it in a thread
with a copy of the controller whose ``fire`` -- through which the job machinery
announces every change on the Salt event bus -- also tells this module the job's
id, and returns that id as soon as the job exists (or raises the refusal, when
the operation refused before making one). ``on_event(tag, data)`` sees each
event in the job's thread, before the next step starts.

A job whose API process dies shows as ``interrupted`` (its owner is gone), and
``POST /v1/jobs/{id}/resume`` or ``undo`` finishes or cleans it.
"""

import copy
import logging
import threading

from mc_project.api.errors import ApiError
from mc_project.errors import CorpusError

log = logging.getLogger(__name__)

START_TIMEOUT = 30


def worker_controller(ctl):
    """A copy of ``ctl`` for a job's thread: it borrows from the same pool of Salt clients
    (see ``Controller.salt_client``) but has a wheel client of its own."""
    clone = copy.copy(ctl)
    clone._wheel = None
    return clone


def start(ctl, operation, on_event=None, timeout=START_TIMEOUT):
    """Run ``operation(ctl)`` in a thread; the id of the job it made."""
    ready = threading.Event()
    seen = {"job": None, "error": None}
    job_ctl = worker_controller(ctl)

    def fire(tag, data):
        # The hook runs before the caller is told the job's id: it may tag the job (with its
        # tenant, say) that the caller's next request reads.
        if on_event is not None:
            try:
                on_event(tag, data)
            except Exception:  # a hook must not break the job
                log.exception("job event hook failed on %s", tag)
        if seen["job"] is None and isinstance(data, dict) and data.get("job") is not None:
            seen["job"] = int(data["job"])
            ready.set()
        ctl.fire(tag, data)

    job_ctl.fire = fire

    def run():
        try:
            operation(job_ctl)
        except Exception as exc:  # a refusal before the job existed, or a failure of the runner
            seen["error"] = exc
            if not isinstance(exc, (CorpusError, ApiError)):
                log.exception("job thread failed")
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="corpus-api-job", daemon=True)
    thread.start()
    ready.wait(timeout)
    if seen["job"] is not None:
        return seen["job"]
    if seen["error"] is not None:
        raise seen["error"]
    raise ApiError(503, "The job did not start within {} s.".format(timeout))
