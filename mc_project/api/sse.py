"""``GET /v1/jobs/{id}/events``: a job's steps as Server-Sent Events, as they happen.

The stream listens to the master's event bus (``corpus/job/<id>/...``, signed by
the controller: see ``controller/events.py``) from before it reads the job, sends
the steps already started, then one ``event: step`` per change announced on the
bus, and ``event: end`` with the final status and result. A run on the inventory
also sends ``event: host`` per host event (``corpus/job/<id>/host/<seq>/<status>``: a
state's or task's result on one host) as it is fired; those the bus lost, or fired
before the stream began, are sent from the job's record when its step ends (each
once, by its ``seq``: then out of order). The inventory stays
the truth: a step's time and log are read from it, and when the bus is quiet (or
cannot be reached) the job is read again every second, so a lost event delays a
step at most that long and never hides the end. A comment line every 15 s keeps
idle connections open (and finds the ones a client closed).
"""

import json
import logging
import os
import time

import salt.utils.event

from mc_project import jobs
from mc_project.api import results
from mc_project.controller import events

log = logging.getLogger(__name__)

FINAL = events.FINAL
POLL = 1.0
KEEPALIVE = 15.0
MAX_SECONDS = 24 * 3600


def frame(kind, data):
    return "event: {}\ndata: {}\n\n".format(kind, json.dumps(data, default=str)).encode()


def _step_data(row):
    data = {"step": row["index"], "name": row["name"], "status": row["status"], "seconds": row["seconds"]}
    if row.get("log"):
        data["log"] = row["log"]
    return data


def _host_data(data):
    return {key: value for key, value in data.items() if not key.startswith("_") and key != events.SIGNATURE}


def _kept_host_events(state, sent):
    """The frames of the host events kept on the job's clipboard not sent yet."""
    for data in (state.get("clipboard") or {}).get("host_events") or ():
        if isinstance(data, dict) and data.get("seq") not in sent:
            sent.add(data.get("seq"))
            yield frame("host", data)


def _listen(opts):
    """``(bus, key)``: the master's event bus and the key its corpus events are signed
    with, or ``(None, None)`` when there is no master to listen to."""
    bus = None
    try:
        if os.path.isdir(opts["sock_dir"]):
            bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
            if bus.connect_pub(timeout=2):
                return bus, events.key(opts)
    except Exception:  # pylint: disable=broad-except
        pass
    if bus is not None:
        bus.destroy()
    # No master: the inventory alone drives the stream.
    log.warning("job events: the master's event bus cannot be reached; reading the inventory only")
    return None, None


def stream(ctl, job_id):
    """The SSE frames (bytes) of job ``job_id`` until it ends."""
    manager = jobs.Jobs(ctl.url)
    bus, secret = _listen(ctl.opts)
    prefix = events.job_prefix(job_id)
    sent = {}
    sent_hosts = set()
    host_prefix = prefix + "host/"
    try:
        state = manager.status(job_id)
        deadline = time.monotonic() + MAX_SECONDS
        quiet_since = time.monotonic()
        while True:
            yield from _kept_host_events(state, sent_hosts)
            for row in state["steps"]:
                if row["status"] != "pending" and sent.get(row["index"]) != row["status"]:
                    sent[row["index"]] = row["status"]
                    quiet_since = time.monotonic()
                    yield frame("step", _step_data(row))
            if state["status"] in FINAL:
                yield frame("end", {"status": state["status"], "result": results.result(state),
                                    "error": state["error"]})
                return
            if time.monotonic() > deadline:
                return
            if time.monotonic() - quiet_since > KEEPALIVE:
                quiet_since = time.monotonic()
                yield b": keepalive\n\n"
            if bus is None:
                time.sleep(POLL)
            else:
                event = bus.get_event(wait=POLL, tag=prefix, full=True)
                if event and not events.verify(secret, event["tag"], event["data"]):
                    continue  # not the controller's: ignored
                if event and event["tag"].startswith(host_prefix):
                    data = _host_data(event["data"])
                    if data.get("seq") not in sent_hosts:
                        sent_hosts.add(data.get("seq"))
                        quiet_since = time.monotonic()
                        yield frame("host", data)
                    continue  # the job's record changes at its step's end, not per host
            state = manager.status(job_id)
    finally:
        if bus is not None:
            bus.destroy()
