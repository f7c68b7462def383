"""ansible-runner's events as host events: a task's result on a host is ``ok`` or
``changed`` (``runner_on_ok``), ``failed`` (``runner_on_failed``; one whose error the play
ignores counts as ``ok``, as Ansible's recap does), ``unreachable`` or ``skipped``.
Only a failure's message is kept, never a task's result: it may hold what only its host
should see (Ansible's ``no_log`` already hides it from the events)."""

HOST_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def host_event(event):
    """``(host, status, task, message)`` of one runner event, or None for the others
    (plays, task starts, stats, stdout lines)."""
    if not isinstance(event, dict):
        return None
    status = HOST_EVENTS.get(event.get("event"))
    data = event.get("event_data") or {}
    host = data.get("host")
    if status is None or not host:
        return None
    result = data.get("res") if isinstance(data.get("res"), dict) else {}
    message = None
    if status == "ok" and result.get("changed"):
        status = "changed"
    elif status == "failed" and data.get("ignore_errors"):
        status, message = "ok", "failure ignored: {}".format(result.get("msg") or "")
    elif status in ("failed", "unreachable"):
        message = result.get("msg") or result.get("stderr") or result.get("reason")
    return host, status, data.get("task"), message

