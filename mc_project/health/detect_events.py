"""A scheduled detectors' run as its minion reports it: the event
``corpus/health/detected/<minion>``, signed with the minion's own Salt key.

Signed for the reason ``reports.py`` gives for checks: a minion may fire an event that
claims another minion's id, so the controller believes the groups only when the minion
the tag names signed them, and only while the report is fresh.
"""

import base64
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

PREFIX = "corpus/health/detected/"
SIGNATURE = "signature"
MAX_AGE = 300


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
    body = {"groups": list(groups), "at": now or time.time()}
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    body[SIGNATURE] = base64.b64encode(key.sign(_text(event_tag, body), padding.PKCS1v15(),
                                                hashes.SHA256())).decode()
    return body


def verify(public_key_pem, event_tag, body, now=None):
    """Whether ``body`` was signed for ``event_tag`` by ``public_key_pem`` and is fresh."""
    if not isinstance(body, dict) or not isinstance(body.get(SIGNATURE), str) or not public_key_pem:
        return False
    try:
        at = float(body.get("at"))
        signature = base64.b64decode(body[SIGNATURE], validate=True)
        key = serialization.load_pem_public_key(
            public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem)
        key.verify(signature, _text(event_tag, body), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return abs((now or time.time()) - at) <= MAX_AGE
