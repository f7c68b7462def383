"""Bounded waits: a test polls for what it expects and fails with what it waited for."""

import socket
import threading
import time

import psutil

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


def process_ended(pid):
    """Whether process ``pid`` has ended: reaped, or a zombie. Asked in one call, because a
    zombie can be reaped between a first look and a second."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


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


def read_lines_until(proc, predicate, timeout=WAIT, what="output"):
    """The lines ``proc`` (text stdout pipe) writes, read as they come, up to the first
    for which ``predicate(lines so far)`` is true; AssertionError after ``timeout`` seconds.
    A test acts on what a program has shown, not after a sleep a busy machine outlasts."""
    lines, done = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if predicate(lines):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(timeout) or not predicate(lines):
        raise AssertionError("timed out after {}s waiting for {}; seen: {!r}".format(timeout, what, lines))
    return lines
