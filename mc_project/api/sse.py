"""``GET /v1/jobs/{id}/events``: a job's steps as Server-Sent Events, as they happen.

The stream listens to the master's event bus (``corpus/job/<id>/...``, signed by
the controller: see ``controller/events.py``; one reader per process, ``master_bus``)
from before it reads the job, sends
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
import time

from mc_project import jobs
from mc_project.api import results
from mc_project.controller import events, master_bus

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


def stream(ctl, job_id):
    """The SSE frames (bytes) of job ``job_id`` until it ends."""
    manager = jobs.Jobs(ctl.url)
    # None: no bus to listen to, the inventory alone drives the stream.
    announced = master_bus.for_master(ctl.opts).subscribe(events.job_prefix(job_id), check=_signed(ctl.opts))
    sent = {}
    sent_hosts = set()
    host_prefix = events.job_prefix(job_id) + "host/"
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
            event = _next_event(announced)
            if event and event["tag"].startswith(host_prefix):
                data = _host_data(event["data"])
                if data.get("seq") not in sent_hosts:
                    sent_hosts.add(data.get("seq"))
                    quiet_since = time.monotonic()
                    yield frame("host", data)
                continue  # the job's record changes at its step's end, not per host
            state = manager.status(job_id)
    finally:
        if announced is not None:
            announced.close()


def _signed(opts):
    """Whether an event was signed by the controller (its key read on the first event)."""
    secret = []

    def check(event):
        if not secret:
            secret.append(events.key(opts))
        return events.verify(secret[0], event["tag"], event["data"])
    return check


def _next_event(announced):
    """The job's next event within a second, or None (the job is then read again)."""
    if announced is None:
        time.sleep(POLL)
        return None
    return announced.get_event(wait=POLL, full=True)
