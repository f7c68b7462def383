"""A scheduled detectors' run as its minion reports it: the event
``corpus/health/detected/<minion>``, signed with the minion's own Salt key.

Signed for the reason ``reports.py`` gives for checks: a minion may fire an event that
claims another minion's id, so the controller believes the groups only when the minion
the tag names signed them, and only while the report is fresh.
"""

import json
import time

from mc_project.health import reports

PREFIX = "corpus/health/detected/"


def tag(minion_id):
    return PREFIX + minion_id


def minion_of(event_tag):
    """The minion an event tag names, or None for another tag."""
    if not event_tag.startswith(PREFIX):
        return None
    minion_id = event_tag[len(PREFIX):]
    return minion_id if minion_id and "/" not in minion_id else None


def _text(event_tag, body):
    return json.dumps([event_tag, body.get("groups"), body.get("at")], sort_keys=True, default=str).encode()


def sign(private_key_pem, event_tag, groups, now=None):
    """The event's body: ``groups``, the time, and their signature by ``private_key_pem``."""
    return reports.sign(private_key_pem, event_tag, {"groups": list(groups), "at": now or time.time()}, text=_text)


def verify(public_key_pem, event_tag, body, now=None):
    """Whether ``body`` was signed for ``event_tag`` by ``public_key_pem`` and is fresh."""
    return reports.verify(public_key_pem, event_tag, body, now=now, text=_text)
