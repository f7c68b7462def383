"""Job events: signed by the controller, anything else refused."""

import os

from mc_project.controller import events


def test_signed_events_verify_and_forged_or_altered_ones_do_not(tmp_path):
    opts = {"cachedir": str(tmp_path)}
    secret = events.key(opts)
    assert events.key(opts) == secret  # made once, then read
    assert oct(os.stat(tmp_path / events.KEY_FILE).st_mode & 0o777) == "0o600"
    tag, data = "corpus/job/7/success", {"job": 7, "status": "success", "error": None}
    signed = events.sign(secret, tag, data)
    # Salt adds its own keys to what it fires: they do not break the signature.
    assert events.verify(secret, tag, dict(signed, _stamp="2026-12-01T00:00:00"))
    assert not events.verify(secret, tag, data)  # unsigned, as a minion would fire it
    assert not events.verify(secret, "corpus/job/8/success", signed)  # replayed for another job
    assert not events.verify(secret, tag, dict(signed, status="failed"))  # altered
    assert not events.verify(b"another key", tag, signed)
    assert not events.verify(secret, tag, "not a mapping")
    assert events.is_final(7, tag) and not events.is_final(7, "corpus/job/7/step/1/success")
