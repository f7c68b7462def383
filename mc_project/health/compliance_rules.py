"""Compliance rules: the small vocabulary (a file's mode and owner, a package present or
absent, a service running, a user present, a sysctl) and raw Salt states, checked (one
sentence for anything wrong) and compiled to Salt's highstate data, which ``state.high``
applies -- with ``test=True`` to audit, without to enforce: one rule, two modes.

Each rule's states have ids of their own (``compliance/<rule>/<n>``, or a raw SLS's ids),
and ``__sls__`` is ``compliance/<rule>``: a state's result says which rule it is of.
Waivers: ``waiver_for`` picks the waiver in force that covers a rule on a host.
"""

import datetime
import re

import yaml

from mc_project.errors import CorpusError
from mc_project.inventory.compliance_models import MODES, RULE_KINDS

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PATH_RE = re.compile(r"^/[^\x00\n\r]{0,4095}$")
FILE_MODE_RE = re.compile(r"^0?[0-7]{3,4}$")
ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")
PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._:~-]{0,127}$")
SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@:._-]{0,127}$")
SYSCTL_RE = re.compile(r"^[a-z0-9_][a-z0-9_./-]{0,127}$")
STATE_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
SLS_PREFIX = "compliance/"
MAX_SLS = 64 * 1024
MAX_REASON = 2000
PARAMS = {
    "file": ("path", "mode", "user", "group"),
    "pkg_present": ("name", "version"),
    "pkg_absent": ("name",),
    "service_running": ("name", "enable"),
    "user_present": ("name", "uid", "shell", "home", "groups"),
    "sysctl": ("name", "value"),
    "sls": ("sls",),
}


def rule_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CorpusError("A rule's name is letters, digits, '.', '_' or '-' (at most 128), "
                          "starting with a letter or digit; got {!r}.".format(name))
    return name


def mode_of(mode):
    if mode not in MODES:
        raise CorpusError("A rule's mode is audit or enforce, not {!r}.".format(mode))
    return mode


def impact_of(impact):
    if isinstance(impact, bool) or not isinstance(impact, (int, float)) or not 0 <= impact <= 1:
        raise CorpusError("A rule's impact is a number from 0.0 (none) to 1.0 (critical).")
    return float(impact)


def _text(params, key, pattern, what, required=True):
    value = params.get(key)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not pattern.match(value):
        raise CorpusError("params.{} is {}; got {!r}.".format(key, what, value))
    return value


def _file_mode(params):
    mode = params.get("mode")
    if mode is None:
        return None
    if isinstance(mode, int) and not isinstance(mode, bool):
        mode = str(mode)  # 644 read from JSON or a command line: the digits are meant
    if not isinstance(mode, str) or not FILE_MODE_RE.match(mode):
        raise CorpusError("params.mode is an octal file mode such as 0644; got {!r}.".format(mode))
    return mode.rjust(4, "0")


def _sls(params):
    text = params.get("sls")
    if isinstance(text, str):
        if len(text) > MAX_SLS:
            raise CorpusError("params.sls is at most {} KiB.".format(MAX_SLS // 1024))
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = " (line {})".format(where.line + 1) if where is not None else ""
            raise CorpusError("params.sls is not valid YAML{}.".format(at)) from None
    else:
        data = text
    if not isinstance(data, dict) or not data:
        raise CorpusError("params.sls is a Salt state: a mapping of state ids to their states.")
    for state_id, body in data.items():
        if not isinstance(state_id, str) or not state_id or state_id.startswith("__") \
                or state_id in ("include", "extend"):
            raise CorpusError("params.sls: {!r} is not a state id a rule may hold (no include, extend or "
                              "__ names).".format(state_id))
        if not isinstance(body, dict) or not body:
            raise CorpusError("params.sls: state {} is not a mapping of module.function to its "
                              "arguments.".format(state_id))
        for key, args in body.items():
            if not isinstance(key, str) or not STATE_KEY_RE.match(key):
                raise CorpusError("params.sls: state {} names {!r}, not a module.function such as "
                                  "file.managed.".format(state_id, key))
            if args is not None and not isinstance(args, list):
                raise CorpusError("params.sls: the arguments of {} in state {} are a list.".format(key, state_id))
    return data


def check_params(kind, params):
    """``params`` of a rule of ``kind``, checked and normalised."""
    if kind not in RULE_KINDS:
        raise CorpusError("A rule's kind is one of {}; got {!r}.".format(", ".join(RULE_KINDS), kind))
    if not isinstance(params, dict):
        raise CorpusError("A rule's params are a mapping.")
    unknown = sorted(set(params) - set(PARAMS[kind]))
    if unknown:
        raise CorpusError("A {} rule takes params {}; not {}.".format(kind, ", ".join(PARAMS[kind]), unknown[0]))
    if kind == "file":
        checked = {"path": _text(params, "path", PATH_RE, "an absolute path")}
        mode = _file_mode(params)
        user = _text(params, "user", ACCOUNT_RE, "a user name", required=False)
        group = _text(params, "group", ACCOUNT_RE, "a group name", required=False)
        if mode is None and user is None and group is None:
            raise CorpusError("A file rule says the file's mode, user or group (at least one).")
        checked.update({key: value for key, value in (("mode", mode), ("user", user), ("group", group)) if value})
        return checked
    if kind in ("pkg_present", "pkg_absent"):
        checked = {"name": _text(params, "name", PACKAGE_RE, "a package name")}
        version = params.get("version")
        if version is not None:
            if not isinstance(version, str) or not version or len(version) > 128 or "\n" in version:
                raise CorpusError("params.version is a package version, such as 1.2-3.")
            checked["version"] = version
        return checked
    if kind == "service_running":
        checked = {"name": _text(params, "name", SERVICE_RE, "a service name")}
        if "enable" in params:
            if not isinstance(params["enable"], bool):
                raise CorpusError("params.enable is true or false.")
            checked["enable"] = params["enable"]
        return checked
    if kind == "user_present":
        checked = {"name": _text(params, "name", ACCOUNT_RE, "a user name")}
        if "uid" in params:
            uid = params["uid"]
            if isinstance(uid, bool) or not isinstance(uid, int) or not 0 <= uid < 2 ** 32:
                raise CorpusError("params.uid is a user id, a whole number.")
            checked["uid"] = params["uid"]
        for key in ("shell", "home"):
            if key in params:
                checked[key] = _text(params, key, PATH_RE, "an absolute path")
        if "groups" in params:
            groups = params["groups"]
            if not isinstance(groups, list) or not all(isinstance(g, str) and ACCOUNT_RE.match(g) for g in groups):
                raise CorpusError("params.groups is a list of group names.")
            checked["groups"] = list(groups)
        return checked
    if kind == "sysctl":
        checked = {"name": _text(params, "name", SYSCTL_RE, "a kernel parameter such as net.ipv4.ip_forward")}
        value = params.get("value")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "" or "\n" in str(value):
            raise CorpusError("params.value is the kernel parameter's value, such as 0.")
        checked["value"] = str(value)
        return checked
    data = _sls(params)
    return {"sls": params["sls"] if isinstance(params["sls"], str) else yaml.safe_dump(data, sort_keys=False)}


def _state(module, function, sls, args):
    return {module: [function] + [{key: value} for key, value in args.items()], "__sls__": sls, "__env__": "base"}


def compile_rule(name, kind, params):
    """``{state id: highstate body}`` of one rule (its params as ``check_params`` left them)."""
    sls = SLS_PREFIX + name
    sid = "{}{}/{{}}".format(SLS_PREFIX, name).format
    if kind == "file":
        perms = {key: params[key] for key in ("mode", "user", "group") if key in params}
        # The file must exist (file.exists fails when it does not: nothing is created), and
        # its permissions are then checked or set, its content never touched.
        return {sid(1): _state("file", "exists", sls, {"name": params["path"]}),
                sid(2): _state("file", "managed", sls, dict({"name": params["path"], "replace": False,
                                                             "create": False}, **perms,
                                                            require=[{"file": sid(1)}]))}
    if kind == "pkg_present":
        return {sid(1): _state("pkg", "installed", sls, dict(params))}
    if kind == "pkg_absent":
        return {sid(1): _state("pkg", "removed", sls, {"name": params["name"]})}
    if kind == "service_running":
        return {sid(1): _state("service", "running", sls, dict(params))}
    if kind == "user_present":
        return {sid(1): _state("user", "present", sls, dict(params))}
    if kind == "sysctl":
        return {sid(1): _state("sysctl", "present", sls, dict(params))}
    if kind == "sls":
        high = {}
        for state_id, body in _sls(params).items():
            high[state_id] = dict(body, __sls__=sls, __env__="base")
        return high
    raise CorpusError("A rule's kind is one of {}; got {!r}.".format(", ".join(RULE_KINDS), kind))


def compile_host(rules):
    """The highstate data of ``rules`` (``(name, kind, params)``) on one host, and the rules
    whose state ids another rule took first (``{rule: sentence}``): those are not applied."""
    high, owners, clashes = {}, {}, {}
    for name, kind, params in rules:
        states = compile_rule(name, kind, params)
        taken = sorted(set(states) & set(high))
        if taken:
            clashes[name] = "State id {} is also in rule {}: rename one of them.".format(taken[0], owners[taken[0]])
            continue
        high.update(states)
        owners.update(dict.fromkeys(states, name))
    return high, clashes


def rule_of(key, item):
    """The rule a state's result (``key``, ``item`` of ``state.high``'s answer) is of, or None."""
    sls = item.get("__sls__") if isinstance(item, dict) else None
    if isinstance(sls, str) and sls.startswith(SLS_PREFIX):
        return sls[len(SLS_PREFIX):]
    return None


# --------------------------------------------------------------------------- waivers

def aware(moment):
    """``moment`` in UTC (SQLite gives back naive datetimes for what was stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def check_waiver(reason, until, now, host=None, group=None):
    """One sentence if a waiver is not right: a host or a group, a reason, an end to come."""
    if (host is None) == (group is None):
        raise CorpusError("A waiver is on a host or on a group: name one of them.")
    if not (reason or "").strip():
        raise CorpusError("A waiver needs a reason.")
    if len(reason) > MAX_REASON:
        raise CorpusError("A waiver's reason is at most {} characters.".format(MAX_REASON))
    if until is None or aware(until) <= aware(now):
        raise CorpusError("A waiver expires after now: give until, a time to come.")
    return reason.strip()


def in_force(waiver, now):
    return aware(waiver.until) > aware(now)


def waiver_for(waivers, rule_id, host_id, groups, now):
    """The waiver of ``waivers`` in force at ``now`` that covers rule ``rule_id`` on host
    ``host_id`` (in ``groups``), the one that lasts longest; or None."""
    found = [waiver for waiver in waivers if waiver.rule_id == rule_id and in_force(waiver, now)
             and (waiver.host_id is None or waiver.host_id == host_id)
             and (waiver.group_id is None or waiver.group_id in groups)]
    return max(found, key=lambda waiver: aware(waiver.until)) if found else None
