"""One minion's answer to a state run as host events: each state, in the order it ran,
``ok`` (nothing to change), ``changed`` (it changed something, or with ``test=True``
would), or ``failed``; an answer that is no state result (an SLS that does not render,
one not found) is one ``failed`` event saying why. A state's changes are not copied
into the events: a file's diff may hold what only its host should see."""

SEPARATOR = "_|-"


def _task(key, item):
    """``"<state id>: <module>.<function>"`` from a state's key (``file_|-id_|-name_|-managed``)."""
    parts = str(key).split(SEPARATOR)
    state_id = item.get("__id__") or (parts[1] if len(parts) == 4 else key)
    if len(parts) == 4:
        return "{}: {}.{}".format(state_id, parts[0], parts[3])
    return str(state_id)


def state_status(item):
    result = item.get("result")
    if result is False:
        return "failed"
    if result is None or item.get("changes"):  # None: test=True says it would change
        return "changed"
    return "ok"


def events(ret):
    """``[(status, task, message)]`` of one minion's state return, in run order."""
    if isinstance(ret, dict) and all(isinstance(item, dict) for item in ret.values()):
        ordered = sorted(ret.items(), key=lambda pair: pair[1].get("__run_num__", 0))
        return [(state_status(item), _task(key, item), item.get("comment")) for key, item in ordered]
    if isinstance(ret, (list, tuple)):
        return [("failed", None, "; ".join(str(line) for line in ret) or "the state run failed")]
    return [("failed", None, str(ret) if ret not in (None, "") else "the state run returned nothing")]
