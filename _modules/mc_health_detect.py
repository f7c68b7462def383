"""Salt execution module: run the corpus detectors on this host (logic in
``mc_project.health``).

The rules come from the pillar key ``corpus_detectors:rules``, which the controller's
ext_pillar serves each host with the schedule that runs them. The detected groups are
also kept in the grain ``corpus_detected_groups``, so Salt can target them:
``salt -C 'G@corpus_detected_groups:web' test.ping``.
"""

import logging
import os

from salt.exceptions import CommandExecutionError

try:
    from mc_project.errors import CorpusError
    from mc_project.health import detect_events, detectors, facts

    HAS_CORPUS = True
except ImportError:  # pragma: no cover - corpus not installed on this minion
    HAS_CORPUS = False

log = logging.getLogger(__name__)

__virtualname__ = "mc_health_detect"

GRAIN = "corpus_detected_groups"


def __virtual__():
    if not HAS_CORPUS:
        return False, "the corpus package (mc_project) is not importable"
    return __virtualname__


def _rules(given=None):
    # __pillar__ holds plain values; pillar.get would hand back Salt 3008's masks.
    served = __pillar__.get(detectors.PILLAR_KEY) or {}
    try:
        if given is not None:
            return detectors.parse_rules(given)
        return detectors.parse_rules(served.get("rules") if isinstance(served, dict) else served)
    except CorpusError as exc:
        raise CommandExecutionError(str(exc)) from None


def _function(name):
    return __salt__[name] if name in __salt__ else None


def run(fire=False, rules=None):
    """
    Evaluate the detectors of this host's pillar over its facts; the groups it belongs in.

    ``rules`` (a list of rules) replaces the pillar's: the controller hands its current
    rules with each run it asks for, so a run never sees a pillar older than them.

    With ``fire=True`` (the schedule's runs) the groups are also fired to the master as
    the event ``corpus/health/detected/<minion id>``, signed with this minion's key,
    which the controller writes to the inventory.

    CLI Example:

    .. code-block:: bash

        salt-call mc_health_detect.run
    """
    rules = _rules(rules)
    gathered, notes = facts.gather(dict(__grains__), _function("pkg.list_pkgs"), _function("service.get_running"))
    result = detectors.evaluate(rules, gathered)
    result["notes"] = notes
    if sorted(__grains__.get(GRAIN) or []) != result["groups"] and "grains.setval" in __salt__:
        __salt__["grains.setval"](GRAIN, result["groups"])
    if fire:
        tag = detect_events.tag(__opts__["id"])
        with open(os.path.join(__opts__["pki_dir"], "minion.pem"), "rb") as fh:
            body = detect_events.sign(fh.read(), tag, result["groups"])
        __salt__["event.send"](tag, body)
    return result


def facts_of_host():
    """
    The facts the detectors see on this host (files are looked up one by one, not listed).

    CLI Example:

    .. code-block:: bash

        salt-call mc_health_detect.facts_of_host
    """
    gathered, notes = facts.gather(dict(__grains__), _function("pkg.list_pkgs"), _function("service.get_running"))
    return {"packages": sorted(gathered["packages"]), "ports": sorted(gathered["ports"]),
            "services": sorted(gathered["services"]), "notes": notes}
