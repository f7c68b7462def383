"""Runs on the inventory, as jobs: a Salt state function (``corpus run TARGET state.apply
SLS``) or a playbook (``corpus playbook TARGET FILE``) on the hosts a target names in
one tenant (``inventory.run_targets``).

As every operation (``operations.py``), each checks its request first -- a bad target,
function, SLS name or playbook is refused in one sentence and no job is made -- then
runs its one-step job, whose step reports each host's progress as host events
(``host_report``). ``test`` / ``check`` is the dry run: Salt's ``test=True``,
Ansible's ``--check``.
"""

import re

from mc_project.controller import operations, playbooks
from mc_project.errors import CorpusError
from mc_project.inventory import db, run_targets

RUN_STATE = ("run:salt_state",)
RUN_PLAYBOOK = ("run:playbook",)
KINDS = ("salt_run", "playbook")
# State runs only: other execution functions are not "configuration on the inventory".
STATE_FUNCTIONS = ("state.apply", "state.sls", "state.highstate")
SLS_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MAX_SLS = 64
TIMEOUT = 3600  # a playbook's longest run
HOST_KEYS = ("name", "minion_id", "address", "ssh_port", "ssh_user")


def _hosts(ctl, tenant_id, target):
    with db.session(ctl.url) as sess:
        found = run_targets.hosts(sess, tenant_id, target)
    return [{key: host[key] for key in HOST_KEYS} for host in found]


def _sls_names(sls):
    names = []
    for item in sls or ():
        names.extend(part.strip() for part in str(item).split(",") if part.strip())
    if len(names) > MAX_SLS:
        raise CorpusError("A run takes at most {} SLS names.".format(MAX_SLS))
    for name in names:
        if not SLS_RE.fullmatch(name):
            raise CorpusError("SLS name {!r} is not valid: use letters, digits and '_.-'.".format(name))
    return names


def state_request(ctl, tenant_id, target, function="state.apply", sls=(), test=False):
    """The clipboard of a state run, or one sentence refusing it."""
    if function not in STATE_FUNCTIONS:
        raise CorpusError("corpus run runs states: use {}, not {!r}.".format(", ".join(STATE_FUNCTIONS), function))
    names = _sls_names(sls)
    if function == "state.sls" and not names:
        raise CorpusError("state.sls needs at least one SLS name.")
    if function == "state.highstate" and names:
        raise CorpusError("state.highstate takes no SLS name: use state.apply SLS for those.")
    if not isinstance(test, bool):
        raise CorpusError("test is true or false.")
    return {"target": target, "tenant_id": tenant_id, "function": function, "sls": names, "test": test,
            "hosts": _hosts(ctl, tenant_id, target)}


def playbook_request(ctl, tenant_id, target, playbook, check=False, timeout=TIMEOUT):
    """The clipboard of a playbook run, or one sentence refusing it."""
    content = playbooks.check_playbook(playbook)
    if not isinstance(check, bool):
        raise CorpusError("check is true or false.")
    return {"target": target, "tenant_id": tenant_id, "playbook": content, "check": check,
            "timeout": int(timeout), "hosts": _hosts(ctl, tenant_id, target)}


def _result(ctl, kind, plan, clipboard, progress):
    result, state = operations._run(ctl, kind, clipboard["target"], plan, clipboard, progress)
    result["hosts"] = (state["clipboard"] or {}).get("summary")
    return result


def run_state(ctl, clipboard, progress=None):
    """Run the state run ``state_request`` checked; its result with each host's summary."""
    return _result(ctl, "salt_run", RUN_STATE, clipboard, progress)


def run_playbook(ctl, clipboard, progress=None):
    """Run the playbook ``playbook_request`` checked; its result with each host's summary."""
    return _result(ctl, "playbook", RUN_PLAYBOOK, clipboard, progress)


def report(state):
    """What a run's job shows as its result, succeeded or failed: target, dry run or not,
    the summary per host and the totals; None while the run has no summary."""
    clip = state.get("clipboard") or {}
    summary = clip.get("summary")
    if summary is None:
        return None
    totals = {}
    for row in summary.values():
        totals[row["status"]] = totals.get(row["status"], 0) + 1
    dry = clip.get("test") if state["kind"] == "salt_run" else clip.get("check")
    return {"target": clip.get("target"), "dry_run": bool(dry), "hosts": summary, "totals": totals,
            "events": clip.get("events_total", 0)}
