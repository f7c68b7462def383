"""A check's state machine, as Nagios has it: soft and hard states.

A result that differs from the hard state is soft at first; only when ``retries + 1``
results in a row differ from it does the state change (hard), and only a hard change
reaches the handlers: a check that flaps between OK and CRITICAL faster than its
retries never changes state. The first result of a check is hard at once (there was
nothing before it). A TTL check's pass is an OK result; its deadline passing is a
CRITICAL one, with no retries: the deadline is already the grace the service had.

The functions work on any object with a ``CheckState``'s attributes (the unit tests
hand them plain ones) and return what to record; they touch no database.
"""

import dataclasses
import datetime

from mc_project.inventory.health_models import PENDING, STATES

OK, CRITICAL = "OK", "CRITICAL"
EXPIRED_OUTPUT = "No pass came within the check's time to live ({} s)."


@dataclasses.dataclass
class Outcome:
    """What one result did: ``history`` is the row to add (None when nothing changed),
    ``change`` the hard change ``(previous, state)`` or None."""

    history: dict | None = None
    change: tuple | None = None


def apply(row, state, output, retries, now):
    """Apply one result (``state``, ``output``) to ``row``; the ``Outcome``."""
    if state not in STATES:
        raise ValueError("A check's state is one of {}, not {!r}.".format(", ".join(STATES), state))
    previous_soft = row.last_state
    row.checked, row.output, row.last_state = now, output, state
    if row.state == PENDING or (state != row.state and (row.attempts or 0) + 1 > max(int(retries or 0), 0)):
        previous = row.state
        row.state, row.since, row.attempts = state, now, 0
        return Outcome(_entry(row, now, hard=True), (previous, state))
    if state == row.state:
        # Back to the hard state before the retries ran out: a soft change, recorded.
        was_soft = bool(row.attempts)
        row.attempts = 0
        return Outcome(_entry(row, now, hard=False) if was_soft else None)
    row.attempts = (row.attempts or 0) + 1
    return Outcome(_entry(row, now, hard=False) if state != previous_soft else None)


def _entry(row, now, hard):
    return {"at": now, "state": row.last_state, "hard": hard, "attempts": row.attempts, "output": row.output}


def passed(row, ttl, now, output=None):
    """A TTL check's pass: OK, and the deadline ``ttl`` seconds on."""
    row.expires = now + datetime.timedelta(seconds=int(ttl))
    return apply(row, OK, output or "Passed.", 0, now)


def expire(row, ttl, now):
    """A TTL check whose deadline has passed goes CRITICAL (once: the deadline is cleared
    until the next pass). None when it has not expired."""
    if row.expires is None or _aware(now) < _aware(row.expires):
        return None
    row.expires = None
    return apply(row, CRITICAL, EXPIRED_OUTPUT.format(int(ttl)), 0, now)


def notifies(change):
    """Whether a hard change is told to the handlers: every one but a first OK."""
    return change is not None and not (change[0] == PENDING and change[1] == OK)


def _aware(moment):
    # SQLite gives back naive datetimes for what was stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
