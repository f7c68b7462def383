"""(x) fleet health: 200 hosts running 10 checks every 30 s, reported to a real
salt-master and the health listener of a real ``corpus-api`` (started as
``corpus-controller init`` starts them) over an SQLite inventory.

A few hosts are real salt-minions running the real checks (HTTP, against 10 real
servers in this process) from their pillar's schedule; the others are simulated: each
has an accepted key of its own and publishes its results, signed with it, on the
master's event bus at the same rate (200 x 10 / 30 s = ~67 results a second).

Measured: event-to-state latency (a simulated result fired -> its state row updated,
seen by polling the inventory every 50 ms), goal p99 < 1 s; the CPU of the master (all
its processes), of ``corpus-api`` and of the machine over the run; and, one real
backend killed, the time to its checks' CRITICAL and to the webhook's message, in
check intervals (goal < 2). Baseline, in this process on the same inventory: the
listener's capacity recording one result per transaction (its former design) against
the results that wait on the bus recorded in one transaction.
"""

import getpass
import heapq
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import salt.config
import salt.utils.event
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from harness import BenchError, fmt_ratio, fmt_seconds, free_port, ratio, table

from mc_project.api import process as api_process  # noqa: E402  (harness put the repo on sys.path)
from mc_project.api import settings as api_settings  # noqa: E402
from mc_project.api.users import ensure_tenant  # noqa: E402
from mc_project.controller import cli  # noqa: E402
from mc_project.controller.runtime import Controller  # noqa: E402
from mc_project.health import definitions, listener, reports  # noqa: E402
from mc_project.inventory import db, fleet  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from support.http_backends import backend  # noqa: E402
from support.webhook import WebhookSink  # noqa: E402

# (hosts, real minions, checks per host, interval s, measured window s)
SIZES = {False: (200, 4, 10, 30, 60), True: (40, 2, 10, 10, 20)}
POLL = 0.05
CAPACITY_EVENTS = 1000
BATCH = 67  # what one second of this fleet brings


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def key_pair():
    """``(private PEM bytes, public PEM text, the key)``: a minion's ``minion.pem`` and
    ``minion.pub``, and the key loaded (a simulated host signs with it as it is)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return private, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode(), key


def fill(url, hosts, checks, interval, ports, hook_url):
    """Tenant bench, group fleet holding ``hosts``, checks web-0.. on it (each an HTTP check
    of one of the real servers ``ports``), a webhook handler on the group."""
    with db.session(url) as sess:
        tenant = ensure_tenant(sess, "bench").id
        fleet.create_group(sess, "bench", tenant, "fleet")
        for name in hosts:
            fleet.create_host(sess, "bench", tenant, {"name": name, "minion_id": name, "groups": ["fleet"]})
        for number in range(checks):
            definitions.create_check(sess, tenant, "web-{}".format(number), "http", group="fleet",
                                     params={"url": "http://127.0.0.1:{}/health".format(ports[number])},
                                     interval=interval, timeout=2, retries=0)
        definitions.create_handler(sess, tenant, "pager", "webhook", hook_url, group="fleet")


def start_minion(root, minion_id, private, public, master_opts):
    """A real salt-minion ``minion_id`` with the key pair given (accepted already); its process."""
    home = os.path.join(root, "minions", minion_id)
    pki = os.path.join(home, "pki")
    os.makedirs(pki, mode=0o700)
    with open(os.path.join(pki, "minion.pem"), "wb") as fh:
        fh.write(private)
    os.chmod(os.path.join(pki, "minion.pem"), 0o400)
    with open(os.path.join(pki, "minion.pub"), "w", encoding="utf-8") as fh:
        fh.write(public)
    config = {"id": minion_id, "master": "127.0.0.1", "master_port": master_opts["ret_port"],
              "publish_port": master_opts["publish_port"], "root_dir": home, "pki_dir": pki,
              "cachedir": os.path.join(home, "cache"), "sock_dir": os.path.join(home, "sock"),
              "pidfile": os.path.join(home, "minion.pid"), "log_file": os.path.join(home, "minion.log"),
              "log_level_logfile": "warning", "user": getpass.getuser(), "acceptance_wait_time": 1}
    with open(os.path.join(home, "minion"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh)
    script = os.path.join(os.path.dirname(sys.executable), "salt-minion")
    return subprocess.Popen([script, "-c", home, "-l", "quiet"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def cpu_seconds(processes):
    """User + system CPU seconds of ``processes`` (those still there)."""
    total = 0.0
    for found in processes:
        try:
            times = found.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def with_children(pid):
    main = psutil.Process(pid)
    return [main] + main.children(recursive=True)


class Publisher(threading.Thread):
    """The simulated hosts: each (host, check) fires its signed result once an interval,
    at an offset of its own; the fire time is in the result's output."""

    def __init__(self, opts, keys, checks, interval):
        super().__init__(name="bench-publisher", daemon=True)
        self.opts = opts
        self.keys = keys
        self.interval = interval
        rng = random.Random(7)
        self.pairs = [(rng.uniform(0, interval), host, "web-{}".format(number))
                      for host in keys for number in range(checks)]
        self.fired = []  # fire times
        self.late = []   # how late each fire was against its due time
        self.stop_event = threading.Event()

    def run(self):
        start = time.monotonic()
        queue = [(start + offset, host, check) for offset, host, check in self.pairs]
        heapq.heapify(queue)
        with salt.utils.event.get_master_event(self.opts, self.opts["sock_dir"], listen=False) as bus:
            while not self.stop_event.is_set():
                due, host, check = heapq.heappop(queue)
                wait = due - time.monotonic()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                self.late.append(max(-wait, 0.0))
                tag = reports.tag(host, check)
                fired = time.time()
                body = reports.sign(self.keys[host], tag, {"state": "OK", "output": "sim fired={:.6f}".format(fired),
                                                           "duration": 0.001, "at": fired})
                # As the master fires a minion's event (salt.daemons.masterapi: the load, its data inside).
                bus.fire_event({"id": host, "tag": tag, "data": body, "cmd": "_minion_event"}, tag)
                self.fired.append(fired)
                heapq.heappush(queue, (due + self.interval, host, check))

    def stop(self):
        self.stop_event.set()
        self.join(10)


class Poller(threading.Thread):
    """Reads the state rows every ``POLL`` seconds; a simulated result's latency is when
    its row was first seen updated minus its fire time."""

    def __init__(self, path):
        super().__init__(name="bench-poller", daemon=True)
        self.path = path
        self.seen = []  # (fired, latency)
        self.stop_event = threading.Event()

    def run(self):
        connection = sqlite3.connect("file:{}?mode=ro".format(self.path), uri=True, timeout=30)
        last = {}
        try:
            while not self.stop_event.wait(POLL):
                rows = connection.execute("SELECT id, output FROM check_states").fetchall()
                now = time.time()
                for row_id, output in rows:
                    if output and output != last.get(row_id) and output.startswith("sim fired="):
                        fired = float(output[len("sim fired="):])
                        self.seen.append((fired, now - fired))
                    last[row_id] = output
        finally:
            connection.close()

    def stop(self):
        self.stop_event.set()
        self.join(10)


def real_states(path, check, prefix):
    connection = sqlite3.connect("file:{}?mode=ro".format(path), uri=True, timeout=30)
    try:
        return connection.execute(
            "SELECT h.name, s.state, s.checked FROM check_states s JOIN health_checks c ON c.id = s.check_id "
            "JOIN hosts h ON h.id = s.host_id WHERE c.name = ? AND h.name LIKE ?", (check, prefix + "%")).fetchall()
    finally:
        connection.close()


def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(interval)
    raise BenchError("{} did not happen within {:.0f} s".format(what, timeout))


def capacity(opts, url, keys, accepted_key, checks):
    """Results a second the listener records, one per transaction and in batches of ``BATCH``
    (the same steady OK results of the simulated hosts, in this process)."""
    hosts = sorted(keys)
    health = listener.Listener(opts, url, {}, accepted_key)

    def events(count):
        made = []
        for number in range(count):
            host, check = hosts[number % len(hosts)], "web-{}".format((number // len(hosts)) % checks)
            tag = reports.tag(host, check)
            body = reports.sign(keys[host], tag, {"state": "OK", "output": "capacity", "duration": 0.001,
                                                  "at": time.time()})
            made.append((tag, {"id": host, "tag": tag, "data": body}))
        return made

    single = events(CAPACITY_EVENTS)
    started = time.perf_counter()
    for tag, data in single:
        health.handle(tag, data)
    one_by_one = CAPACITY_EVENTS / (time.perf_counter() - started)
    batched_events = events(CAPACITY_EVENTS)
    started = time.perf_counter()
    for first in range(0, CAPACITY_EVENTS, BATCH):
        health.handle_batch(batched_events[first:first + BATCH])
    batched = CAPACITY_EVENTS / (time.perf_counter() - started)
    return one_by_one, batched


def bench_health(section, out, notes, quick=False):
    section("x")
    hosts_count, real_count, checks, interval, window = SIZES[quick]
    rate = hosts_count * checks / interval
    root = tempfile.mkdtemp(prefix="corpus-bench-health-", dir="/var/tmp")
    database = os.path.join(root, "inventory.sqlite")
    api = {"bind": "127.0.0.1", "port": free_port()}
    options = dict(cli.master_config(root, {"db_url": "sqlite:///" + database, "master_address": "127.0.0.1",
                                            "secrets_key": os.path.join(root, "secrets.key")},
                                     interface="127.0.0.1", publish_port=free_port(), ret_port=free_port()),
                   corpus_api=api)
    servers = [backend("web-{}".format(number), path="/health") for number in range(checks)]
    sink = WebhookSink()
    minions, publisher, poller = [], None, None
    real = ["real-{}".format(number) for number in range(real_count)]
    simulated = ["sim-{:03d}".format(number) for number in range(hosts_count - real_count)]
    load_before = os.getloadavg()
    try:
        for directory in ("srv/salt", "srv/pillar"):
            os.makedirs(os.path.join(root, directory), exist_ok=True)
        cli.write_if_changed(cli.config_path(root), cli.render(options))
        master_pid = cli.start_master(root, options)
        opts = salt.config.master_config(cli.config_path(root))
        ctl = Controller(opts)
        started = time.monotonic()
        keys = {}
        for name in real + simulated:
            keys[name] = key_pair()
            ctl.seed_key(name, keys[name][1])
        notes.append("(x) {} minion keys made and accepted in {}".format(len(keys), fmt_seconds(
            time.monotonic() - started)))
        db.init(ctl.url, secrets_key=opts["corpus"]["secrets_key"])
        fill(ctl.url, real + simulated, checks, interval, [server.server_port for server in servers],
             sink.url("/hooks/bench"))
        settings = api_settings.api_settings({"corpus_api": api})
        api_pid = api_process.start(root, cli.config_path(root), settings)
        for name in real:
            minions.append(start_minion(root, name, keys[name][0], keys[name][1], opts))
        # The real minions connected, read their pillar's schedule and reported each check.
        wait_until(lambda: len([1 for check in range(checks) for _host, state, _checked in real_states(
            database, "web-{}".format(check), "real-") if state == "OK"]) == real_count * checks,
            90, "every real minion's first results")
        poller = Poller(database)
        poller.start()
        publisher = Publisher(opts, {name: keys[name][2] for name in simulated}, checks, interval)
        publisher.start()
        # One interval of warm-up: every (host, check) has its state row.
        time.sleep(interval + 1)
        master_procs, api_procs = with_children(master_pid), with_children(api_pid)
        cpu_start = (cpu_seconds(master_procs), cpu_seconds(api_procs), psutil.cpu_times(), time.monotonic())
        window_start = time.time()
        time.sleep(window)
        window_end = time.time()
        cpu_end = (cpu_seconds(master_procs), cpu_seconds(api_procs), psutil.cpu_times(), time.monotonic())
        load_during = os.getloadavg()
        latencies = [latency for fired, latency in poller.seen if window_start <= fired <= window_end]
        fired_in_window = [fired for fired in publisher.fired if window_start <= fired <= window_end]
        late = list(publisher.late) or [0.0]
        out("{} hosts ({} real salt-minions running the real checks, {} simulated publishing signed results on "
            "the master's bus), {} checks each every {} s: {:.0f} results/s; {:.0f} s measured".format(
                hosts_count, real_count, hosts_count - real_count, checks, interval, rate, window))
        if not latencies:
            raise BenchError("no simulated result was seen recorded during the window")
        table(["", "n", "p50", "p99", "max"], [
            ["event fired -> state row updated", len(latencies), fmt_seconds(statistics.median(latencies)),
             fmt_seconds(percentile(latencies, 0.99)), fmt_seconds(max(latencies))],
            ["publisher lateness (its own)", len(late), fmt_seconds(statistics.median(late)),
             fmt_seconds(percentile(late, 0.99)), fmt_seconds(max(late))],
        ], out=out)
        p99 = percentile(latencies, 0.99)
        out("event-to-state p99 {} (goal < 1 s: {}); {:.1f} results/s published, {} of them seen recorded "
            "(polled every {:.0f} ms)".format(fmt_seconds(p99), "met" if p99 < 1 else "NOT met",
                                              len(fired_in_window) / window, len(latencies), POLL * 1000))
        elapsed = cpu_end[3] - cpu_start[3]
        table(["CPU over the window", "seconds", "share of one core"], [
            ["salt-master (all its processes)", "{:.1f}".format(cpu_end[0] - cpu_start[0]),
             "{:.0%}".format((cpu_end[0] - cpu_start[0]) / elapsed)],
            ["corpus-api (its health listener)", "{:.1f}".format(cpu_end[1] - cpu_start[1]),
             "{:.0%}".format((cpu_end[1] - cpu_start[1]) / elapsed)],
            ["the machine ({} cores, bench included)".format(psutil.cpu_count()), "",
             "{:.0%} of all".format(_busy_share(cpu_start[2], cpu_end[2]))],
        ], out=out)
        out("load average before {:.2f}, during {:.2f}".format(load_before[0], load_during[0]))

        # A real backend killed (the load going on): its checks on the real minions go
        # CRITICAL and the handler is told.
        killed = servers.pop(0)
        killed.shutdown()
        killed.server_close()
        t_kill = time.time()
        shown = "interval {} s{}, retries 0".format(interval, ", shortened for --quick" if quick else "")
        try:
            wait_until(lambda: any(found[1] == "CRITICAL" for found in real_states(database, "web-0", "real-")),
                       3 * interval, "a CRITICAL state of web-0 on a real minion", interval=POLL)
            t_critical = time.time()
            wait_until(lambda: any("CRITICAL" in body.get("text", "") and "web-0" in body.get("text", "")
                                   for _path, body in list(sink.posts)), 3 * interval, "the webhook's message",
                       interval=POLL)
            t_told = time.time()
            out("backend killed -> CRITICAL {} ({:.2f} intervals), -> webhook message {} ({:.2f} intervals); "
                "goal < 2 intervals: {} ({})".format(
                    fmt_seconds(t_critical - t_kill), (t_critical - t_kill) / interval, fmt_seconds(t_told - t_kill),
                    (t_told - t_kill) / interval, "met" if t_told - t_kill < 2 * interval else "NOT met", shown))
        except BenchError as exc:
            out("backend killed: {}; goal < 2 intervals: NOT met ({}); web-0 on the real minions: {}; the last "
                "simulated result seen recorded {} after it was fired".format(
                    exc, shown, real_states(database, "web-0", "real-"),
                    fmt_seconds(poller.seen[-1][1]) if poller.seen else "never"))
        publisher.stop()
        poller.stop()
        api_process.stop(root)
        one_by_one, batched = capacity(opts, ctl.url, {name: keys[name][2] for name in simulated},
                                       ctl.accepted_key, checks)
        table(["listener capacity (this process, same inventory)", "results/s", "ms per result"], [
            ["baseline: one transaction per result", "{:.0f}".format(one_by_one), "{:.2f}".format(1000 / one_by_one)],
            ["results waiting recorded together ({} per transaction)".format(BATCH), "{:.0f}".format(batched),
             "{:.2f}".format(1000 / batched)],
        ], out=out)
        out("batched / one per transaction: {} ; the fleet needs {:.0f} results/s".format(
            fmt_ratio(ratio(batched, one_by_one)), rate))
    finally:
        if publisher is not None and publisher.is_alive():
            publisher.stop()
        if poller is not None and poller.is_alive():
            poller.stop()
        for minion in minions:
            _stop_group(minion)
        api_process.stop(root)
        cli.stop_master(root)
        db.dispose()
        sink.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)


def _busy_share(before, after):
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    return (total - idle) / total if total else 0.0


def _stop_group(process):
    """Stop a minion this bench started (its own process group: its scheduled jobs too)."""
    try:
        os.killpg(process.pid, 15)
        process.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    found_notes = []
    bench_health(lambda key: print("(x) fleet health"), print, found_notes, quick="--quick" in sys.argv)
    for note in found_notes:
        print("note:", note)
