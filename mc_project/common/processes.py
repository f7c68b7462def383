"""The daemons corpus starts and finds again by their pid files."""

import time

import psutil


def running_process(pidfile, marker):
    """The live process whose pid ``pidfile`` holds, if its command line mentions
    ``marker`` (a pid file outlives its process, and pids are reused); else None."""
    try:
        with open(pidfile, encoding="utf-8") as fh:
            process = psutil.Process(int(fh.read().strip()))
        if process.is_running() and process.status() != psutil.STATUS_ZOMBIE and any(
                marker in part for part in process.cmdline()):
            return process
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def identity(pid):
    """``{"pid", "created"}`` of a live process (its start time tells it from a later
    process given the same pid), or None when it is gone."""
    try:
        return {"pid": int(pid), "created": psutil.Process(int(pid)).create_time()}
    except (ValueError, psutil.Error):
        return None


def is_alive(ident):
    """Whether the process ``identity`` described still runs (the same one, not a reuse of its pid)."""
    if not ident:
        return False
    try:
        process = psutil.Process(ident["pid"])
        return process.create_time() == ident["created"] and process.status() != psutil.STATUS_ZOMBIE
    except (KeyError, TypeError, psutil.Error):
        return False


def _gone(process):
    """Ended: no such process, or a zombie its parent has not reaped yet (a process that is not
    our child cannot be waited for; ``psutil.wait`` would wait for the reaping)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop(process, timeout):
    """End ``process`` (a ``psutil.Process``): SIGTERM, then SIGKILL after ``timeout`` seconds;
    whether it ended."""
    for signal_it in (process.terminate, process.kill):
        try:
            signal_it()
        except psutil.NoSuchProcess:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(process):
                return True
            time.sleep(0.05)
    return _gone(process)
