"""(j) the controller's REST API: latency of ``GET /v1/environments`` with 10,000
environments in the inventory (goal p99 < 50 ms), against ``GET /v1/health`` (the
framework's own floor) on the same server; and the time from a job's step starting
to a watcher of ``/v1/jobs/{id}/events`` receiving it (goal < 200 ms), against the
master's event bus alone (fire to ``get_event`` in one process).

A real salt-master and ``corpus-api`` (started as ``corpus-controller init`` starts
them) under a throwaway root; an SQLite inventory.
"""

import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid

import httpx
import salt.config
from harness import BenchError, fmt_ratio, fmt_seconds, free_port, ratio, table

from mc_project import jobs  # noqa: E402  (harness put the repo on sys.path)
from mc_project.api import process as api_process  # noqa: E402
from mc_project.api import settings as api_settings  # noqa: E402
from mc_project.api import users  # noqa: E402
from mc_project.controller import cli  # noqa: E402
from mc_project.controller.runtime import Controller  # noqa: E402
from mc_project.inventory import db  # noqa: E402
from mc_project.inventory.models import ComputeNode, Environment, Project, Tenant  # noqa: E402

ENVIRONMENTS = 10_000
REQUESTS = 1000
SSE_ROUNDS = 30
PASSWORD = "bench-password"


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def fill(url, count):
    """``count`` environments (one project each) on 20 nodes, all of tenant ``bench``."""
    with db.session(url) as sess:
        tenant = Tenant(name="bench")
        sess.add(tenant)
        sess.flush()
        nodes = [ComputeNode(name="node{:02d}".format(n), address="192.0.2.{}".format(n + 1), slots=1000,
                             tenant_id=tenant.id) for n in range(20)]
        sess.add_all(nodes)
        sess.flush()
        node_ids = [node.id for node in nodes]
    rows, projects = [], []
    for n in range(count):
        rows.append({"uuid": str(uuid.uuid4()), "name": "env{:05d}".format(n), "env_type": "dev",
                     "status": "active", "node_id": node_ids[n % 20], "ip": "10.{}.{}.{}".format(
                         n % 20, n // 250, n % 250 + 1), "ssh_nat_port": 40000 + n // 20, "domains":
                     ["env{:05d}.corpus.test".format(n)], "tenant_id": tenant.id, "project": "app",
                     "minion_id": "env{:05d}".format(n), "disk_size_mb": 2048})
    with db.session(url) as sess:
        sess.execute(Environment.__table__.insert(), rows)
        ids = sess.execute(Environment.__table__.select().with_only_columns(Environment.id)).scalars().all()
        for env_id in ids:
            projects.append({"name": "app", "environment_id": env_id})
        sess.execute(Project.__table__.insert(), projects)
    users.add_local_user(url, "bench", PASSWORD, "bench", "deployer")


def timed(client, path, count):
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise BenchError("GET {} answered {}: {}".format(path, answer.status_code, answer.text[:200]))
    return seconds


def bus_latency(ctl, rounds):
    """Fire a signed event and receive it on the master's bus, in this process."""
    seconds = []
    with ctl.listening("corpus/bench/") as bus:
        for n in range(rounds):
            tag = "corpus/bench/{}".format(n)
            started = time.perf_counter()
            ctl.fire(tag, {"n": n})
            if not bus.get_event(wait=5, tag=tag, full=True):
                raise BenchError("the master's bus did not deliver {}".format(tag))
            seconds.append(time.perf_counter() - started)
    return seconds


def sse_first_event(ctl, client, rounds):
    """Time from a job's first step starting (its event fired) to the watcher's frame."""
    seconds = []
    for _ in range(rounds):
        fired = {}

        def fire(tag, data, fired=fired):
            fired.setdefault(tag, time.perf_counter())
            ctl.fire(tag, data)

        registry = {"bench:step": (lambda ctx: time.sleep(0.05), None)}
        manager = jobs.Jobs(ctl.url, registry=registry, fire=fire)
        job_id = manager.create("bench", "env00000", ["bench:step"], {})
        runner = threading.Thread(target=manager.run, args=(job_id,))
        with client.stream("GET", "/v1/jobs/{}/events".format(job_id)) as stream:
            time.sleep(0.2)  # the stream is listening to the bus
            runner.start()
            for line in stream.iter_lines():
                if line.startswith("data: ") and '"running"' in line:
                    seconds.append(time.perf_counter() - fired["corpus/job/{}/step/1/running".format(job_id)])
                    break
        runner.join()
    return seconds


def bench_api(section, out, notes, quick=False):
    section("j")
    count = 1000 if quick else ENVIRONMENTS
    requests = 200 if quick else REQUESTS
    root = tempfile.mkdtemp(prefix="corpus-bench-api-", dir="/var/tmp")
    api = {"bind": "127.0.0.1", "port": free_port()}
    options = dict(cli.master_config(root, {"db_url": "sqlite:///" + os.path.join(root, "inventory.sqlite"),
                                            "master_address": "127.0.0.1",
                                            "secrets_key": os.path.join(root, "secrets.key")},
                                     interface="127.0.0.1", publish_port=free_port(), ret_port=free_port()),
                   corpus_api=api)
    try:
        for directory in ("srv/salt", "srv/pillar"):
            os.makedirs(os.path.join(root, directory), exist_ok=True)
        cli.write_if_changed(cli.config_path(root), cli.render(options))
        cli.start_master(root, options)
        ctl = Controller(salt.config.master_config(cli.config_path(root)))
        started = time.monotonic()
        fill(ctl.url, count)
        notes.append("(j) {} environments written in {}".format(count, fmt_seconds(time.monotonic() - started)))
        api_process.start(root, cli.config_path(root), api_settings.api_settings({"corpus_api": api}))
        base = api_process.base_url(api_settings.api_settings({"corpus_api": api}))
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post("/v1/login", json={"username": "bench", "password": PASSWORD}).json()["token"]
            client.headers["Authorization"] = "Bearer " + token
            timed(client, "/v1/environments", 20)  # warm up
            health = timed(client, "/v1/health", requests)
            page = timed(client, "/v1/environments", requests)
            deep = timed(client, "/v1/environments?offset={}&limit=50".format(count - 50), requests // 4)
            filtered = timed(client, "/v1/environments?node=node07&type=dev&status=active", requests // 4)
            big = timed(client, "/v1/environments?limit=500", requests // 4)
            one = timed(client, "/v1/environments/env{:05d}".format(count // 2), requests // 4)
            total = client.get("/v1/environments").json()["total"]
            if total != count:
                raise BenchError("GET /v1/environments counted {} environments, not {}".format(total, count))
            rows = []
            for label, values in (("GET /v1/health (baseline)", health),
                                  ("GET /v1/environments (first 50)", page),
                                  ("... ?offset={} (last 50)".format(count - 50), deep),
                                  ("... ?node=&type=&status= (filtered)", filtered),
                                  ("... ?limit=500", big),
                                  ("GET /v1/environments/NAME", one)):
                rows.append([label, len(values), fmt_seconds(statistics.median(values)),
                             fmt_seconds(percentile(values, 0.99)),
                             fmt_ratio(ratio(percentile(values, 0.99), percentile(health, 0.99)))])
            out("{} environments in the inventory, one uvicorn worker, keep-alive client:".format(count))
            table(["request", "n", "p50", "p99", "p99 / health p99"], rows, out=out)
            p99 = percentile(page, 0.99)
            out("GET /v1/environments p99 {} (goal < 50 ms: {})".format(fmt_seconds(p99),
                                                                         "met" if p99 < 0.05 else "NOT met"))
            out()
            bus = bus_latency(ctl, SSE_ROUNDS)
            sse = sse_first_event(ctl, client, 10 if quick else SSE_ROUNDS)
            table(["from a step starting to", "n", "p50", "p99", "p50 / bus p50"],
                  [["the master's bus, same process (baseline)", len(bus), fmt_seconds(statistics.median(bus)),
                    fmt_seconds(percentile(bus, 0.99)), "1.00x"],
                   ["a watcher's SSE event (/v1/jobs/ID/events)", len(sse), fmt_seconds(statistics.median(sse)),
                    fmt_seconds(percentile(sse, 0.99)), fmt_ratio(ratio(statistics.median(sse),
                                                                        statistics.median(bus)))]], out=out)
            worst = percentile(sse, 0.99)
            out("SSE first event p99 {} (goal < 200 ms: {})".format(fmt_seconds(worst),
                                                                     "met" if worst < 0.2 else "NOT met"))
    finally:
        api_process.stop(root)
        cli.stop_master(root)
        db.dispose()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import sys

    notes = []
    bench_api(lambda key: print("(j) the REST API: GET /v1/environments latency, SSE first event"), print, notes,
              quick="--quick" in sys.argv)
    for note in notes:
        print("note:", note)
