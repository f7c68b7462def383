"""The ``corpus-api`` process beside a controller's salt-master: start, find, stop.

``corpus-controller init`` starts it (``<root>/var/run/corpus-api.pid``, log in
``<root>/var/log/corpus/api.log``) and waits for ``/v1/health``; ``status``
reports it; ``stop`` stops it.
"""

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

import psutil

from mc_project.common.ports import port_in_use
from mc_project.common.processes import running_process
from mc_project.errors import CorpusError

PIDFILE = os.path.join("var", "run", "corpus-api.pid")
LOG_FILE = os.path.join("var", "log", "corpus", "api.log")
START_TIMEOUT = 60
STOP_TIMEOUT = 15


def pidfile(root):
    return os.path.join(root, PIDFILE)


def log_file(root):
    return os.path.join(root, LOG_FILE)


def running(root):
    """The running ``corpus-api`` of ``root`` (a ``psutil.Process``), or None."""
    return running_process(pidfile(root), "mc_project.api.server")


def base_url(settings):
    host = settings["bind"]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = "[{}]".format(host)
    return "{}://{}:{}".format("https" if settings["tls_cert"] else "http", host, settings["port"])


def healthy(settings, timeout=2):
    context = ssl._create_unverified_context() if settings["tls_cert"] else None  # our own certificate
    try:
        with urllib.request.urlopen(base_url(settings) + "/v1/health", timeout=timeout, context=context) as answer:
            return answer.status == 200
    except (OSError, ValueError):
        return False


def port_taken(settings):
    return port_in_use(settings["bind"], settings["port"])


def start(root, config_path, settings):
    """Start ``corpus-api`` for the master configuration ``config_path``; its pid once it answers."""
    os.makedirs(os.path.dirname(log_file(root)), exist_ok=True)
    os.makedirs(os.path.dirname(pidfile(root)), exist_ok=True)
    with open(log_file(root), "ab") as log:
        os.chmod(log_file(root), 0o600)
        process = subprocess.Popen([sys.executable, "-m", "mc_project.api.server", "--config", config_path],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    with open(pidfile(root), "w", encoding="utf-8") as fh:
        fh.write("{}\n".format(process.pid))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CorpusError("corpus-api did not start: {}.".format(_last_line(log_file(root))))
        if healthy(settings):
            return process.pid
        time.sleep(0.2)
    stop(root)
    raise CorpusError("corpus-api did not answer within {} s; see {}.".format(START_TIMEOUT, log_file(root)))


def stop(root):
    """Stop ``root``'s ``corpus-api``; whether one was running."""
    process = running(root)
    if process is None:
        return False
    try:
        process.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([process], timeout=STOP_TIMEOUT)
        for leftover in alive:
            leftover.kill()
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied as exc:
        raise CorpusError("corpus-api of {} (pid {}) belongs to another user; stop it as that user.".format(
            root, process.pid)) from exc
    try:
        os.unlink(pidfile(root))
    except FileNotFoundError:
        pass
    return True


def _last_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh if line.strip()]
    except OSError:
        lines = []
    return lines[-1].rstrip(".") if lines else "no output"
