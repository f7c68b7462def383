"""Job events the controller signs, so that progress shown anywhere comes from it alone.

Any minion can fire an event on the master's bus under any tag (Salt refuses only a few
of its own), so a container could announce ``corpus/job/7/success``. The controller
signs every event it fires with a key only it can read (HMAC-SHA256; a 0600 file in the
master's cachedir, made on first use); whatever shows a job's progress keeps only the
events whose signature checks (``watch``). A job's state itself lives in the inventory
and no event changes it.
"""

import hashlib
import hmac
import json
import os
import secrets
import time

from mc_project.controller import master_bus
from mc_project.errors import CorpusError

KEY_FILE = "corpus-events.key"
SIGNATURE = "corpus_signature"
FINAL = ("success", "failed", "undone", "interrupted")


def key(opts):
    """The controller's event key (created 0600 on first use)."""
    path = os.path.join(opts["cachedir"], KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    with open(path, "rb") as fh:
        return fh.read()


def _mac(secret, tag, data):
    # Salt adds its own keys (``_stamp``) to what it fires: sign what corpus wrote.
    body = {k: v for k, v in data.items() if not k.startswith("_") and k != SIGNATURE}
    text = json.dumps([tag, body], sort_keys=True, default=str).encode()
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def sign(secret, tag, data):
    return dict(data, **{SIGNATURE: _mac(secret, tag, data)})


def verify(secret, tag, data):
    return isinstance(data, dict) and isinstance(data.get(SIGNATURE), str) and \
        hmac.compare_digest(data[SIGNATURE], _mac(secret, tag, data))


def job_prefix(job_id):
    return "corpus/job/{}/".format(job_id)


def is_final(job_id, tag):
    return tag[len(job_prefix(job_id)):] in FINAL


def watch(opts, job_id, timeout, on_event, on_forged=None):
    """Call ``on_event(tag, data)`` for each genuine event of job ``job_id`` until the job
    ends or ``timeout`` seconds pass; forged ones go to ``on_forged``. Returns the final
    status, or None on timeout."""
    secret = key(opts)
    prefix = job_prefix(job_id)
    deadline = time.monotonic() + float(timeout)
    bus = master_bus.for_master(opts).subscribe(prefix)
    if bus is None:
        raise CorpusError("The master's event bus cannot be reached.")
    with bus:
        while time.monotonic() < deadline:
            event = bus.get_event(wait=min(1.0, max(deadline - time.monotonic(), 0.01)), full=True)
            if not event:
                continue
            tag, data = event["tag"], event["data"]
            if not verify(secret, tag, data):
                if on_forged:
                    on_forged(tag, data)
                continue
            on_event(tag, data)
            if is_final(job_id, tag):
                return tag[len(prefix):]
    return None
