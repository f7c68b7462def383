"""Salt execution module: run one of this minion's fleet-health checks and report it.

The controller's ext_pillar gives each minion its checks (pillar ``corpus_checks``)
and a schedule entry per check that calls ``mc_health.run NAME`` every interval; the
result goes to the controller as the event ``corpus/check/<minion id>/<NAME>``,
signed with this minion's key (see ``mc_project.health.reports``).
"""

import os
import time

from salt.exceptions import CommandExecutionError

try:
    from mc_project.health import checks, reports

    HAS_CORPUS = True
except ImportError:  # pragma: no cover - corpus not installed on this minion
    HAS_CORPUS = False

__virtualname__ = "mc_health"

PILLAR_KEY = "corpus_checks"


def __virtual__():
    if not HAS_CORPUS:
        return False, "the corpus package (mc_project) is not importable"
    return __virtualname__


def _spec(name):
    # __pillar__ holds plain values; pillar.get would hand back Salt 3008's masks.
    spec = (__pillar__.get(PILLAR_KEY) or {}).get(name)
    if not isinstance(spec, dict):
        raise CommandExecutionError("This minion has no check named {}.".format(name))
    return spec


def checks_list():
    """
    The names of the checks the controller gave this minion.

    CLI Example:

    .. code-block:: bash

        salt '*' mc_health.checks_list
    """
    return sorted(__pillar__.get(PILLAR_KEY) or {})


def run(name, report=True):
    """
    Run the check ``name`` and (unless ``report=False``) send its result to the
    controller; return ``{"state", "output", "duration"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' mc_health.run web-http
    """
    result = checks.run(_spec(name))
    if report:
        tag = reports.tag(__opts__["id"], name)
        with open(os.path.join(__opts__["pki_dir"], "minion.pem"), "rb") as fh:
            body = reports.sign(fh.read(), tag, dict(result, at=time.time()))
        __salt__["event.send"](tag, body)
    return result
