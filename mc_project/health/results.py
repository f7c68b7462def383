"""The controller's side of the checks: results, passes and deadlines recorded in the
inventory, through the state machine (``check_states``), with each change's history
and the notifications it calls for (``handlers.plan``).

Each function runs in the caller's transaction and returns the deliveries to send
once it is committed (``handlers.dispatch``).
"""

import datetime
import logging

from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.health import check_states, handlers, scope, silences
from mc_project.inventory import host_rows, resolve
from mc_project.inventory.fleet_models import GroupMember, Host
from mc_project.inventory.health_models import PENDING, STATES, Check, CheckHistory, CheckState, Handler
from mc_project.inventory.models import utcnow

log = logging.getLogger(__name__)

MAX_OUTPUT = 4096


def state_row(sess, check, host_id, now=None):
    """The state of ``check`` on host ``host_id``, made PENDING when it has none yet (a TTL
    check's deadline then starts: a service that never passes goes CRITICAL)."""
    row = sess.scalar(select(CheckState).where(CheckState.check_id == check.id, CheckState.host_id == host_id))
    if row is None:
        now = now or utcnow()
        row = CheckState(check_id=check.id, host_id=host_id, state=PENDING, since=now, attempts=0,
                         expires=now + datetime.timedelta(seconds=check.interval) if check.kind == "ttl" else None)
        sess.add(row)
        sess.flush()
    return row


def _settle(sess, row, check, host, outcome, now):
    if outcome is None:
        return []
    if outcome.history is not None:
        sess.add(CheckHistory(state_id=row.id, **outcome.history))
    if check_states.notifies(outcome.change):
        return handlers.plan(sess, row, check, host, outcome.change[0], outcome.change[1], now=now)
    return []


class Lookup:
    """The hosts of minions and their checks, each read once in one transaction (a
    batch of results from the same hosts and tenants reads them once)."""

    def __init__(self, sess):
        self.sess = sess
        self._hosts = {}
        self._groups = {}
        self._checks = {}
        self._trees = {}
        self._tenant_checks = {}
        self._states = {}

    def prefetch(self, minion_ids):
        """Read the machines of ``minion_ids``, their groups and their states in three
        queries (a node's or an environment's host is read at its first result)."""
        wanted = [minion_id for minion_id in set(minion_ids) if minion_id not in self._hosts]
        if not wanted:
            return
        found = host_rows.rows(self.sess, Host.minion_id.in_(wanted))
        self._hosts.update((host["minion_id"], host) for host in found)
        ids = [host["id"] for host in found]
        if ids:
            for host_id, group_id in self.sess.execute(select(GroupMember.host_id, GroupMember.group_id).where(
                    GroupMember.host_id.in_(ids))):
                self._groups.setdefault(host_id, []).append(group_id)
            self._groups.update((host_id, []) for host_id in ids if host_id not in self._groups)
            for row in self.sess.scalars(select(CheckState).where(CheckState.host_id.in_(ids))):
                self._states[(row.check_id, row.host_id)] = row

    def host(self, minion_id):
        if minion_id not in self._hosts:
            self._hosts[minion_id] = host_rows.by_minion(self.sess, minion_id)
        return self._hosts[minion_id]

    def state_row(self, check, host_id, now):
        row = self._states.get((check.id, host_id))
        if row is None:
            row = self._states[(check.id, host_id)] = state_row(self.sess, check, host_id, now)
        return row

    def checks_of(self, host):
        """As ``scope.checks_of``: the host's own checks and its groups'."""
        if host["id"] not in self._checks:
            tenant_id = host["tenant_id"]
            if tenant_id not in self._trees:
                self._trees[tenant_id] = resolve.GroupTree.load(self.sess, tenant_id)
                self._tenant_checks[tenant_id] = self.sess.scalars(
                    select(Check).where(Check.tenant_id == tenant_id).order_by(Check.name)).all()
            direct = self._groups.get(host["id"])
            if direct is None:
                direct = resolve.direct_groups(self.sess, host["id"])
            groups = self._trees[tenant_id].with_ancestors(direct)
            self._checks[host["id"]] = [check for check in self._tenant_checks[tenant_id]
                                        if check.host_id == host["id"] or check.group_id in groups]
        return self._checks[host["id"]]


def record_result(sess, minion_id, check_name, result, now=None, lookup=None):
    """A result a minion reported for its check ``check_name``; the deliveries.

    The host is the one of the minion Salt authenticated; a check that is not that
    host's (or a TTL check, which only a pass changes) is refused. ``lookup`` (a
    ``Lookup`` of ``sess``) is shared by the results of one transaction."""
    now = now or utcnow()
    lookup = lookup or Lookup(sess)
    host = lookup.host(minion_id)
    if host is None:
        raise CorpusError("Minion {} is no host of the inventory.".format(minion_id))
    check = next((found for found in lookup.checks_of(host) if found.name == check_name), None)
    if check is None or check.kind == "ttl":
        raise CorpusError("Host {} has no check {} that it runs.".format(host["name"], check_name))
    result = result if isinstance(result, dict) else {}
    state = result.get("state") if result.get("state") in STATES else "UNKNOWN"
    output = str(result.get("output") or "")[:MAX_OUTPUT]
    row = lookup.state_row(check, host["id"], now)
    return _settle(sess, row, check, host, check_states.apply(row, state, output, check.retries, now), now)


def record_pass(sess, row, output=None, now=None):
    """A TTL check's pass pushed by its service; the deliveries."""
    now = now or utcnow()
    check = sess.get(Check, row.check_id)
    if check.kind != "ttl":
        raise CorpusError("Check {} is a {} check: only a TTL check takes a pass.".format(check.name, check.kind))
    host = host_rows.one(sess, row.host_id)
    outcome = check_states.passed(row, check.interval, now, (output or "")[:MAX_OUTPUT] or None)
    return _settle(sess, row, check, host, outcome, now)


def expire_ttls(sess, now=None):
    """TTL checks: a state for each host they cover, CRITICAL past its deadline; the deliveries."""
    now = now or utcnow()
    deliveries = []
    for check in sess.scalars(select(Check).where(Check.kind == "ttl")).all():
        for host in scope.hosts_of(sess, check):
            row = state_row(sess, check, host["id"], now)
            deliveries += _settle(sess, row, check, host, check_states.expire(row, check.interval, now), now)
    return deliveries


def repeats(sess, now=None):
    """Tell again the handlers with a repeat of every state that stays bad that long."""
    now = now or utcnow()
    if sess.scalar(select(Handler.id).where(Handler.repeat.is_not(None)).limit(1)) is None:
        return []
    deliveries = []
    bad = sess.scalars(select(CheckState).where(CheckState.state.not_in(("OK", PENDING)))).all()
    for row in bad:
        check = sess.get(Check, row.check_id)
        host = host_rows.one(sess, row.host_id)
        due = []
        for handler in handlers.routed(sess, check.tenant_id, scope.host_groups(sess, host)):
            if not handler.repeat:
                continue
            last = handlers.last_told(sess, handler.id, row.id) or row.since
            if (now - silences.aware(last)).total_seconds() >= handler.repeat:
                due.append(handler)
        if due:
            deliveries += handlers.plan(sess, row, check, host, row.state, row.state, repeat=True, only=due, now=now)
    return deliveries
