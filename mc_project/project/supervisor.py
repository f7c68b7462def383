"""The project's processes: one supervisord per project running the front and the slots.

Programs: ``front`` (haproxy, see ``front.py``) and ``web-a`` / ``web-b``, one per
slot. Outside a deploy only the live slot runs; a deploy adds the idle slot beside it
and, once traffic has moved, removes the old one. ``state.json`` says which slot is
live (slot, port, tree) and which one stands by (being brought up, or draining); supervisord.conf and
haproxy.cfg are written from it, so a supervisord started at boot runs the front and
the live slot only.

supervisord.conf is written with ``configparser`` and holds only corpus's own values
(paths, ports). The app's command and environment (its secrets) are in one JSON file
per slot (0600, owner root or the deploying user) that ``launch.py`` reads before it
drops to the project user and execs the command: no pillar value can add a section
or an option to a config file. supervisord is driven over its XML-RPC socket, which
lives in a private directory (0700).
"""

import configparser
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

from mc_project.errors import CorpusError
from mc_project.project import database, files, front, procfile, rundir, users

STATE = "state.json"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FATAL_STATES = ("FATAL", "EXITED", "BACKOFF", "STOPPED")


def _bin(name):
    """supervisord next to the running Python (the corpus venv)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def conf_path(cfg):
    return os.path.join(cfg["paths"]["supervisor"], "supervisord.conf")


def socket_path(cfg):
    return os.path.join(rundir.socket_dir(os.path.join(cfg["paths"]["supervisor"], "run"),
                                          cfg["paths"]["root"]), "supervisor.sock")


def program(slot, kind="web"):
    return "{}-{}".format(kind, slot)


def slot_programs(entry):
    return [program(entry["slot"], kind) for kind in entry.get("processes") or ["web"]]


def web_log(cfg):
    return os.path.join(cfg["paths"]["logs"], "web.log")


def spec_path(cfg, name):
    return os.path.join(cfg["paths"]["supervisor"], "{}.json".format(name))


# --------------------------------------------------------------------------- state

def load_state(cfg):
    path = os.path.join(cfg["paths"]["supervisor"], STATE)
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        state = {}
    return {"live": state.get("live"), "standby": state.get("standby")}


def save_state(cfg, state):
    files.write_private(os.path.join(cfg["paths"]["supervisor"], STATE), json.dumps(state, indent=1))


# --------------------------------------------------------------------------- the app's command

def app_environment(cfg, tree, port):
    """The variables the app gets: the settings' ``environment`` and the platform's own."""
    env = {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
           for k, v in (cfg.get("environment") or {}).items()}
    # The system's PATH, not corpus's own environment (the app may run as a user who
    # cannot enter it); the app's virtualenv first when it has one.
    path = [SYSTEM_PATH]
    for bindir in (os.path.join(tree, "node_modules", ".bin"), os.path.join(tree, ".venv", "bin")):
        if os.path.isdir(bindir):
            path.insert(0, bindir)
    env.update({
        "PORT": str(port),
        "HOST": "127.0.0.1",  # the slot answers the front only; the front binds ``bind``
        "CORPUS_PROJECT": cfg["name"],
        "CORPUS_ENV": cfg["env"],
        "CORPUS_DATA": cfg["paths"]["data"],
        # SQLite under data/ by default, or the project's own PostgreSQL database: it is
        # dumped before each deploy and rolls back with the code (database.py).
        "DATABASE_URL": database.url(cfg),
        "PATH": ":".join(path),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    })
    return env


def write_spec(cfg, name, tree, command, port):
    """The launch spec of program ``name``: what ``launch.py`` reads (0600)."""
    spec = {"command": command, "cwd": tree, "user": users.run_as(cfg),
            "home": cfg["paths"]["data"], "env": app_environment(cfg, tree, port)}
    path = spec_path(cfg, name)
    files.write_private(path, json.dumps(spec, indent=1))
    return path


def write_slot_specs(cfg, slot, tree, port):
    """One spec per process of the release in ``tree`` (``web`` gets the slot's port);
    returns the process types."""
    kinds = procfile.processes(cfg, tree)
    for kind, command in kinds.items():
        write_spec(cfg, program(slot, kind), tree, command, port)
    return list(kinds)


# --------------------------------------------------------------------------- supervisord.conf

def render_conf(cfg, programs):
    """supervisord.conf running the front and ``programs``."""
    def q(value):  # supervisord expands %(name)s in values
        return str(value).replace("%", "%%")

    sock = socket_path(cfg)
    parser = configparser.RawConfigParser()
    parser["unix_http_server"] = {"file": q(sock), "chmod": "0700"}
    parser["supervisord"] = {
        "logfile": q(os.path.join(cfg["paths"]["logs"], "supervisord.log")),
        "pidfile": q(os.path.join(os.path.dirname(sock), "supervisord.pid")),
        "directory": q(cfg["paths"]["root"]),
        "umask": "077",
    }
    parser["rpcinterface:supervisor"] = {
        "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"}
    parser["supervisorctl"] = {"serverurl": q("unix://" + sock)}
    parser["program:front"] = {
        "command": q(" ".join(front.command(cfg))),
        "autostart": "true", "autorestart": "true", "startsecs": "0",
        # SIGUSR1: haproxy's soft stop finishes the requests in flight.
        "stopsignal": "USR1", "stopwaitsecs": "30",
        "redirect_stderr": "true",
        "stdout_logfile": q(os.path.join(cfg["paths"]["logs"], "front.log")),
    }
    for name in sorted(programs):
        parser["program:{}".format(name)] = {
            "command": q("{} -m mc_project.project.launch {}".format(sys.executable, spec_path(cfg, name))),
            "directory": q(cfg["paths"]["root"]),
            "autostart": "true", "autorestart": "true", "startsecs": "0",
            "stopasgroup": "true", "killasgroup": "true", "stopwaitsecs": "10",
            "redirect_stderr": "true",
            "stdout_logfile": q(web_log(cfg) if name.startswith("web-") else
                                os.path.join(cfg["paths"]["logs"], "{}.log".format(name.rsplit("-", 1)[0]))),
            "stdout_logfile_maxbytes": "0",
        }
    out = io.StringIO()
    out.write("; written by corpus for project {}\n".format(cfg["name"].replace("\n", " ")))
    parser.write(out)
    return out.getvalue()


def write_conf(cfg, state):
    for key in ("supervisor", "logs"):
        os.makedirs(cfg["paths"][key], exist_ok=True)
    programs = [name for entry in (state["live"], state["standby"]) if entry
                for name in slot_programs(entry)]
    front.write_conf(cfg, state["live"], user=users.front_user(cfg))
    files.write_private(conf_path(cfg), render_conf(cfg, programs))


# --------------------------------------------------------------------------- supervisord

def rpc(cfg):
    transport = SupervisorTransport(None, None, "unix://" + socket_path(cfg))
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def is_running(cfg):
    try:
        return rpc(cfg).getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error, CorpusError):
        return False


def _names(cfg):
    return {info["name"] for info in rpc(cfg).getAllProcessInfo()}


def ensure_running(cfg):
    """Start the project's supervisord unless it runs (one started by an older corpus,
    which ran the app on the public port itself, is replaced)."""
    if is_running(cfg):
        if "front" in _names(cfg):
            return
        shutdown(cfg)
    # umask 077 from the start: its own log and the programs' logs may echo secrets.
    proc = subprocess.run([_bin("supervisord"), "-c", conf_path(cfg)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=lambda: os.umask(0o077))
    if proc.returncode:
        raise CorpusError("supervisord did not start: {}".format(proc.stdout.strip()))
    deadline = time.monotonic() + 10
    while not is_running(cfg):
        if time.monotonic() > deadline:
            raise CorpusError("supervisord did not answer on {}.".format(socket_path(cfg)))
        time.sleep(0.05)


def apply(cfg, state):
    """Write the configs for ``state`` and make supervisord run exactly those programs:
    a program whose section is unchanged (the live slot, the front) is not touched."""
    write_conf(cfg, state)
    if not is_running(cfg):
        ensure_running(cfg)
        return
    server = rpc(cfg)
    added, changed, removed = server.reloadConfig()[0]
    for name in removed + changed:
        _stop(server, name)
        server.removeProcessGroup(name)
    for name in changed + added:
        server.addProcessGroup(name)
        _start(server, name)  # now, not at supervisord's next tick
    if "front" not in _names(cfg):
        ensure_running(cfg)


def _stop(server, name, timeout=15.0):
    """Stop ``name`` and return once it is down. supervisord's own wait answers at its
    next one-second tick; polling the process state answers as soon as it exited."""
    try:
        server.stopProcessGroup(name, False)
    except xmlrpc.client.Fault as fault:
        if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
            raise
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = {info["statename"] for info in server.getAllProcessInfo() if info["group"] == name}
        except xmlrpc.client.Fault:
            return
        if not states & {"STOPPING", "RUNNING", "STARTING", "BACKOFF"}:
            return
        time.sleep(0.02)


def _start(server, name):
    try:
        server.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" not in fault.faultString:
            raise


def process_state(cfg, slot):
    try:
        return rpc(cfg).getProcessInfo(program(slot))["statename"]
    except (OSError, xmlrpc.client.Error):
        return "ABSENT"


def restart_slot(cfg, entry):
    """Restart one slot's processes in place (used after its data was put back)."""
    server = rpc(cfg)
    for name in slot_programs(entry):
        _stop(server, name)
        _start(server, name)


def shutdown(cfg):
    """Stop every process of the project and its supervisord."""
    if not is_running(cfg):
        return
    try:
        rpc(cfg).shutdown()
    except (OSError, xmlrpc.client.Error):
        return
    deadline = time.monotonic() + 30
    while is_running(cfg) and time.monotonic() < deadline:
        time.sleep(0.1)
    while os.path.exists(socket_path(cfg)) and time.monotonic() < deadline:
        time.sleep(0.05)


def status(cfg):
    """'RUNNING', 'STARTING', … of the live slot, or 'not running'."""
    live = load_state(cfg)["live"]
    if not is_running(cfg) or not live:
        return "not running"
    return process_state(cfg, live["slot"])


# --------------------------------------------------------------------------- ports and checks

def free_port():
    """A loopback port nothing listens on now (the slot binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path, lines):
    """The last ``lines`` non-empty lines of a log file."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def public_address(cfg):
    """The address this host reaches the front at (a wildcard bind answers on loopback)."""
    import ipaddress

    return "127.0.0.1" if ipaddress.ip_address(cfg["bind"]).is_unspecified else cfg["bind"]


def app_url(cfg):
    return "http://{}:{}/".format(public_address(cfg), cfg["port"])


def slot_health_url(cfg, port):
    return "http://127.0.0.1:{}{}".format(port, cfg["health"].get("path", "/"))


def check_slot(cfg, slot, port):
    """Poll the slot's health URL until it answers the expected status; fail early,
    with the end of its log, when its process gave up."""
    url = slot_health_url(cfg, port)
    want = int(cfg["health"].get("status", 200))
    timeout = float(cfg["health"].get("timeout", 30))
    deadline = time.monotonic() + timeout
    last, delay = "no answer", 0.02
    while True:
        got = probe(url)
        if got == want:
            return url
        if isinstance(got, int):
            last = "HTTP {}".format(got)
        elif got:
            last = got
        state = process_state(cfg, slot)
        if state in FATAL_STATES or time.monotonic() >= deadline:
            why = "its process is {}".format(state) if state in FATAL_STATES else \
                "{} after {}s".format(last, timeout)
            raise CorpusError("Health check {} failed: {} (wanted HTTP {}); the end of {} says: {}".format(
                url, why, want, web_log(cfg), " | ".join(tail(web_log(cfg), 3)) or "nothing"))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def probe(url):
    """The HTTP status ``url`` answers, or a string saying why there is none."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
