"""The checks a minion runs: HTTP, TCP and script (Nagios plugin exit codes).

``run(spec)`` takes one check as the pillar gives it (``kind``, ``params``,
``timeout``) and returns ``{"state", "output", "duration"}``, never raising: a
check that cannot even be run is UNKNOWN with the reason as its output. A TTL
check is not run anywhere: the service pushes its passes to the controller.
"""

import datetime
import re
import shlex
import socket
import ssl
import subprocess
import time
import urllib.parse

import requests

OK, WARNING, CRITICAL, UNKNOWN = "OK", "WARNING", "CRITICAL", "UNKNOWN"
# A Nagios plugin's exit status; anything else is UNKNOWN.
EXIT_STATES = {0: OK, 1: WARNING, 2: CRITICAL, 3: UNKNOWN}
# What is kept of a script's output (a plugin's first line is its summary).
MAX_OUTPUT = 4096
RUN_KINDS = ("http", "tcp", "script")


def _status_ok(status, expected):
    if expected is None:
        return 200 <= status < 400
    if isinstance(expected, (list, tuple)):
        return status in [int(code) for code in expected]
    return status == int(expected)


def tls_days_left(host, port, timeout):
    """Days until the certificate ``host:port`` presents expires (unverified: an expired
    or self-signed one must still be read to be reported)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400


def check_http(params, timeout):
    """GET ``url``: CRITICAL unless the status is ``status`` (default 2xx/3xx) and the
    body matches ``body`` (a regular expression); WARNING when the TLS certificate
    expires within ``tls_days`` days, CRITICAL when it has."""
    url = params.get("url")
    if not url:
        return UNKNOWN, "An HTTP check needs a url."
    try:
        # requests, not httpx: a container's wheelhouse has the base dependencies only.
        answer = requests.get(url, timeout=timeout, allow_redirects=False, verify=bool(params.get("verify", True)))
    except requests.RequestException as exc:
        return CRITICAL, "{}: {}".format(url, " ".join(str(exc).split()) or type(exc).__name__)
    if not _status_ok(answer.status_code, params.get("status")):
        return CRITICAL, "{} answered {}".format(url, answer.status_code)
    pattern = params.get("body")
    if pattern and not re.search(pattern, answer.text):
        return CRITICAL, "{} answered {} without {!r} in its body".format(url, answer.status_code, pattern)
    found = "{} answered {}".format(url, answer.status_code)
    tls_days = params.get("tls_days")
    parsed = urllib.parse.urlsplit(url)
    if tls_days is not None and parsed.scheme == "https":
        try:
            left = tls_days_left(parsed.hostname, parsed.port or 443, timeout)
        except (OSError, ValueError) as exc:
            return UNKNOWN, "{}; its certificate could not be read: {}".format(found, exc)
        if left <= 0:
            return CRITICAL, "{}; its certificate has expired".format(found)
        if left < float(tls_days):
            return WARNING, "{}; its certificate expires in {:.0f} days".format(found, left)
        found += "; its certificate expires in {:.0f} days".format(left)
    return OK, found


def check_tcp(params, timeout):
    """Connect to ``host``:``port``: OK if it accepts, CRITICAL otherwise."""
    host, port = params.get("host") or "127.0.0.1", params.get("port")
    if not port:
        return UNKNOWN, "A TCP check needs a port."
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        return CRITICAL, "{}:{} refused the connection: {}".format(host, port, exc.strerror or exc)
    return OK, "{}:{} accepts connections".format(host, port)


def check_script(params, timeout):
    """Run ``command`` (a list, or a string split as a shell would, run without one):
    its exit status is the state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), its output kept."""
    command = params.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    if not command:
        return UNKNOWN, "A script check needs a command."
    try:
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return UNKNOWN, "{} did not end within {} s".format(command[0], timeout)
    except OSError as exc:
        return UNKNOWN, "{} could not be run: {}".format(command[0], exc.strerror or exc)
    output = (done.stdout or done.stderr or "").strip()[:MAX_OUTPUT]
    return EXIT_STATES.get(done.returncode, UNKNOWN), output


RUNNERS = {"http": check_http, "tcp": check_tcp, "script": check_script}


def run(spec):
    """Run one check ``{"kind", "params", "timeout"}``: ``{"state", "output", "duration"}``."""
    kind = (spec or {}).get("kind")
    started = time.monotonic()
    runner = RUNNERS.get(kind)
    if runner is None:
        state, output = UNKNOWN, "No check of kind {!r} runs on a minion.".format(kind)
    else:
        try:
            timeout = float(spec.get("timeout") or 10)
            state, output = runner(spec.get("params") or {}, timeout)
        except Exception as exc:  # pylint: disable=broad-except
            # A malformed parameter must be reported as the check's state, not kill the schedule.
            state, output = UNKNOWN, "The check could not run: {}: {}".format(type(exc).__name__, exc)
    return {"state": state, "output": output, "duration": round(time.monotonic() - started, 3)}
