"""Detectors: rules that put hosts in groups from what runs on them.

A rule, in YAML::

    - name: webserver
      apply_if: "'nginx' in packages or 80 in ports"
      add_groups: [web]

``apply_if`` is an expression (``expressions.py``: no ``eval``) over a host's facts
(``facts.py``): ``grains`` (``grains['os_family'] == 'Debian'``), ``packages``
(``'nginx' in packages``, ``packages['nginx']`` its version), ``files``
(``'/etc/nginx/nginx.conf' in files``), ``ports`` (``5432 in ports``) and
``services`` (``'haproxy' in services``). When it is true, the host is put in each
group of ``add_groups``.

The controller reads the rules from the master option ``corpus_detectors``
(``rules:`` a list, or ``rules_file:`` a YAML file holding one), hands them to every
host's minion in its pillar with a schedule (``interval`` seconds, default 600; 0 for
none), and the minion evaluates them over its own facts. Every rule is checked
before it is served: a bad one is one sentence naming it.
"""

import os

import yaml

from mc_project.errors import CorpusError
from mc_project.health import expressions
from mc_project.health.facts import FACT_NAMES
from mc_project.inventory import fleet_rules

OPTION = "corpus_detectors"
DEFAULT_INTERVAL = 600
PILLAR_KEY = "corpus_detectors"
SCHEDULE_NAME = "corpus_detectors"
RULE_KEYS = ("name", "apply_if", "add_groups", "description")
MAX_RULES = 500


class Detector:
    """One checked rule."""

    def __init__(self, name, apply_if, add_groups, description=None):
        self.name = name
        self.apply_if = apply_if
        self.add_groups = list(add_groups)
        self.description = description
        self.expression = expressions.Expression(apply_if, FACT_NAMES)

    def record(self):
        found = {"name": self.name, "apply_if": self.apply_if, "add_groups": self.add_groups}
        if self.description:
            found["description"] = self.description
        return found


def _rule_label(index, rule):
    name = rule.get("name") if isinstance(rule, dict) else None
    return "Detector {}".format(name) if isinstance(name, str) and name else "Detector #{}".format(index)


def parse_rules(rules):
    """Check ``rules`` (a list of mappings, or ``{"detectors": [...]}``); the ``Detector``s."""
    if isinstance(rules, dict) and set(rules) == {"detectors"}:
        rules = rules["detectors"]
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise CorpusError("Detector rules must be a list of mappings with name, apply_if and add_groups.")
    if len(rules) > MAX_RULES:
        raise CorpusError("At most {} detector rules are allowed; {} were given.".format(MAX_RULES, len(rules)))
    detectors, names = [], set()
    for index, rule in enumerate(rules, 1):
        label = _rule_label(index, rule)
        if not isinstance(rule, dict):
            raise CorpusError("{} must be a mapping with name, apply_if and add_groups.".format(label))
        unknown = sorted(str(key) for key in rule if key not in RULE_KEYS)
        if unknown:
            raise CorpusError("{} has an unknown key {}; a rule has: {}.".format(label, unknown[0],
                                                                               ", ".join(RULE_KEYS)))
        for key in ("name", "apply_if", "add_groups"):
            if key not in rule:
                raise CorpusError("{} has no {}.".format(label, key))
        name = rule["name"]
        try:
            fleet_rules.check_name("detector", name)
        except CorpusError as exc:
            raise CorpusError("{}: {}".format(label, exc)) from None
        if name in names:
            raise CorpusError("Detector {} is defined twice.".format(name))
        names.add(name)
        groups = rule["add_groups"]
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or not groups:
            raise CorpusError("{}: add_groups must be a non-empty list of group names.".format(label))
        for group in groups:
            try:
                fleet_rules.check_name("group", group)
            except CorpusError as exc:
                raise CorpusError("{}: {}".format(label, exc)) from None
        description = rule.get("description")
        if description is not None and not isinstance(description, str):
            raise CorpusError("{}: description must be text.".format(label))
        try:
            detectors.append(Detector(name, rule["apply_if"], groups, description))
        except expressions.ExpressionError as exc:
            raise CorpusError("{}: apply_if is refused: {}".format(label, exc)) from None
    return detectors


def load_rules_file(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise CorpusError("Cannot read the detector rules file {}: {}.".format(path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line {}".format(mark.line + 1) if mark is not None else ""
        raise CorpusError("The detector rules file {} is not valid YAML{}.".format(path, where)) from None
    return parse_rules(data)


def settings(opts):
    """``{"rules": [Detector], "interval": seconds}`` from the master's ``corpus_detectors``."""
    given = (opts or {}).get(OPTION) or {}
    if not isinstance(given, dict):
        raise CorpusError("The master option {} must be a mapping (rules or rules_file, interval).".format(OPTION))
    unknown = sorted(str(key) for key in given if key not in ("rules", "rules_file", "interval"))
    if unknown:
        raise CorpusError("Unknown setting {}:{}; it has rules, rules_file and interval.".format(OPTION, unknown[0]))
    if given.get("rules") is not None and given.get("rules_file"):
        raise CorpusError("Give {}:rules or {}:rules_file, not both.".format(OPTION, OPTION))
    interval = given.get("interval", DEFAULT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
        raise CorpusError("The setting {}:interval must be a whole number of seconds (0: no schedule).".format(
            OPTION))
    path = given.get("rules_file")
    if path is not None and (not isinstance(path, str) or not os.path.isabs(path)):
        raise CorpusError("The setting {}:rules_file must be an absolute path.".format(OPTION))
    rules = load_rules_file(path) if path else parse_rules(given.get("rules"))
    return {"rules": rules, "interval": interval}


def pillar(opts):
    """What a host's minion gets in its pillar: the rules and the schedule that runs them."""
    found = settings(opts)
    if not found["rules"]:
        return {}
    served = {PILLAR_KEY: {"rules": [rule.record() for rule in found["rules"]]}}
    if found["interval"]:
        # Salt's scheduler reads a ``schedule`` in the pillar; the run fires its result as an
        # event the controller writes to the inventory.
        served["schedule"] = {SCHEDULE_NAME: {"function": "mc_health_detect.run", "seconds": found["interval"],
                                              "kwargs": {"fire": True}, "return_job": False,
                                              "maxrunning": 1}}
    return served


def evaluate(detectors, facts):
    """``{"groups": [...], "detectors": {name: {"matched", "groups", "error"}}}`` for one host.

    A rule that cannot be evaluated over this host's facts (comparing text with a
    number...) matches nothing and says why; the others still count.
    """
    groups, results = set(), {}
    for detector in detectors:
        try:
            matched = bool(detector.expression.evaluate(facts))
            error = None
        except expressions.ExpressionError as exc:
            matched, error = False, str(exc)
        results[detector.name] = {"matched": matched, "groups": detector.add_groups if matched else [],
                                  "error": error}
        if matched:
            groups.update(detector.add_groups)
    return {"groups": sorted(groups), "detectors": results}
