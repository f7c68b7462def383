"""The node's HTTP reverse proxy: haproxy routing by Host header to containers.

The routes live in ``<state_dir>/routes.json`` (``{domain: {"address", "port"}}``); the
proxy's own settings (port, bind address) in ``<state_dir>/proxy.json``. ``haproxy.cfg`` is
generated from them, checked with ``haproxy -c`` before it replaces the live one, and haproxy
is reloaded with ``-sf``: the new process takes the port while the old one finishes its
connections, so other routes keep serving. A Host that matches no route gets haproxy's 503.
haproxy runs as a daemon with its pid file in the state dir (no systemd needed).
"""

import ipaddress
import json
import os
import re
import time

import psutil

from mc_project.errors import CorpusError
from mc_project.node.shell import file_lock, run

DEFAULT_STATE_DIR = "/var/lib/corpus/node"
DEFAULT_HTTP_PORT = 80
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)

CONFIG_HEAD = """# Written by corpus from routes.json and proxy.json: change routes with mc_lxc.add_route.
global
    daemon
    pidfile {pidfile}
    maxconn 4096

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s

frontend corpus_http
    bind {bind}:{port}
    # The Host header without its port, lower-cased: what the routes match.
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
"""


def paths(state_dir):
    return {
        name: os.path.join(state_dir, name)
        for name in ("routes.json", "proxy.json", "haproxy.cfg", "haproxy.pid", ".proxy.lock")
    }


def check_domain(domain):
    domain = domain.lower().rstrip(".") if isinstance(domain, str) else domain
    if not isinstance(domain, str) or not DOMAIN_RE.match(domain):
        raise CorpusError("{!r} is not a domain name.".format(domain))
    return domain


def render_config(routes, http_port, pidfile, bind=""):
    """haproxy.cfg for ``routes`` ({domain: {address, port}}).

    A route serves its domain and every name under it; the most specific domain is tried
    first, so ``api.app.test`` can go elsewhere than ``*.app.test``.
    """
    text = CONFIG_HEAD.format(pidfile=pidfile, bind=bind, port=http_port)
    ordered = sorted(routes, key=lambda d: (-d.count("."), d))
    for domain in ordered:
        text += (
            "    acl host_{d} var(txn.host) -m str {d}\n"
            "    acl host_{d} var(txn.host) -m end .{d}\n"
            "    use_backend route_{d} if host_{d}\n"
        ).format(d=domain)
    for domain in ordered:
        route = routes[domain]
        text += "\nbackend route_{}\n    server container {}:{}\n".format(
            domain, route["address"], route["port"]
        )
    return text


def locked(state_dir):
    """Routes change one at a time: each change reads, rewrites and reloads the whole config."""
    return file_lock(paths(state_dir)[".proxy.lock"])


def read_json(path, default):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default
    except ValueError:
        raise CorpusError("{} is not valid JSON.".format(path)) from None


def write_json(path, data):
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def running_pid(state_dir):
    """The pid of this state dir's haproxy if it runs, else None."""
    try:
        with open(paths(state_dir)["haproxy.pid"], encoding="ascii") as fh:
            pid = int(fh.read().split()[0])
        with open("/proc/{}/cmdline".format(pid), "rb") as fh:
            cmdline = fh.read().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if paths(state_dir)["haproxy.cfg"].encode() in cmdline else None


def apply(state_dir, routes, settings):
    """Check the config for ``routes``, then make it live (start or reload haproxy).
    A config haproxy refuses changes nothing."""
    files = paths(state_dir)
    text = render_config(routes, settings["http_port"], files["haproxy.pid"], settings.get("bind", ""))
    candidate = files["haproxy.cfg"] + ".new"
    with open(candidate, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        run(["haproxy", "-c", "-q", "-f", candidate], "Checking the proxy configuration")
    except CorpusError:
        os.unlink(candidate)
        raise
    os.replace(candidate, files["haproxy.cfg"])
    write_json(files["routes.json"], routes)
    write_json(files["proxy.json"], settings)
    old = running_pid(state_dir)
    command = ["haproxy", "-f", files["haproxy.cfg"]]
    if old:
        command += ["-sf", str(old)]
    run(
        command,
        "Reloading the proxy" if old else "Starting the proxy on port {}".format(settings["http_port"]),
    )
    wait_for_new_pid(state_dir, old)
    if old:
        wait_until_not_listening(old)


def wait_for_new_pid(state_dir, old, wait=10):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pid = running_pid(state_dir)
        if pid and pid != old:
            return pid
        time.sleep(0.05)
    raise CorpusError("The proxy did not start: see {}.".format(paths(state_dir)["haproxy.cfg"]))


def wait_until_not_listening(pid, wait=10):
    """The old haproxy, told by ``-sf`` to stop, closes its listener a moment after the new
    one has started: until then it still takes connections, with the old routes. A change
    of route is live once it has (the old process may go on finishing its connections)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            listening = [c for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return
        if not listening:
            return
        time.sleep(0.02)
    raise CorpusError("The old proxy process {} still listens {} s after its reload.".format(pid, wait))


def setup(http_port=DEFAULT_HTTP_PORT, state_dir=DEFAULT_STATE_DIR, bind=""):
    """haproxy running on ``http_port`` with the saved routes. Idempotent: a running proxy
    with the same settings is left alone."""
    try:
        http_port = int(http_port)
    except (TypeError, ValueError):
        raise CorpusError("{!r} is not a port.".format(http_port)) from None
    if not 0 < http_port < 65536:
        raise CorpusError("{} is not a port (1-65535).".format(http_port))
    settings = {"http_port": http_port, "bind": bind or ""}
    with locked(state_dir):
        files = paths(state_dir)
        if running_pid(state_dir) and read_json(files["proxy.json"], {}) == settings:
            return {"http_port": http_port, "changed": False}
        apply(state_dir, read_json(files["routes.json"], {}), settings)
    return {"http_port": http_port, "changed": True}


def settings_of(state_dir):
    settings = read_json(paths(state_dir)["proxy.json"], None)
    if settings is None:
        raise CorpusError(
            "The node's proxy is not set up in {}: run mc_lxc.setup_node first.".format(state_dir)
        )
    return settings


def add_route(domain, address, port, state_dir=DEFAULT_STATE_DIR):
    """Route Host ``domain`` and ``*.domain`` to ``address:port``; the same route again is fine,
    and a new target for a routed domain replaces the old one."""
    domain = check_domain(domain)
    try:
        address = str(ipaddress.IPv4Address(address))
        port = int(port)
    except (TypeError, ValueError):
        raise CorpusError("{!r}:{!r} is not an IPv4 address and port.".format(address, port)) from None
    if not 0 < port < 65536:
        raise CorpusError("{} is not a port (1-65535).".format(port))
    with locked(state_dir):
        settings = settings_of(state_dir)
        routes = read_json(paths(state_dir)["routes.json"], {})
        route = {"address": address, "port": port}
        if routes.get(domain) == route and running_pid(state_dir):
            return {"domain": domain, "address": address, "port": port, "changed": False}
        routes[domain] = route
        apply(state_dir, routes, settings)
    return {"domain": domain, "address": address, "port": port, "changed": True}


def remove_route(domain, state_dir=DEFAULT_STATE_DIR):
    """Stop routing ``domain``; an unknown domain is fine."""
    domain = check_domain(domain)
    with locked(state_dir):
        routes = read_json(paths(state_dir)["routes.json"], {})
        if domain not in routes:
            return {"domain": domain, "changed": False}
        del routes[domain]
        apply(state_dir, routes, settings_of(state_dir))
    return {"domain": domain, "changed": True}


def routes(state_dir=DEFAULT_STATE_DIR):
    """``[{domain, address, port}]``, by domain."""
    saved = read_json(paths(state_dir)["routes.json"], {})
    return [dict(saved[domain], domain=domain) for domain in sorted(saved)]


def stop(state_dir=DEFAULT_STATE_DIR):
    """Stop this state dir's haproxy (its routes stay saved)."""
    pid = running_pid(state_dir)
    if pid:
        os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while running_pid(state_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
    return {"stopped": bool(pid)}
