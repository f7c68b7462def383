"""Checks and handlers as the API makes them: their settings checked (one sentence for
anything wrong), and the records the API and the web page show."""

import re
import urllib.parse

from sqlalchemy import case, select

from mc_project.errors import CorpusError
from mc_project.health import handlers, scope
from mc_project.inventory import fleet, host_rows
from mc_project.inventory.fleet_models import Host, HostGroup
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.health_models import CHECK_KINDS, Check, CheckState, Handler

# A check's name is in event tags and schedule entries: no slash, no space.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAIL_RE = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


def check_name(name):
    if not NAME_RE.match(name or ""):
        raise CorpusError("A check's name is letters, digits, '.', '_' or '-' (at most 128), "
                          "starting with a letter or digit; got {!r}.".format(name))
    return name


def check_params(kind, params):
    """``params`` of a check of ``kind``, checked."""
    params = dict(params or {})
    if kind == "http":
        url = params.get("url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https") \
                or not urllib.parse.urlsplit(url).hostname:
            raise CorpusError("An HTTP check needs params.url, an http:// or https:// URL.")
        if "body" in params:
            try:
                re.compile(str(params["body"]))
            except re.error as exc:
                raise CorpusError("params.body is not a valid regular expression: {}.".format(exc)) from None
        status = params.get("status")
        if status is not None and not all(isinstance(code, int) and 100 <= code <= 599
                                          for code in (status if isinstance(status, list) else [status])):
            raise CorpusError("params.status is an HTTP status (100-599) or a list of them.")
        if params.get("tls_days") is not None and not isinstance(params["tls_days"], (int, float)):
            raise CorpusError("params.tls_days is a number of days.")
    elif kind == "tcp":
        port = params.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise CorpusError("A TCP check needs params.port, a port number (1-65535).")
        if not isinstance(params.get("host", "127.0.0.1"), str):
            raise CorpusError("params.host is a host name or address.")
    elif kind == "script":
        command = params.get("command")
        if not command or not (isinstance(command, str) or
                               (isinstance(command, list) and all(isinstance(part, str) for part in command))):
            raise CorpusError("A script check needs params.command, a command line or a list of arguments.")
    elif kind == "ttl":
        if params:
            raise CorpusError("A TTL check takes no params: its interval is its time to live.")
    else:
        raise CorpusError("A check's kind is one of {}.".format(", ".join(CHECK_KINDS)))
    return params


def where_of(sess, tenant_id, group=None, host=None):
    """``(group id, host id)`` named by ``group`` or ``host`` in ``tenant_id`` (None for one not given)."""
    group_id = fleet.group_by_name(sess, tenant_id, group).id if group is not None else None
    host_id = fleet.host_by_name(sess, tenant_id, host)["id"] if host is not None else None
    return group_id, host_id


def create_check(sess, tenant_id, name, kind, group=None, host=None, params=None, interval=60, timeout=10,
                 retries=0):
    check_name(name)
    if (group is None) == (host is None):
        raise CorpusError("A check is on a group or on a host: name one of them.")
    params = check_params(kind, params)
    if sess.scalar(select(Check.id).where(Check.tenant_id == tenant_id, Check.name == name)) is not None:
        raise Conflict("A check named {} exists.".format(name))
    group_id, host_id = where_of(sess, tenant_id, group, host)
    check = Check(tenant_id=tenant_id, name=name, kind=kind, group_id=group_id, host_id=host_id, params=params,
                  interval=interval, timeout=timeout, retries=retries)
    sess.add(check)
    sess.flush()
    return check


def minions_of(sess, check):
    """The minion ids of the hosts ``check`` covers (their pillar changes with it)."""
    return sorted({host["minion_id"] for host in scope.hosts_of(sess, check) if host["minion_id"]})


def check_record(sess, check):
    names = _names(sess, check)
    return {"id": check.id, "name": check.name, "kind": check.kind, "tenant": fleet.tenant_name(sess, check.tenant_id),
            "group": names.get("group"), "host": names.get("host"), "params": check.params,
            "interval": check.interval, "timeout": check.timeout, "retries": check.retries,
            "created": check.created}


def _names(sess, thing):
    found = {}
    if getattr(thing, "group_id", None):
        found["group"] = sess.get(HostGroup, thing.group_id).name
    if getattr(thing, "host_id", None):
        host = host_rows.one(sess, thing.host_id)
        found["host"] = host["name"] if host else None
    if getattr(thing, "check_id", None):
        found["check"] = sess.get(Check, thing.check_id).name
    return found


# Worst first: what needs a look heads a list.
STATE_ORDER = ("CRITICAL", "UNKNOWN", "WARNING", "PENDING", "OK")


def state_rank(column):
    """An ORDER BY expression putting ``column``'s states worst first."""
    return case({state: rank for rank, state in enumerate(STATE_ORDER)}, value=column, else_=len(STATE_ORDER))


def state_records(sess, rows):
    """The API's records of check states (``CheckState`` rows)."""
    checks = {check.id: check for check in sess.scalars(select(Check).where(
        Check.id.in_({row.check_id for row in rows})))} if rows else {}
    hosts = {host["id"]: host["name"] for host in host_rows.rows(
        sess, Host.id.in_({row.host_id for row in rows}))} if rows else {}
    return [{"id": row.id, "check": checks[row.check_id].name, "check_id": row.check_id,
             "kind": checks[row.check_id].kind, "host": hosts.get(row.host_id), "host_id": row.host_id,
             "state": row.state, "since": row.since, "last_state": row.last_state, "attempts": row.attempts,
             "retries": checks[row.check_id].retries, "output": row.output, "checked": row.checked,
             "expires": row.expires} for row in rows]


def state_record(sess, row):
    return state_records(sess, [row])[0]


def create_handler(sess, tenant_id, name, kind, target, group=None, repeat=None):
    check_name(name)
    if kind == "mail":
        if not MAIL_RE.match(target or ""):
            raise CorpusError("A mail handler's target is one mail address.")
    elif kind == "webhook":
        parts = urllib.parse.urlsplit(target or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CorpusError("A webhook handler's target is an http:// or https:// URL.")
    else:
        raise CorpusError("A handler's kind is mail or webhook.")
    if repeat is not None and repeat < 1:
        raise CorpusError("A handler's repeat is a number of seconds (at least 1).")
    if sess.scalar(select(Handler.id).where(Handler.tenant_id == tenant_id, Handler.name == name)) is not None:
        raise Conflict("A handler named {} exists.".format(name))
    group_id, _host_id = where_of(sess, tenant_id, group=group)
    handler = Handler(tenant_id=tenant_id, name=name, kind=kind, target=target, group_id=group_id, repeat=repeat)
    sess.add(handler)
    sess.flush()
    return handler


def handler_record(sess, handler):
    return {"id": handler.id, "name": handler.name, "kind": handler.kind,
            "target": handlers.masked_target(handler.kind, handler.target),
            "tenant": fleet.tenant_name(sess, handler.tenant_id), "group": _names(sess, handler).get("group"),
            "repeat": handler.repeat, "created": handler.created}


def silence_record(sess, silence):
    names = _names(sess, silence)
    return {"id": silence.id, "tenant": fleet.tenant_name(sess, silence.tenant_id), "host": names.get("host"),
            "group": names.get("group"), "check": names.get("check"), "who": silence.who, "why": silence.why,
            "starts": silence.starts, "until": silence.until, "created": silence.created}


def notification_record(notification):
    return {key: getattr(notification, key) for key in (
        "id", "at", "handler_name", "check_name", "host_name", "previous", "state", "repeat", "status", "detail",
        "silence_id", "state_id")}


def states_of_check(sess, check_id):
    return sess.scalars(select(CheckState).where(CheckState.check_id == check_id)).all()


def silence_where(sess, tenant_id, host=None, group=None, check=None):
    """``(host id, group id, check id)`` a silence names."""
    group_id, host_id = where_of(sess, tenant_id, group, host)
    check_id = None
    if check is not None:
        check_id = sess.scalar(select(Check.id).where(Check.tenant_id == tenant_id, Check.name == check))
        if check_id is None:
            raise NotFound("No check named {}.".format(check))
    return host_id, group_id, check_id

