"""(w) a site walk: one node's front (a real haproxy from ``mc_project.node.proxy``'s
configuration, when haproxy is installed) routing 20 domains to 20 backends, each a
real HTTP server on its own loopback address that takes 50 ms to answer its health
path. The walk is run as the API runs it (targets read from an SQLite inventory, the
walk recorded as a job), goal < 1 s; the baseline is the same targets asked one after
the other, in the same run.
"""

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import fmt_ratio, fmt_seconds, median, ratio, table
from sqlalchemy import select

from mc_project.health import walk_runs, walks  # noqa: E402  (harness put the repo on sys.path)
from mc_project.inventory import db, fleet  # noqa: E402
from mc_project.inventory.fleet_models import Host  # noqa: E402
from mc_project.inventory.models import ComputeNode, Environment, Tenant  # noqa: E402
from mc_project.node import proxy  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

BACKENDS = 20
DELAY = 0.05
ROUNDS = 5
HAPROXY_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class _Slow(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        time.sleep(DELAY)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # haproxy closing a kept-alive connection is no error of the bench


def _serve(address):
    server = _Server((address, 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Controller:
    """What a walk needs of a controller: the inventory's URL and an event sink."""

    def __init__(self, url):
        self.url = url

    def fire(self, tag, data):
        pass


def _front(root, routes):
    """A real haproxy routing ``routes``; ``(process, port)`` or ``(None, None)``."""
    haproxy = shutil.which("haproxy", path=HAPROXY_SEARCH)
    if haproxy is None:
        return None, None
    from support.ports import free_port
    port = free_port()
    config = os.path.join(root, "haproxy.cfg")
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(proxy.render_config(routes, port, os.path.join(root, "haproxy.pid"), bind="127.0.0.1"))
    process = subprocess.Popen([haproxy, "-db", "-f", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get("http://127.0.0.1:{}/".format(port), timeout=1)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    return None, None


def bench_walks(section, out, notes, quick=False):
    section("w")
    root = tempfile.mkdtemp(prefix="corpus-bench-walk-")
    servers = [_serve("127.0.0.{}".format(number + 2)) for number in range(BACKENDS)]
    domains = ["app{}.site.test".format(number) for number in range(BACKENDS)]
    routes = {domain: {"address": server.server_address[0], "port": server.server_address[1]}
              for domain, server in zip(domains, servers)}
    front, front_port = _front(root, routes)
    if front is None:
        notes.append("(w) haproxy not found: the fronts are not walked, only the 20 backends")
    url = "sqlite:///" + os.path.join(root, "inventory.sqlite")
    try:
        db.init(url)
        with db.session(url) as sess:
            tenant = Tenant(name="bench")
            sess.add(tenant)
            sess.flush()
            node = ComputeNode(name="front1", address="127.0.0.1", http_port=front_port or 9, slots=BACKENDS,
                               tenant_id=tenant.id)
            sess.add(node)
            sess.flush()
            for number, (domain, server) in enumerate(zip(domains, servers)):
                sess.add(Environment(name="env{}".format(number), tenant_id=tenant.id, node_id=node.id,
                                     ip=server.server_address[0], status="active",
                                     domains=[domain] if front is not None else []))
            sess.flush()
            for number, server in enumerate(servers):
                host_id = sess.scalar(select(Host.id).where(Host.name == "env{}".format(number)))
                fleet.set_variables(sess, None, "bench", tenant.id, "host", host_id, None,
                                    {"app_port": server.server_address[1]})
            tenant_id = tenant.id
        ctl = _Controller(url)
        rounds = 1 if quick else ROUNDS
        walked, records = [], []
        for _ in range(rounds):
            started = time.monotonic()
            records.append(walk_runs.walk_now(ctl, "front1", [tenant_id]))
            walked.append(time.monotonic() - started)
        targets = walk_runs.prepare(url, "front1", [tenant_id])["targets"]
        sequential = []
        for _ in range(rounds):
            started = time.monotonic()
            results = walks.walk_one_by_one(targets)
            sequential.append(time.monotonic() - started)
        failed = sum(record["failed"] for record in records) + sum(not result["ok"] for result in results)
        walk_time, base_time = median(walked), median(sequential)
        table(["", "targets", "median", "best"], [
            ["site walk (all targets at once, inventory + job)", len(targets), fmt_seconds(walk_time),
             fmt_seconds(min(walked))],
            ["baseline: one target after another", len(targets), fmt_seconds(base_time),
             fmt_seconds(min(sequential))],
        ], out=out)
        out("walk / baseline: {} ; goal: a site with {} backends walked in < 1 s: {} ({} targets failed)".format(
            fmt_ratio(ratio(walk_time, base_time)), BACKENDS, "met" if walk_time < 1 else "NOT met", failed))
    finally:
        db.dispose()
        if front is not None:
            front.terminate()
            front.wait(10)
        for server in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)
