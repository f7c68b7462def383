"""The daemons corpus starts and finds again by their pid files."""

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
