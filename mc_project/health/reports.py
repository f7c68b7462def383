"""A check's result as a minion reports it: the event ``corpus/check/<minion>/<check>``,
signed with the minion's own Salt key.

Why signed: a minion may fire any event on the master's bus, and Salt checks the
sender's id only on a single event -- one sent in a batch (``events``) reaches the
bus with whatever ``id`` it claims. The minion's key pair is the one Salt already
trusts (``pki_dir/minion.pem``; the master keeps the public half once the key is
accepted), so the controller believes a result only when the minion the tag names
signed it, and only while it is fresh (a replayed old OK is refused).
"""

import base64
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

PREFIX = "corpus/check/"
SIGNATURE = "signature"
# How old (or how far ahead, between clocks) a report may be.
MAX_AGE = 300


def tag(minion_id, check_name):
    return "{}{}/{}".format(PREFIX, minion_id, check_name)


def parse_tag(event_tag):
    """``(minion id, check name)`` of an event tag, or None for another tag."""
    if not event_tag.startswith(PREFIX):
        return None
    minion_id, slash, check_name = event_tag[len(PREFIX):].partition("/")
    return (minion_id, check_name) if slash and minion_id and check_name and "/" not in check_name else None


def _text(event_tag, body):
    fields = {key: body.get(key) for key in ("state", "output", "duration", "at")}
    return json.dumps([event_tag, fields], sort_keys=True, default=str).encode()


def sign(private_key_pem, event_tag, body, text=None):
    """``body`` with its signature by the minion key ``private_key_pem`` (bytes, or the
    key already loaded: loading checks the key, which costs more than signing) of
    ``text(event_tag, body)``, the fields signed (a check result's by default)."""
    key = (serialization.load_pem_private_key(private_key_pem, password=None)
           if isinstance(private_key_pem, bytes) else private_key_pem)
    signature = key.sign((text or _text)(event_tag, body), padding.PKCS1v15(), hashes.SHA256())
    return dict(body, **{SIGNATURE: base64.b64encode(signature).decode()})


def verify(public_key_pem, event_tag, body, now=None, text=None):
    """Whether ``body`` was signed for ``event_tag`` by the key ``public_key_pem`` (over
    ``text(event_tag, body)``, as ``sign``) and is fresh."""
    if not isinstance(body, dict) or not isinstance(body.get(SIGNATURE), str) or not public_key_pem:
        return False
    try:
        at = float(body.get("at"))
        signature = base64.b64decode(body[SIGNATURE], validate=True)
        key = serialization.load_pem_public_key(
            public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem)
        key.verify(signature, (text or _text)(event_tag, body), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return abs((now or time.time()) - at) <= MAX_AGE


def body_of(event_data):
    """The minion's own data in what the master fired (Salt wraps it under ``data``)."""
    if isinstance(event_data, dict) and isinstance(event_data.get("data"), dict):
        return event_data["data"]
    return event_data
