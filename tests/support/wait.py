"""Bounded waits: a test polls for what it expects and fails with what it waited for."""

import socket
import time

WAIT = 90  # seconds: a generous bound on a deploy reaching a point a test waits for


def wait_for(predicate, timeout=WAIT, what="condition", interval=0.05):
    """``predicate()``'s first true value; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after {}s waiting for {}".format(timeout, what))


def wait_port(address, port, timeout=20):
    """Return once ``address:port`` accepts a TCP connection; the last OSError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
