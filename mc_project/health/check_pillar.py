"""What the ext_pillar gives a host's minion for its checks: the checks themselves
(``corpus_checks``) and one Salt schedule entry per check that runs it every
interval (``schedule``, which the minion's scheduler reads from its pillar; a pillar
refresh brings new checks and drops removed ones). TTL checks are not run by the
minion: the service pushes its passes to the controller."""

from mc_project.health import scope

PILLAR_KEY = "corpus_checks"
SCHEDULE_PREFIX = "corpus-check-"
RUN_FUNCTION = "mc_health.run"


def schedule_entry(check):
    return {"function": RUN_FUNCTION, "args": [check.name], "seconds": int(check.interval),
            # One run at a time: a check slower than its interval must not pile up processes.
            "maxrunning": 1, "return_job": False, "run_on_start": True}


def checks_pillar(sess, host):
    """``{"corpus_checks": {...}, "schedule": {...}}`` for ``host`` (a ``host_rows``
    mapping), or ``{}`` when it has no check to run."""
    found = scope.checks_of(sess, host, kinds=("http", "tcp", "script"))
    if not found:
        return {}
    return {
        PILLAR_KEY: {check.name: {"kind": check.kind, "params": dict(check.params or {}),
                                  "timeout": check.timeout, "interval": check.interval} for check in found},
        "schedule": {SCHEDULE_PREFIX + check.name: schedule_entry(check) for check in found},
    }
