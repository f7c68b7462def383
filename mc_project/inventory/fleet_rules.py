"""What the fleet inventory accepts: names, labels, variable keys, and structures
without cycles. Each refusal is one sentence (a ``CorpusError``); ``NotFound`` and
``Conflict`` say which kind of refusal it is, so the API answers 404 or 409."""

import json
import re

from mc_project.errors import CorpusError
from mc_project.inventory.fleet_models import LEVELS

# A host's name is what Ansible and salt-ssh call it: a DNS name or a plain word.
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$")
# Regions, cells and groups become Ansible group names: letters, digits and '_' only
# would be Ansible's own rule; '-' and '.' are kept readable and mapped in the export.
PLACE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=-]{0,127}$")
# A variable's key: a Salt pillar key and an Ansible variable name alike.
VARIABLE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9:.%_-]{1,255}$")
SSH_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
MAX_VARIABLES_BYTES = 1 << 20


class NotFound(CorpusError):
    """An object that does not exist (for this caller)."""


class Conflict(CorpusError):
    """An object that exists already, or is still in use."""


def check_name(kind, name, pattern=PLACE_NAME_RE):
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise CorpusError("{} name {!r} is not valid: use letters, digits, '.', '_' and '-', starting with a "
                          "letter or digit.".format(kind.capitalize(), name))
    return name


def check_host_name(name):
    return check_name("host", name, HOST_NAME_RE)


def check_labels(labels):
    if not isinstance(labels, (list, tuple)):
        raise CorpusError("Labels must be a list of words.")
    for label in labels:
        if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
            raise CorpusError("Label {!r} is not valid: use letters, digits and '_.:/=-'.".format(label))
    return sorted(set(labels))


def check_level(level):
    if level not in LEVELS:
        raise CorpusError("Unknown level {!r}; variables go on one of: {}.".format(level, ", ".join(LEVELS)))
    return level


def check_variables(variables, what="variables"):
    """``variables`` is a mapping of valid keys to JSON values."""
    if not isinstance(variables, dict):
        raise CorpusError("The {} must be a mapping of names to values.".format(what))
    for key in variables:
        if not isinstance(key, str) or not VARIABLE_KEY_RE.fullmatch(key):
            raise CorpusError("Variable name {!r} is not valid: use letters, digits and '_', not starting with "
                              "a digit.".format(key))
    try:
        size = len(json.dumps(variables, allow_nan=False))
    except (TypeError, ValueError):
        raise CorpusError("The {} must be JSON values (text, numbers, true/false, null, lists, "
                          "mappings).".format(what)) from None
    if size > MAX_VARIABLES_BYTES:
        raise CorpusError("The {} are {} bytes of JSON; at most {} are allowed.".format(
            what, size, MAX_VARIABLES_BYTES))
    return variables


def check_secrets(secrets):
    check_variables(secrets, "secret variables")
    for key, value in secrets.items():
        if not isinstance(value, str):
            raise CorpusError("Secret variable {} must be text.".format(key))
    return secrets


def find_cycle(edges, start, target):
    """The path from ``start`` to ``target`` through ``edges`` (``{node: [next nodes]}``),
    or None: adding ``target -> start`` would close it into a cycle."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        if node == target:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((following, path + [following]) for following in edges.get(node, ()))
    return None
