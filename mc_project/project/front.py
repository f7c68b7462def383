"""The project's front: an haproxy that owns the project's public port.

Each release runs in a *slot* (``a`` or ``b``) on a loopback port of its own; the front
forwards HTTP to the live slot. A deploy starts the new release in the idle slot,
checks it there, then moves traffic with haproxy's runtime API in one command line
(``set server web/b state ready; set server web/a state drain``): no reload, no
closed listening socket, the clients' keep-alive connections stay with haproxy, and
requests already sent to the old slot finish there. haproxy retries a request whose
connection failed (``retry-on conn-failure``), so a slot that dies between two
requests costs a retry, not an error.

``haproxy.cfg`` is rewritten after each move so that a restarted front (a reboot, a
crash) comes back serving the live slot; the runtime state is the truth while it
runs. The runtime socket lives in the project's private socket directory (0700).
"""

import os
import shutil
import socket
import time

from mc_project.errors import CorpusError
from mc_project.project import rundir

SLOTS = ("a", "b")
BACKEND = "web"
FRONTEND = "app"


def other(slot):
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


def haproxy_bin():
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.path.exists(p)), None)
    if not found:
        raise CorpusError("haproxy is not installed; corpus's front needs it (apt-get install haproxy).")
    return found


def socket_path(cfg):
    return os.path.join(rundir.socket_dir(os.path.join(cfg["paths"]["supervisor"], "run"),
                                          cfg["paths"]["root"]), "front.sock")


def conf_path(cfg):
    return os.path.join(cfg["paths"]["supervisor"], "haproxy.cfg")


def render(cfg, live, user=None):
    """haproxy.cfg for ``live`` = {"slot", "port"} (or None: no slot serves yet).

    Every value written here is corpus's own (paths, addresses, ports, a validated
    user name): nothing a pillar holds as free text reaches this file."""
    lines = [
        "# written by corpus for project {}".format(cfg["name"]),
        "global",
        "    stats socket {} mode 600 level admin".format(socket_path(cfg)),
    ]
    if user:
        lines += ["    user {}".format(user), "    group {}".format(user)]
    lines += [
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 300s",
        "    timeout server 300s",
        "    timeout http-keep-alive 10s",
        "    option redispatch 1",
        "    retries 5",
        "    retry-on conn-failure empty-response",
        "frontend {}".format(FRONTEND),
        "    bind {}:{}".format(_bracket(cfg["bind"]), int(cfg["port"])),
        "    default_backend {}".format(BACKEND),
        "backend {}".format(BACKEND),
    ]
    for slot in SLOTS:
        port = live["port"] if live and live["slot"] == slot else (live or {}).get("port", 1)
        disabled = "" if live and live["slot"] == slot else " disabled"
        lines.append("    server {} 127.0.0.1:{}{}".format(slot, int(port), disabled))
    return "\n".join(lines) + "\n"


def _bracket(address):
    return "[{}]".format(address) if ":" in address else address


def write_conf(cfg, live, user=None):
    path = conf_path(cfg)
    text = render(cfg, live, user)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def command(cfg):
    """The front's command line (run in the foreground under the project's supervisord)."""
    return [haproxy_bin(), "-db", "-f", conf_path(cfg)]


def api(cfg, line, timeout=5.0):
    """Send one line to the runtime API; its answer (haproxy closes after answering)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path(cfg))
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except OSError as exc:
        raise CorpusError("The front of {} does not answer on {}: {}.".format(
            cfg["name"], socket_path(cfg), exc)) from None
    finally:
        sock.close()
    return b"".join(chunks).decode(errors="replace")


def is_up(cfg):
    try:
        api(cfg, "show info", timeout=1.0)
    except CorpusError:
        return False
    return True


def wait_up(cfg, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not is_up(cfg):
        if time.monotonic() > deadline:
            raise CorpusError("The front (haproxy) of {} did not start within {:.0f}s; see {}.".format(
                cfg["name"], timeout, os.path.join(cfg["paths"]["logs"], "front.log")))
        time.sleep(0.05)


def _stats(cfg):
    """``show stat`` as a list of dicts (one per proxy / server)."""
    text = api(cfg, "show stat")
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows or not rows[0].startswith("# "):
        raise CorpusError("The front of {} gave unexpected stats: {!r}.".format(cfg["name"], text[:200]))
    header = rows[0][2:].split(",")
    return [dict(zip(header, row.split(","))) for row in rows[1:]]


def requests_served(cfg):
    """HTTP requests the front has taken since it started (None when it is down)."""
    try:
        for row in _stats(cfg):
            if row.get("pxname") == FRONTEND and row.get("svname") == "FRONTEND":
                return int(row.get("req_tot") or 0)
    except CorpusError:
        return None
    return None


def in_flight(cfg, slot):
    """Requests the front has in progress on ``slot`` right now."""
    for row in _stats(cfg):
        if row.get("pxname") == BACKEND and row.get("svname") == slot:
            return int(row.get("scur") or 0)
    return 0


def serving_slot(cfg):
    """The slot traffic goes to according to the running front, or None."""
    try:
        rows = _stats(cfg)
    except CorpusError:
        return None
    for row in rows:
        if row.get("pxname") == BACKEND and row.get("svname") in SLOTS and \
                row.get("status", "").startswith("UP"):
            return row["svname"]
    return None


def move_traffic(cfg, slot, port, old_slot):
    """Send new requests to ``slot`` (on ``port``) and none to ``old_slot``, in one line."""
    cmds = ["set server {}/{} addr 127.0.0.1 port {}".format(BACKEND, slot, int(port)),
            "set server {}/{} state ready".format(BACKEND, slot)]
    if old_slot:
        cmds.append("set server {}/{} state drain".format(BACKEND, old_slot))
    answer = api(cfg, "; ".join(cmds))
    bad = [line for line in answer.splitlines() if line.strip() and "changed" not in line.lower()
           and "no need to change" not in line.lower()]
    if bad:
        raise CorpusError("The front of {} refused to move traffic: {}.".format(cfg["name"], " ".join(bad)))


def disable(cfg, slot):
    """No request at all to ``slot`` (its process is about to stop)."""
    api(cfg, "set server {}/{} state maint".format(BACKEND, slot))


def drain(cfg, slot, timeout):
    """Wait until ``slot`` has no request in flight (at most ``timeout`` s); True if drained."""
    deadline = time.monotonic() + float(timeout)
    while True:
        if in_flight(cfg, slot) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
