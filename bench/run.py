"""corpus benchmarks (``make bench``): every number is a ratio against a baseline
measured in the same run, on this machine.

(a) push-to-live of examples/wsgi-app (cooking mode, env staging) against a plain
    ``git push`` + ``git archive`` into a new dir + symlink rename, and where the
    corpus time goes;
(b) rollback time of a small and a large project (the release size should not matter);
(c) disk used by 10 releases of a project whose build changes 1% of its files per
    release, bundles (archives/) included, against the bytes that actually differ; and
    the deploy time of a 1% change of a 1 GiB project against a 10 MiB one;
(d) a container cloned from the golden image against a full ``lxc-create -t debian``;
(e) ``init_env`` end to end on a real controller and node, with each step's time;
(f) 1, 4 and 8 environments created in parallel against one after another;
(g) zero downtime under load: a request loop through 20 back-to-back pushes and 5
    rollbacks of examples/wsgi-app (requests, failed, non-2xx), each phase's median
    time and the time from a push starting to the new version answering, against the
    plain git push + restart of (a) under the same loop (``--only g``, ~2 minutes).
(h) the database snapshot (SQLite online backup API) and its restore, for a 100 MiB and
    a 1 GiB database, against a plain ``cp`` of the file (``--only h``, ~1 minute).
(i) a 1-file change (a template) of examples/django-app, cooking (env staging) and
    editable (env dev), against what piku does for it: a post-receive hook that checks
    the commit out, reuses the virtualenv, runs collectstatic and migrate and restarts
    gunicorn; push wall time and push start to the new version answering, by phase and
    step (``--only i``, ~2 minutes).
(j) the REST API: ``GET /v1/environments`` p50/p99 with 10,000 environments against
    ``GET /v1/health``, and a step's SSE event against the master's bus (``--only j``, bench/api.py).
(k) the fleet inventory with 10,000 hosts, on SQLite and PostgreSQL: the Ansible export, one host's
    resolved variables, a search by a resolved value and one host's ext_pillar, against one query per
    level per host (``--only k``, bench/inventory.py, ~2 minutes).
(p) a site's plan: a blueprint of 100 environments, 10 domains and 20 checks against an SQLite
    inventory holding them, as ``POST /v1/plans`` makes it (goal < 1 s), against the same plan
    reading one query per object (``--only p``, bench/plans.py, a few seconds).
(w) a site walk: a real haproxy front and 20 backends answering in 50 ms each, walked as the API
    walks a site (inventory + job), against the same targets asked one after another (``--only w``,
    bench/walks.py, a few seconds).
(x) fleet health: 200 hosts (a few real salt-minions, the rest simulated with keys of their own)
    reporting 10 checks each every 30 s to a real master and corpus-api's listener: event-to-state
    p50/p99, the master's and the API's CPU, a backend killed to CRITICAL and to the webhook, and
    the listener's capacity batched against one transaction per result (``--only x``,
    bench/health.py, about 5 minutes).
(r) redeploy of an environment running examples/wsgi-app on a real controller and node: each
    step's time, requests through the node's proxy during it (none may fail), against its
    init_env (``--only r``, bench/redeploy.py, a few minutes).
(d) to (f) and (r) need root, LXC, nftables, haproxy and sshd; (f) takes about 20 minutes.

Everything lives under a throwaway root (default /var/tmp/corpus-bench), which is
removed at the end, apps stopped. ``--quick`` runs small sizes once (a smoke run).
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import api
import controller
import gen_tree
import harness
import health
import inventory
import plans
import redeploy
import walks
from harness import (BenchError, Corpus, du_bytes, fmt_bytes, fmt_ratio, fmt_seconds, free_port,
                     git, median, ratio, table, unique_inode_bytes, wait_http)

from mc_project.project import bundle, engine, releases  # noqa: E402  (harness put the repo on sys.path)

HEADERS = {
    "a": "(a) push-to-live: examples/wsgi-app, cooking mode, env staging",
    "b": "(b) rollback time: small release vs large release",
    "c": "(c) disk used by 10 releases changing 1% per release, and a 1% change: 1 GiB vs 10 MiB",
    "d": "(d) container from the golden image (clone) vs a full template create",
    "e": "(e) controller: init_env end to end, the time of each step, then destroy_env",
    "f": "(f) controller: 1, 4 and 8 environments created in parallel vs one after another",
    "g": "(g) zero downtime under load: examples/wsgi-app deploys and rollbacks, cooking, env staging",
    "h": "(h) database snapshot and restore: SQLite backup API vs cp, 100 MiB and 1 GiB",
    "i": "(i) a 1-file change of a Django app: corpus cooking and editable vs piku-style checkout + restart",
    "j": "(j) the REST API: GET /v1/environments with 10,000 environments, and a step's SSE event",
    "k": "(k) the fleet inventory: 10,000 hosts, export, resolution, search and pillar, SQLite and PostgreSQL",
    "p": "(p) a site's plan: 100 environments against the inventory vs one query per object",
    "w": "(w) a site walk: a front and 20 backends, all at once vs one after another",
    "x": "(x) fleet health: 200 hosts x 10 checks every 30 s, event to state, CPU, a backend killed",
    "r": "(r) redeploy of an environment: each step's time, requests through the proxy during it",
}
KB = 1024
MB = 1024 * 1024


class Sizes:
    """What a run measures; --quick shrinks everything to a smoke run."""

    def __init__(self, quick):
        self.quick = quick
        self.runs = 1 if quick else 5
        # (b): (label, files, file_kb)
        self.small = ("1 MiB", 10, 100) if quick else ("10 MiB", 100, 100)
        self.large = ("20 MiB", 20, 1024) if quick else ("1 GiB", 1024, 1024)
        # (c): releases of files x file_kb, 1% of the files rewritten per release
        self.disk_releases = 2 if quick else 10
        self.disk = ("10 MiB", 100, 100) if quick else ("200 MiB", 200, 1024)
        # (c): the deploy of a 1% change, small vs large project: (label, files, file_kb)
        self.change_small = ("1 MiB", 10, 100) if quick else ("10 MiB", 100, 100)
        self.change_large = ("20 MiB", 20, 1024) if quick else ("1 GiB", 1024, 1024)


def out(line=""):
    print(line, flush=True)


def section(key):
    out()
    out("=" * 78)
    out(HEADERS[key])
    out("=" * 78)


# --------------------------------------------------------------------------- generated projects

def generator_files(files, file_kb, version, change_pct=1):
    """The repository of a project whose cooking build writes ``files`` x ``file_kb``."""
    with open(os.path.join(harness.HERE, "gen_tree.py"), encoding="utf-8") as fh:
        gen = fh.read()
    return {
        "gen.py": gen,
        "bench.json": json.dumps({"files": files, "file_kb": file_kb, "version": version,
                                  "change_pct": change_pct}) + "\n",
        "public/index.html": "<h1>generated tree</h1>\n",
        ".salt/build.sls": (
            "{#- Generate the big tree into the build dir: the release is what the build made. #}\n"
            "{{ cfg.name }}-generate:\n"
            "  cmd.run:\n"
            "    - name: python3 gen.py bench.json\n"
            "    - cwd: {{ cfg.app_root }}\n"),
    }


def set_version(corpus, src, version):
    spec = json.load(open(os.path.join(src, "bench.json")))
    spec["version"] = version
    return corpus.commit(src, {"bench.json": json.dumps(spec) + "\n"}, "version {}".format(version))


def good_deploys(corpus, name):
    return [r for r in corpus.history(name) if r.get("kind") == "deploy" and r.get("status") == "success"]


# --------------------------------------------------------------------------- (a) push to live

class Baseline:
    """No Salt: a bare repo without hooks, ``git archive`` into a new dir, a symlink
    renamed over ``current``; then (for the second baseline) the app restarted as a
    plain process and polled until the new version answers."""

    def __init__(self, corpus, root, port):
        self.corpus = corpus
        self.root = root
        self.git_dir = os.path.join(root, "repo.git")
        self.releases = os.path.join(root, "releases")
        self.current = os.path.join(root, "current")
        self.data = os.path.join(root, "data")
        self.port = port
        self.proc = None
        self.n = 0

    def init(self):
        os.makedirs(self.releases, exist_ok=True)
        os.makedirs(self.data, exist_ok=True)
        git(self.root, "init", "-q", "--bare", "-b", "main", self.git_dir)
        for hook in os.listdir(os.path.join(self.git_dir, "hooks")):  # samples only; be sure
            os.unlink(os.path.join(self.git_dir, "hooks", hook))

    def deploy(self, src, version):
        t0 = time.monotonic()
        push = self.corpus.push(src, self.git_dir)
        t_push = time.monotonic()
        sha = git(src, "rev-parse", "HEAD")
        self.n += 1
        release = os.path.join(self.releases, "{:03d}-{}".format(self.n, sha[:8]))
        os.makedirs(release)
        subprocess.run("git --git-dir={} archive --format=tar {} | tar -x -C {}".format(
            self.git_dir, sha, release), shell=True, check=True)
        t_tree = time.monotonic()
        tmp = self.current + ".new"
        os.symlink(os.path.relpath(release, self.root), tmp)
        os.replace(tmp, self.current)
        t_switch = time.monotonic()
        if not os.path.exists(os.path.join(self.data, "db.json")):
            subprocess.run([sys.executable, "migrate.py", self.data], cwd=self.current, check=True,
                           capture_output=True)
        self.stop()
        env = dict(os.environ, PORT=str(self.port), CORPUS_DATA=self.data)
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=self.current, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_http = wait_http(self.port, '"version": "{}"'.format(version))
        return {
            "git push": t_push - t0,
            "git transfer": (push.first("Total ") or t_push) - t0,
            "git archive | tar -x": t_tree - t_push,
            "symlink rename": t_switch - t_tree,
            "plain total": t_switch - t0,
            "app restart + first HTTP": t_http - t_switch,
            "total with restart": t_http - t0,
        }

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _stripped(text):
    text = text.strip()
    if text.startswith("remote:"):
        text = text[len("remote:"):].strip()
    return text


def agent_overhead(timings):
    """The hand-off to the deploy agent, from the client's ``CORPUS_AGENT_TIMINGS`` line
    (wall-clock stamps of the hook, the client, the agent and its child; seconds)."""
    hook = timings.get("hook") or timings["client"]
    started = timings.get("agent_start", 0.0)  # a cold agent: its start-up, apart
    return {
        "hook start -> client running (git archive, python start-up)": timings["client"] - hook,
        "client -> agent (connect, request)": timings["received"] - timings["client"] - started,
        "agent: fork + pillar refresh": timings["function_started"] - timings["received"],
        "pillar refresh": timings["pillar"],
        "hook start -> deploy function running": timings["function_started"] - hook - started,
        "function return -> client exit": timings["client_done"] - timings["function_ended"],
        "agent cold start": started or None,
    }


def last_agent_timings(path):
    """The client's record of the last push (None when the push did not use the agent)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    return json.loads(lines[-1])["timings"] if lines else None


def analyse_corpus_push(push, t_http, record, timings=None):
    """Split one corpus push into where its time went (seconds)."""
    def at(pred):
        for stamp, text in push.lines:
            if pred(_stripped(text)):
                return stamp
        return None

    t0 = push.started
    t_transfer = at(lambda s: s.startswith("Total ")) or t0
    t_deploying = at(lambda s: s.startswith("-----> deploying"))
    t_live = at(lambda s: s.startswith("-----> ") and " is live: " in s)
    t_deploy = at(lambda s: s == "-----> deploy")
    t_started = at(lambda s: "started beside the live one" in s)
    t_health = at(lambda s: s.startswith("health check ") and s.endswith("answered"))
    t_moved = at(lambda s: s.startswith("traffic moved: "))
    if None in (t_deploying, t_live):
        raise BenchError("Could not find the progress lines in the push output:\n" + push.text())

    def between(start, end):
        return end - start if start is not None and end is not None else None

    phases = [(p["phase"], p["seconds"]) for p in record["phases"] if p.get("result") is True]
    split = {
        "git transfer": t_transfer - t0,
        "receive, hook, agent hand-off, lock, unpack": t_deploying - t_transfer,
        "phases": sum(s for _, s in phases),
        "engine between phases (history, records)": (t_live - t_deploying) - sum(s for _, s in phases),
        "after phases (old release retired, prune, result back, ref update)": push.ended - t_live,
        "push wall time": push.ended - t0,
        # The new version takes the traffic when the front moves it to the health-checked
        # release (its progress line), before the push returns; ``t_http``, polled after
        # the push (polling during it would load the app), confirms it answers.
        "total": (t_moved if t_moved is not None else t_http) - t0,
        "first HTTP answer after the push returned": t_http - push.ended,
        # sub-parts, from the arrival time of the progress lines (None when not printed)
        "new release started (beside the live one)": between(t_deploy, t_started),
        "health check": between(push.line_before(t_health) if t_health else None, t_health),
        "traffic moved (after the health check)": between(t_health, t_moved),
    }
    for phase, seconds in phases:
        split["phase " + phase] = seconds
    if timings:
        split.update(agent_overhead(timings))
    return split


def measure_switch(current, targets, rounds=200):
    """Median time of one in-process ``releases.switch_current`` (atomic rename)."""
    before = releases.live_target(current)
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        releases.switch_current(current, targets[i % len(targets)])
        times.append(time.perf_counter() - started)
    releases.switch_current(current, before)
    return median(times)


def bench_push(corpus, sizes, name, base_port):
    from mc_project.project import agent

    section("a")
    port = corpus.pillar[name]["port"]
    src = corpus.source(name, example="wsgi-app")
    baseline = Baseline(corpus, os.path.join(corpus.root, "baseline"), base_port)
    baseline.init()
    # The hook's client appends its timings here; the first push finds no agent running.
    timings_file = os.path.join(corpus.root, "agent-timings.jsonl")
    corpus.env["CORPUS_AGENT_TIMINGS"] = timings_file
    agent.stop(corpus.conf_dir, corpus.projects_root)
    try:
        # The first deploy of both sides is reported apart: corpus starts its deploy agent,
        # supervisord and the app, and migrates the data; the baseline starts its app.
        first = corpus.push_project(src, name)
        first_http = wait_http(port, '"version": "1"')
        first_split = analyse_corpus_push(first, first_http, corpus.history(name)[-1],
                                          last_agent_timings(timings_file))
        baseline.deploy(src, "1")
        salt_start, runs_c, runs_b = [], [], []
        for i in range(sizes.runs):
            version = str(i + 2)
            corpus.commit(src, {"VERSION": version + "\n"}, "version " + version)
            runs_b.append(baseline.deploy(src, version))
            push = corpus.push_project(src, name)
            t_http = wait_http(port, f'"version": "{version}"')
            record = corpus.history(name)[-1]
            if record.get("status") != "success" or record.get("mode") != "cooking":
                raise BenchError(f"unexpected deploy record: {record}")
            timings = last_agent_timings(timings_file)
            if not timings or timings.get("agent_start"):
                raise BenchError(f"push {version} did not go to a warm deploy agent: {timings}")
            runs_c.append(analyse_corpus_push(push, t_http, record, timings))
            salt_start.append(corpus.timed_salt("test.true"))  # alone, same conditions
    finally:
        baseline.stop()
        corpus.env.pop("CORPUS_AGENT_TIMINGS", None)
    live = [r["id"] for r in good_deploys(corpus, name)][-2:]
    switch = measure_switch(corpus.paths(name)["current"],
                            [os.path.join(corpus.paths(name)["releases"], r) for r in live])

    def med(runs, key):
        return median([r.get(key) for r in runs])

    c_total, b_plain, b_full = med(runs_c, "total"), med(runs_b, "plain total"), med(runs_b, "total with restart")
    c_push = med(runs_c, "push wall time")
    out(f"median of {sizes.runs} run(s) with the deploy agent warm; each run commits a new VERSION "
        "and pushes it to both sides")
    out()
    table(["push-to-live", "seconds", "ratio"], [
        ["baseline: git push + git archive + symlink rename", fmt_seconds(b_plain), "1.00x"],
        ["baseline + app restart (plain process) + first HTTP", fmt_seconds(b_full), fmt_ratio(ratio(b_full, b_plain))],
        ["corpus: git push start until the new version answers", fmt_seconds(c_total),
         fmt_ratio(ratio(c_total, b_plain))],
        ["corpus: git push wall time (returns once the old release is retired)", fmt_seconds(c_push),
         fmt_ratio(ratio(c_push, b_plain))],
    ], out=out)
    out()
    out(f"corpus / baseline (no restart):   {fmt_ratio(ratio(c_total, b_plain))}")
    out(f"corpus / baseline (with restart): {fmt_ratio(ratio(c_total, b_full))}")
    out()
    out("first push (not in the medians): {} wall time, new version answering after {}; "
        "of which the deploy agent's cold start {}".format(
            fmt_seconds(first_split["push wall time"]), fmt_seconds(first_split["total"]),
            fmt_seconds(first_split.get("agent cold start"))))
    out()
    rows = []
    for key, label in (("git transfer", "git transfer (client side, until 'Total')"),
                       ("receive, hook, agent hand-off, lock, unpack", None)):
        rows.append([label or key, fmt_seconds(med(runs_c, key)), fmt_seconds(med(runs_b, key))
                     if key in runs_b[0] else ""])
    for key in ("hook start -> client running (git archive, python start-up)",
                "client -> agent (connect, request)", "agent: fork + pillar refresh", "pillar refresh",
                "hook start -> deploy function running"):
        rows.append(["  " + ("of which " if key != "pillar refresh" else "  of which ") + key,
                     fmt_seconds(med(runs_c, key)), ""])
    rows.append(["  compare: a whole salt-call test.true run, alone (what the agent saves)",
                 fmt_seconds(median(salt_start)), ""])
    phase_keys = [k for k in runs_c[0] if k.startswith("phase ")]
    for key in phase_keys:
        rows.append([key, fmt_seconds(med(runs_c, key)), ""])
        if key == "phase deploy":
            rows.append(["  of which the new release started beside the live one", fmt_seconds(
                med(runs_c, "new release started (beside the live one)")), ""])
        if key == "phase post_deploy":
            rows.append(["  of which health check", fmt_seconds(med(runs_c, "health check")), ""])
            rows.append(["  then traffic moved", fmt_seconds(
                med(runs_c, "traffic moved (after the health check)")), ""])
            rows.append(["  compare: a symlink switch (atomic rename, in-process)", fmt_seconds(switch), ""])
    rows += [
        ["engine between phases (history, records)",
         fmt_seconds(med(runs_c, "engine between phases (history, records)")), ""],
        ["after phases (old release retired, prune, result back, ref update)",
         fmt_seconds(med(runs_c, "after phases (old release retired, prune, result back, ref update)")), ""],
        ["  of which function return -> client exit", fmt_seconds(med(runs_c, "function return -> client exit")), ""],
        ["baseline: git archive | tar -x", "", fmt_seconds(med(runs_b, "git archive | tar -x"))],
        ["baseline: symlink rename", "", fmt_seconds(med(runs_b, "symlink rename"))],
        ["first HTTP answer after the push returned / after the restart", fmt_seconds(
            med(runs_c, "first HTTP answer after the push returned")),
         fmt_seconds(med(runs_b, "app restart + first HTTP"))],
        ["total: push start until the new version answers", fmt_seconds(c_total),
         f"{fmt_seconds(b_plain)} / {fmt_seconds(b_full)}"],
        ["push wall time (returns once the old release is retired)", fmt_seconds(c_push),
         fmt_seconds(med(runs_b, "git push"))],
    ]
    out("where the time goes (medians; rows need not add up exactly to the total median)")
    out()
    table(["step", "corpus", "baseline"], rows, out=out)
    return {"corpus": c_total, "corpus_push": c_push, "baseline": b_plain, "baseline_restart": b_full,
            "first_push": first_split["total"], "agent_cold_start": first_split.get("agent cold start"),
            "hand_off": med(runs_c, "hook start -> deploy function running")}


# --------------------------------------------------------------------------- (b) rollback

def deploy_generated(corpus, name, files, file_kb, versions):
    """Push ``versions`` of a generated project; returns the push seconds of each."""
    src = corpus.source(name, files=generator_files(files, file_kb, versions[0]))
    seconds = [corpus.push_project(src, name).seconds]
    for version in versions[1:]:
        set_version(corpus, src, version)
        seconds.append(corpus.push_project(src, name).seconds)
    return seconds


def prepare_rollback_project(corpus, name, files, file_kb):
    """Two releases (versions 0 and 1) of a generated project; what they cost."""
    deploy_seconds = deploy_generated(corpus, name, files, file_kb, [0, 1])
    wait_http(corpus.pillar[name]["port"], "generated tree")
    paths = corpus.paths(name)
    records = good_deploys(corpus, name)[-2:]
    phase_seconds = {p["phase"]: p["seconds"] for p in records[-1]["phases"] if p.get("result") is True}
    ids = [r["id"] for r in records]
    return {"name": name, "ids": ids, "deploy": deploy_seconds, "phases": phase_seconds,
            "release": unique_inode_bytes(os.path.join(paths["releases"], ids[-1])),
            "salt": [], "engine": []}


def rollback_once(corpus, project, i):
    """One rollback through salt-call, then one in-process, each to the other release."""
    name, ids = project["name"], project["ids"]
    target, other = (ids[0], ids[1]) if i % 2 == 0 else (ids[1], ids[0])
    project["salt"].append(corpus.timed_salt("mc_project.rollback", name, target))
    wait_http(corpus.pillar[name]["port"], "generated tree")
    started = time.monotonic()
    engine.rollback(name, corpus.projects_root, engine.SaltBindings(apply=_no_salt), release_id=other,
                    pillar=corpus.pillar[name], out=lambda line: None)
    project["engine"].append(time.monotonic() - started)


def _no_salt(high):
    raise BenchError("the rollback without data=True was not expected to apply states")


def bench_rollback(corpus, sizes, small_name, large_name, notes):
    section("b")
    label_s, files_s, kb_s = sizes.small
    label_l, files_l, kb_l = sizes.large
    need = 5 * files_l * kb_l * KB  # build + release + bundle, twice, and some room
    free = shutil.disk_usage(corpus.root).free
    if need > free:
        scale = max(1, int(free / 5 / (kb_l * KB)))
        notes.append("(b) {} does not fit in {} free on this disk; measured {} files instead".format(
            label_l, fmt_bytes(free), scale))
        files_l, label_l = scale, fmt_bytes(scale * kb_l * KB)
    small = prepare_rollback_project(corpus, small_name, files_s, kb_s)
    large = prepare_rollback_project(corpus, large_name, files_l, kb_l)
    # Let the deploys' gigabytes reach the disk first (the engine fsyncs its history),
    # then interleave the two projects so any background load hits both alike.
    os.sync()
    for i in range(sizes.runs):
        for project in (small, large):
            rollback_once(corpus, project, i)
    for project in (small, large):
        paths = corpus.paths(project["name"])
        project["switch"] = measure_switch(paths["current"],
                                           [os.path.join(paths["releases"], r) for r in project["ids"]])
        project["salt"], project["engine"] = median(project["salt"]), median(project["engine"])
    out("two releases each (versions 0 and 1 of the generated tree, built in cooking mode);")
    out("median of {} rollback(s) each, alternating between the two releases".format(sizes.runs))
    out()
    table(["", label_s, label_l, "large / small"], [
        ["release size (unique inodes)", fmt_bytes(small["release"]), fmt_bytes(large["release"]),
         fmt_ratio(ratio(large["release"], small["release"]))],
        ["deploy: first push (build + release + bundle)", fmt_seconds(small["deploy"][0]),
         fmt_seconds(large["deploy"][0]), fmt_ratio(ratio(large["deploy"][0], small["deploy"][0]))],
        ["deploy: second push (1% of files changed)", fmt_seconds(small["deploy"][1]),
         fmt_seconds(large["deploy"][1]), fmt_ratio(ratio(large["deploy"][1], small["deploy"][1]))],
        ["  of which phase build (generate the tree)", fmt_seconds(small["phases"].get("build")),
         fmt_seconds(large["phases"].get("build")),
         fmt_ratio(ratio(large["phases"].get("build"), small["phases"].get("build")))],
        ["  of which phase bundle (rsync release + store objects)", fmt_seconds(small["phases"].get("bundle")),
         fmt_seconds(large["phases"].get("bundle")),
         fmt_ratio(ratio(large["phases"].get("bundle"), small["phases"].get("bundle")))],
        ["rollback: salt-call mc_project.rollback NAME ID", fmt_seconds(small["salt"]),
         fmt_seconds(large["salt"]), fmt_ratio(ratio(large["salt"], small["salt"]))],
        ["rollback: engine.rollback in-process (no salt-call)", fmt_seconds(small["engine"]),
         fmt_seconds(large["engine"]), fmt_ratio(ratio(large["engine"], small["engine"]))],
        ["switch only: releases.switch_current in-process", fmt_seconds(small["switch"]),
         fmt_seconds(large["switch"]), fmt_ratio(ratio(large["switch"], small["switch"]))],
    ], out=out)
    out()
    out("rollback {} / {} (salt-call): {}".format(label_l, label_s, fmt_ratio(ratio(large["salt"], small["salt"]))))
    return {"small": small, "large": large}


# --------------------------------------------------------------------------- (c) disk

def file_digest(path):
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_files(top):
    """{relative path: (inode key, size, path)} of the regular files under ``top``."""
    found = {}
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.isfile(path) and not os.path.islink(path):
                found[os.path.relpath(path, top)] = ((st.st_dev, st.st_ino), st.st_size, path)
    return found


def differing_bytes(release_dirs):
    """Bytes of the files each release adds or changes compared with the one before:
    compared by content, whatever the store did with inodes."""
    total = 0
    previous = None
    for release in release_dirs:
        files = tree_files(release)
        if previous is not None:
            for rel, (inode, size, path) in files.items():
                old = previous.get(rel)
                if old is None:
                    total += size
                elif old[0] != inode and (old[1] != size or file_digest(old[2]) != file_digest(path)):
                    total += size
        previous = files
    return total


def bench_disk(corpus, sizes, name, small_name, large_name, notes):
    section("c")
    label, files, file_kb = sizes.disk
    count = sizes.disk_releases
    push_seconds = deploy_generated(corpus, name, files, file_kb, list(range(count)))
    paths = corpus.paths(name)
    ids = [r["id"] for r in good_deploys(corpus, name)]
    dirs = [os.path.join(paths["releases"], r) for r in ids if os.path.isdir(os.path.join(paths["releases"], r))]
    if len(dirs) != count:
        raise BenchError("expected {} kept releases, found {}".format(count, len(dirs)))
    one = unique_inode_bytes(dirs[0])
    on_disk = unique_inode_bytes(paths["releases"])
    du_apparent = du_bytes(paths["releases"])
    du_blocks = du_bytes(paths["releases"], apparent=False)
    differ = differing_bytes(dirs)
    ideal = one + differ
    archives = [paths["bundles"], bundle.objects_dir(paths["bundles"])]
    manifests = du_bytes(paths["bundles"])
    objects_alone = du_bytes(archives[1])
    with_archives = du_bytes(paths["releases"], *archives)  # one du: a shared inode counts once
    with_archives_blocks = du_bytes(paths["releases"], *archives, apparent=False)
    out("{} releases of a {} project ({} files of {} KiB), 1% of the files rewritten by each".format(
        count, label, files, file_kb))
    out("release's build; median deploy {} per push".format(fmt_seconds(median(push_seconds[1:]))))
    out()
    table(["", "bytes", "vs ideal"], [
        ["one release", fmt_bytes(one), ""],
        ["naive: {} x one release".format(count), fmt_bytes(one * count), fmt_ratio(ratio(one * count, ideal))],
        ["bytes that differ between consecutive releases", fmt_bytes(differ), ""],
        ["ideal: one release + bytes that differ", fmt_bytes(ideal), "1.00x"],
        ["on disk: releases/, each inode once (sum st_size)", fmt_bytes(on_disk), fmt_ratio(ratio(on_disk, ideal))],
        ["on disk: du -sb releases/", fmt_bytes(du_apparent), fmt_ratio(ratio(du_apparent, ideal))],
        ["on disk: du -sB1 releases/ (allocated blocks)", fmt_bytes(du_blocks), fmt_ratio(ratio(du_blocks, ideal))],
        ["  archives/bundles/ alone (the manifests)", fmt_bytes(manifests), fmt_ratio(ratio(manifests, ideal))],
        ["  archives/objects/ alone (shares inodes with releases)", fmt_bytes(objects_alone),
         fmt_ratio(ratio(objects_alone, ideal))],
        ["on disk: du -sb releases/ + archives/ bundles, objects", fmt_bytes(with_archives),
         fmt_ratio(ratio(with_archives, ideal))],
        ["on disk: du -sB1 of the same (allocated blocks)", fmt_bytes(with_archives_blocks),
         fmt_ratio(ratio(with_archives_blocks, ideal))],
    ], out=out)
    out()
    out("on disk / (one release + bytes that differ): {} releases only, {} with bundles (goal <= 1.30x)".format(
        fmt_ratio(ratio(on_disk, ideal)), fmt_ratio(ratio(with_archives, ideal))))
    change = bench_change(corpus, sizes, small_name, large_name, notes)
    return {"on_disk": on_disk, "with_archives": with_archives, "ideal": ideal, "change": change}


def bench_change(corpus, sizes, small_name, large_name, notes):
    """The deploy of a 1% change (cooking: checkout, build, release, bundle, switch) of a
    large project against a small one; two kinds of project: one whose files are in git
    (the push carries the change), one whose build generates its whole tree anew."""
    label_s, files_s, kb_s = sizes.change_small
    label_l, files_l, kb_l = sizes.change_large
    need = 6 * files_l * kb_l * KB  # source + git + checkout + two releases, and some room
    free = shutil.disk_usage(corpus.root).free
    if need > free:
        files_l = max(1, int(free / 6 / (kb_l * KB)))
        label_l = fmt_bytes(files_l * kb_l * KB)
        notes.append("(c) the large project does not fit in {} free; measured {}".format(fmt_bytes(free), label_l))
    rows = {}
    for kind, deploy in (("tracked", deploy_tracked), ("generated", deploy_generated)):
        for size, files, kb in (("small", files_s, kb_s), ("large", files_l, kb_l)):
            name = "{}-{}".format(small_name if size == "small" else large_name, kind[:3])
            seconds = deploy(corpus, name, files, kb, [0, 1])
            record = good_deploys(corpus, name)[-1]
            phase = {p["phase"]: p["seconds"] for p in record["phases"] if p.get("result") is True}
            rows[kind, size] = {"first": seconds[0], "change": seconds[1], "build": phase.get("build"),
                                "bundle": phase.get("bundle"),
                                "corpus": seconds[1] - (phase.get("build") or 0)}
    out()
    out("the deploy of a 1% change (cooking), second push of each")
    out()
    body = []
    for kind, title in (("tracked", "files in git (the push carries the 1%)"),
                        ("generated", "tree generated by the project's build (it writes 100% anew)")):
        small, large = rows[kind, "small"], rows[kind, "large"]
        body.append([title, "", "", ""])
        for key, what in (("first", "  first push (everything new)"), ("change", "  push of a 1% change"),
                          ("build", "    of which phase build"),
                          ("bundle", "    of which phase bundle (release + store objects)")):
            body.append([what, fmt_seconds(small[key]), fmt_seconds(large[key]),
                         fmt_ratio(ratio(large[key], small[key]))])
        if kind == "generated":
            body.append(["  push of a 1% change without the project's build", fmt_seconds(small["corpus"]),
                         fmt_seconds(large["corpus"]), fmt_ratio(ratio(large["corpus"], small["corpus"]))])
    table(["", label_s, label_l, "large / small"], body, out=out)
    out()
    tracked = ratio(rows["tracked", "large"]["change"], rows["tracked", "small"]["change"])
    generated = ratio(rows["generated", "large"]["change"], rows["generated", "small"]["change"])
    without = ratio(rows["generated", "large"]["corpus"], rows["generated", "small"]["corpus"])
    out("1% change {} / {}: {} (goal <= 3.00x) for a project whose files are in git; {} when its "
        "build writes the whole tree anew ({} without that build's own time)".format(
            label_l, label_s, fmt_ratio(tracked), fmt_ratio(generated), fmt_ratio(without)))
    return rows


def deploy_tracked(corpus, name, files, file_kb, versions):
    """Push ``versions`` of a project whose generated tree is committed (no build step);
    returns the push seconds of each."""
    src = corpus.source(name, files={"public/index.html": "<h1>generated tree</h1>\n"})
    # Random bytes do not compress: do not make git try (the first push of 1 GiB).
    git(src, "config", "core.compression", "0")
    seconds = []
    for version in versions:
        indices = range(files) if version == versions[0] else gen_tree.changed_files(version, files, 1)
        gens = gen_tree.generations(version, files, 1)
        os.makedirs(os.path.join(src, "blob"), exist_ok=True)
        for index in indices:
            with open(os.path.join(src, "blob", "{:05d}.bin".format(index)), "wb") as fh:
                fh.write(gen_tree.file_bytes(index, gens[index], file_kb * KB))
        corpus.commit(src, {}, "version {}".format(version))
        seconds.append(corpus.push_project(src, name).seconds)
    return seconds


# --------------------------------------------------------------------------- (g) zero downtime under load

ZDT_ROUNDS = {False: (20, 5), True: (3, 1)}  # --quick: (deploys, rollbacks)


class AnswerWatch:
    """Polls the public port in a thread, from before a push or a rollback, until GET /
    answers 200 with one of ``versions``: ``seen`` is when (monotonic time) and
    ``version`` which one, both None if it never did."""

    def __init__(self, port, versions):
        self.needles = {f'"version": "{v}"': v for v in versions}
        self.port = port
        self.seen = self.version = None
        self.last = "no answer yet"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def _poll(self):
        while not self.stopping.is_set():
            status, body = harness.http_get(self.port)
            found = [v for needle, v in self.needles.items() if needle in body] if status == 200 else []
            if found:
                self.seen, self.version = time.monotonic(), found[0]
                return
            self.last = f"{status} {body[:120]!r}"
            time.sleep(0.005)

    def wait(self, timeout=20):
        """Until an awaited version answers (at most ``timeout`` s): None, or why not."""
        self.thread.join(timeout)
        if self.seen is None:
            wanted = " or ".join(self.needles.values())
            return f"the public port did not answer version {wanted} within {timeout}s (last: {self.last})"
        return None

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()


def step_seconds(push, record):
    """Seconds of each of corpus's steps in one deploy: the record's own ``seconds`` when
    its step entries carry them, else the arrival times of the progress lines around it."""
    recorded = {e["step"]: e["seconds"] for e in record.get("steps", []) if e.get("seconds") is not None}

    def at(pred, after=None):
        for stamp, text in push.lines:
            if (after is None or stamp >= after) and pred(_stripped(text)):
                return stamp
        return None

    def between(start, end):
        return end - start if start is not None and end is not None else None

    t_bundle = at(lambda s: s == "-----> bundle")
    t_packed = at(lambda s: s.startswith("bundle ") and "sha256" in s)
    t_deploy = at(lambda s: s == "-----> deploy")
    t_started = at(lambda s: "started beside the live one" in s)
    t_health = at(lambda s: s.startswith("health check ") and s.endswith("answered"))
    t_moved = at(lambda s: s.startswith("traffic moved: "))
    t_live = at(lambda s: s.startswith("-----> ") and " is live: " in s)
    from_lines = {
        "make_release + pack_bundle": between(t_bundle, t_packed),
        "start_new": between(t_deploy, t_started),
        "move_traffic: health check": between(push.line_before(t_health) if t_health else None, t_health),
        "move_traffic: switch": between(t_health, t_moved),
        "retire_old (drain, stop) + prune + exit": between(t_live, push.ended),
    }
    if recorded:
        return dict(recorded, source="record")
    return dict(from_lines, source="progress lines")


def zdt_baseline(corpus, src, commits, port):
    """Section (a)'s plain git push + restart of the same commits, under the same load."""
    from tests.support.load import LoadLoop  # the repo root is on sys.path (harness)

    baseline = Baseline(corpus, os.path.join(corpus.root, "baseline-zdt"), port)
    baseline.init()
    runs = []
    try:
        # A branch of its own, so that section (a)'s ``git push HEAD:main`` names a ref.
        git(src, "checkout", "-q", "-B", "zdt-baseline", f"main~{len(commits)}")
        baseline.deploy(src, "1")  # the first one starts the app: not under load
        load = LoadLoop(f"http://127.0.0.1:{port}/", clients=2).start()
        try:
            for version, commit in commits.items():
                git(src, "checkout", "-q", "-B", "zdt-baseline", commit)
                runs.append(baseline.deploy(src, version))
        finally:
            seen = load.stop()
            git(src, "checkout", "-q", "main")
    finally:
        baseline.stop()
    return runs, seen


def bench_zero_downtime(corpus, sizes, name, base_port):
    from tests.support.load import LoadLoop  # the repo root is on sys.path (harness)

    section("g")
    deploys, rollbacks = ZDT_ROUNDS[sizes.quick]
    port = corpus.pillar[name]["port"]
    src = corpus.source(name, example="wsgi-app")
    version_of = {git(src, "rev-parse", "HEAD"): "1"}
    corpus.push_project(src, name)  # the first deploy (supervisord, front, migration): apart
    wait_http(port, '"version": "1"')
    commits = {}
    for n in range(2, deploys + 2):  # committed up front: the loop below only pushes
        commits[str(n)] = corpus.commit(src, {"VERSION": f"{n}\n"}, f"version {n}")
        version_of[commits[str(n)]] = str(n)

    # A deploy or rollback that fails, or whose version never answers, is reported and
    # the loop goes on: the question here is what the clients saw meanwhile.
    load = LoadLoop(f"http://127.0.0.1:{port}/", clients=2).start()
    runs, rollback_runs, problems = [], [], []
    good, current = ["1"], "1"  # versions that went live, in push order; the live one
    try:
        for version, commit in commits.items():
            with AnswerWatch(port, [version]) as watch:
                push = corpus.push_project(src, name, refspec=f"{commit}:refs/heads/main", check=False)
                missing = watch.wait() if push.returncode == 0 else None
            record = corpus.history(name)[-1]
            if push.returncode or record.get("status") != "success":
                problems.append(f"deploy of version {version}: {_refusal(push, record)}")
                continue
            good.append(version)
            current = version
            if missing:
                problems.append(f"deploy of version {version} succeeded ({record['id']}), but {missing}; "
                                f"{_live_state(corpus, name)}")
                continue
            runs.append({"push": push.seconds, "answer": watch.seen - push.started, "record": record,
                         "steps": step_seconds(push, record)})
        for _ in range(rollbacks):
            earlier = good[:good.index(current)]
            if not earlier:
                problems.append(f"rollback: not tried, nothing went live before version {current}")
                continue
            started = time.monotonic()
            with AnswerWatch(port, [v for v in good if v != current]) as watch:
                proc = corpus.salt("mc_project.rollback", name, check=False)
                ended = time.monotonic()
                missing = watch.wait() if proc.returncode == 0 else None
            record = corpus.history(name)[-1]
            if proc.returncode:
                why = (f"failed in {record.get('failed_phase')}: {record.get('error')}"
                       if record.get("kind") == "rollback" and record.get("status") == "failed"
                       else (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
                problems.append(f"rollback from version {current}: {why[:300]}")
                continue
            before, current = current, version_of.get(record.get("commit"), "?")
            if current != earlier[-1]:
                problems.append(f"rollback from version {before} went to version {current} "
                                f"({record.get('to')}), not to version {earlier[-1]}, the one that went "
                                f"live before it (from release {record.get('from')})")
            if missing or watch.version != current:
                problems.append(f"rollback to version {current}: {missing or 'version ' + str(watch.version)}"
                                f" answered; {_live_state(corpus, name)}")
                continue
            rollback_runs.append({"call": ended - started, "answer": watch.seen - started})
    finally:
        seen = load.stop()

    baseline_runs, baseline_seen = zdt_baseline(corpus, src, commits, base_port)
    report_zero_downtime(deploys, rollbacks, runs, rollback_runs, problems, seen, baseline_runs,
                         baseline_seen)
    return {"requests": seen["requests"], "failed": seen["failed"], "non_2xx": seen["non_2xx"],
            "problems": len(problems)}


def _live_state(corpus, name):
    """What the project's state.json says is live, for a problem report."""
    path = os.path.join(corpus.paths(name)["supervisor"], "state.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return "state.json: " + json.dumps(json.load(fh), sort_keys=True)
    except (OSError, ValueError) as exc:
        return f"state.json unreadable: {exc}"


def _refusal(push, record):
    """Why a deploy did not go live, in one line."""
    if record.get("status") == "failed":
        return f"failed in {record.get('failed_phase')}: {record.get('error')}"[:300]
    lines = [_stripped(t) for _, t in push.lines if "FAILED" in t or "rror" in t]
    return (lines[-1] if lines else f"git push exited {push.returncode}")[:300]


def report_zero_downtime(deploys, rollbacks, runs, rollback_runs, problems, seen, baseline_runs,
                         baseline_seen):
    from mc_project.project import recipe

    def med(values):
        return median(values)

    def spread(values):
        values = [v for v in values if v is not None]
        return f"{fmt_seconds(min(values))} .. {fmt_seconds(max(values))}" if values else "-"

    versions = sorted(int(v) for v in seen["versions"] if str(v).isdigit())
    out(f"{deploys} back-to-back git pushes, then {rollbacks} mc_project.rollback, while 2 clients "
        "(one new connection per request, one keep-alive) request the public port")
    out()
    table(["request loop", "requests", "failed", "non-2xx", "versions served"], [
        ["corpus: deploys + rollbacks", seen["requests"], seen["failed"], seen["non_2xx"],
         f"{len(versions)} ({versions[0]} .. {versions[-1]})" if versions else "none"],
        [f"baseline: plain git push + restart, {len(baseline_runs)} deploys", baseline_seen["requests"],
         baseline_seen["failed"], baseline_seen["non_2xx"], len(baseline_seen["versions"])],
    ], out=out)
    if seen["errors"]:
        out("corpus: first errors seen: " + "; ".join(seen["errors"][:3]))
    out()
    out(f"deploys live and answering: {len(runs)} of {deploys}; rollbacks done: {len(rollback_runs)} "
        f"of {rollbacks}")
    for line in problems:
        out("  PROBLEM " + line)
    out()
    if not runs:
        return

    phase_names = [p["phase"] for p in runs[0]["record"]["phases"]]
    rows = []
    for phase in phase_names:
        values = [p["seconds"] for r in runs for p in r["record"]["phases"]
                  if p["phase"] == phase and p.get("result") is True]
        ran = recipe.steps("cooking", phase, "before") + recipe.steps("cooking", phase, "after") \
            if recipe.runs("cooking", phase) else ()
        rows.append([f"phase {phase}" + (f" ({', '.join(ran)})" if ran else ""),
                     fmt_seconds(med(values)) if values else "skipped", spread(values)])
    source = runs[0]["steps"]["source"]
    for key in [k for k in runs[0]["steps"] if k != "source"]:
        values = [r["steps"].get(key) for r in runs]
        rows.append([f"  step {key}", fmt_seconds(med(values)), spread(values)])
    push_times = [r["push"] for r in runs]
    answer_times = [r["answer"] for r in runs]
    engine_times = [r["record"].get("seconds") for r in runs]
    baseline_full = [b["total with restart"] for b in baseline_runs]
    baseline_push = [b["plain total"] for b in baseline_runs]
    rows += [
        ["engine: the deploy as recorded (history.json seconds)", fmt_seconds(med(engine_times)),
         spread(engine_times)],
        ["git push wall time", fmt_seconds(med(push_times)), spread(push_times)],
        ["push start -> new version answers on the public port", fmt_seconds(med(answer_times)),
         spread(answer_times)],
        ["baseline: git push + git archive + symlink rename", fmt_seconds(med(baseline_push)),
         spread(baseline_push)],
        ["baseline: ... + app restart until the new version answers", fmt_seconds(med(baseline_full)),
         spread(baseline_full)],
        ["rollback: salt-call mc_project.rollback wall time",
         fmt_seconds(med([r["call"] for r in rollback_runs])), spread([r["call"] for r in rollback_runs])],
        ["rollback start -> the older version answers",
         fmt_seconds(med([r["answer"] for r in rollback_runs])), spread([r["answer"] for r in rollback_runs])],
    ]
    out(f"per deploy (median of {len(runs)}, min .. max); steps timed from the {source}")
    out()
    table(["", "median", "min .. max"], rows, out=out)
    out()
    answer_ratio = fmt_ratio(ratio(med(answer_times), med(baseline_full)))
    out(f"push start -> new version answering, corpus / baseline with restart: {answer_ratio}")
    out(f"requests failed under load: corpus {seen['failed']} (non-2xx {seen['non_2xx']}), "
        f"baseline {baseline_seen['failed']} (non-2xx {baseline_seen['non_2xx']}); "
        f"deploys or rollbacks that went wrong: {len(problems)}")


# --------------------------------------------------------------------------- (i) a 1-file change of a Django app

DJANGO_CHANGES = {False: 5, True: 2}  # --quick: 2 changes
DJANGO_TEMPLATE = "notes/templates/notes/index.html"

# What piku does on a push of a Python app, as a post-receive hook: the commit checked
# out over the app's work tree, the virtualenv reused unless requirements.txt is newer
# than it (pip only then), Django's collectstatic and migrate, then the web process
# restarted (here gunicorn, killed and started again on the same port).
PIKU_HOOK = r"""#!/bin/sh
set -e
while read old new ref; do rev=$new; done
say() {{ echo "-----> $*" >&2; }}
APP='{app}'; VENV='{venv}'; RUN='{run}'
export DATABASE_URL='sqlite:///{data}/db.sqlite3' CORPUS_DATA='{data}'
say checkout
git --work-tree="$APP" checkout -q -f "$rev"
first=
if [ ! -x "$VENV/bin/python" ]; then
    say virtualenv
    '{python}' -m venv "$VENV"
    first=1
fi
if [ -n "$first" ] || [ "$APP/requirements.txt" -nt "$VENV/bin/activate" ]; then
    say pip install -r requirements.txt
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$APP/requirements.txt" >&2
fi
cd "$APP"
say collectstatic
"$VENV/bin/python" manage.py collectstatic --noinput >&2
say migrate
"$VENV/bin/python" manage.py migrate --noinput >&2
say restart
if [ -f "$RUN/web.pid" ]; then
    pid=$(cat "$RUN/web.pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
fi
say stopped
setsid "$VENV/bin/gunicorn" mysite.wsgi --bind 127.0.0.1:{port} --workers 2 --pid "$RUN/web.pid" \
    --daemon --log-file "$RUN/web.log" </dev/null >/dev/null 2>&1
say started
"""


class PageWatch:
    """Polls ``GET /`` of the public port in a thread, from before a push, until it
    answers 200 with ``needle`` in the body: ``seen`` is when (monotonic), else None."""

    def __init__(self, port, needle, accept=None, interval=0.01):
        self.port, self.needle, self.interval = port, needle, interval
        self.headers = {"Accept": accept} if accept else {}
        self.seen = None
        self.last = "no answer yet"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def _get(self):
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (urllib.error.URLError, OSError):
            return None, ""

    def _poll(self):
        while not self.stopping.is_set():
            status, body = self._get()
            if status == 200 and self.needle in body:
                self.seen = time.monotonic()
                return
            self.last = f"{status} {body[:120]!r}"
            time.sleep(self.interval)

    def wait(self, timeout=30):
        self.thread.join(timeout)
        if self.seen is None:
            raise BenchError(f"127.0.0.1:{self.port} did not answer {self.needle!r} within {timeout}s "
                             f"(last: {self.last})")
        return self.seen

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()


def django_change(src, rev):
    """The one-file change: the page's template gets a new ``data-rev`` marker; returns
    the files to commit and what the new page shows."""
    import re

    with open(os.path.join(src, DJANGO_TEMPLATE), encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r'<h1(?: data-rev="\d+")?>', f'<h1 data-rev="{rev}">', text, count=1)
    return {DJANGO_TEMPLATE: text}, f'data-rev="{rev}"'


def warm_page(port, count=16):
    """Render the page in every worker of the live app before a push: Django's cached
    template loader reads a template on first use, so a worker that never rendered it
    would show a changed file from a checkout in place without any restart."""
    for _ in range(count):
        harness.http_get(port)


def _line_at(push, pred, after=None):
    for stamp, text in push.lines:
        if (after is None or stamp >= after) and pred(_stripped(text)):
            return stamp
    return None


def _line_after(push, stamp):
    """Arrival time of the first line that came strictly after ``stamp``."""
    for t, _ in push.lines:
        if stamp is not None and t > stamp:
            return t
    return None


def _between(start, end):
    return end - start if start is not None and end is not None else None


def django_steps(push, record):
    """Seconds of corpus's steps in one deploy of the Django app: the record's own when
    its steps carry ``seconds``, else the arrival times of the progress lines (as (g))."""
    base = step_seconds(push, record)
    if base.get("source") == "record":
        return base
    at = lambda pred, after=None: _line_at(push, pred, after)  # noqa: E731
    t_deploying = at(lambda s: s.startswith("-----> deploying"))
    t_build = at(lambda s: s == "-----> build")
    t_venv = at(lambda s: s.startswith("virtualenv reused") or s.startswith("virtualenv built"))
    t_static = at(lambda s: "static file" in s and "copied" in s, t_venv)
    t_post_build = at(lambda s: s == "-----> post_build")
    t_deploy = at(lambda s: s == "-----> deploy")
    t_release = at(lambda s: s.startswith("release: "), t_deploy)
    t_release_done = _line_after(push, t_release)
    t_started = at(lambda s: "started beside the live one" in s)
    return {
        "git push until the deploy starts (transfer, hook, agent hand-off, lock)":
            _between(push.started, t_deploying),
        "build: checkout into the build dir / project/, until the venv line": _between(t_build, t_venv),
        "install_dependencies: venv hard-linked (cp -al) + collectstatic": _between(t_venv, t_static),
        "build: after collectstatic (states, end of phase)": _between(t_static, t_post_build),
        "make_release + pack_bundle": base.get("make_release + pack_bundle"),
        "deploy: states until release:": _between(t_deploy, t_release),
        "run_release (release: manage.py migrate)": _between(t_release, t_release_done),
        "start_new (after release:)": _between(t_release_done, t_started),
        "move_traffic: health check": base.get("move_traffic: health check"),
        "move_traffic: switch": base.get("move_traffic: switch"),
        "retire_old (drain, stop) + prune + exit": base.get("retire_old (drain, stop) + prune + exit"),
        "source": "progress lines",
    }


class PikuBaseline:
    """piku-style: a bare repo whose post-receive hook (``PIKU_HOOK``) checks the commit
    out into the app's work tree, reuses the virtualenv, runs collectstatic and migrate,
    and restarts gunicorn on the same port."""

    def __init__(self, corpus, root, port):
        self.corpus = corpus
        self.root = root
        self.git_dir = os.path.join(root, "app.git")
        self.app = os.path.join(root, "app")
        self.run = os.path.join(root, "run")
        self.port = port

    def init(self):
        for path in (self.app, self.run, os.path.join(self.root, "data")):
            os.makedirs(path, exist_ok=True)
        git(self.root, "init", "-q", "--bare", "-b", "main", self.git_dir)
        hooks = os.path.join(self.git_dir, "hooks")
        for hook in os.listdir(hooks):
            os.unlink(os.path.join(hooks, hook))
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
        with open(os.path.join(hooks, "post-receive"), "w", encoding="utf-8") as fh:
            fh.write(PIKU_HOOK.format(app=self.app, venv=os.path.join(self.root, "venv"), run=self.run,
                                      data=os.path.join(self.root, "data"), port=self.port, python=python))
        os.chmod(os.path.join(hooks, "post-receive"), 0o755)

    def push(self, src, needle, accept=None):
        warm_page(self.port)
        with PageWatch(self.port, needle, accept) as watch:
            push = self.corpus.push(src, self.git_dir)
            seen = watch.wait()
        at = lambda s: _line_at(push, lambda t: t == "-----> " + s)  # noqa: E731
        t_checkout, t_static, t_migrate, t_restart, t_stopped, t_started = (
            at(s) for s in ("checkout", "collectstatic", "migrate", "restart", "stopped", "started"))
        t_pip = at("pip install -r requirements.txt")
        return {
            "push": push.seconds, "answer": seen - push.started, "pip": t_pip is not None,
            "steps": {
                "git push until the hook starts (transfer, receive)": _between(push.started, t_checkout),
                "git checkout -f into the work tree (+ pip when requirements changed)":
                    _between(t_checkout, t_static),
                "manage.py collectstatic --noinput": _between(t_static, t_migrate),
                "manage.py migrate --noinput": _between(t_migrate, t_restart),
                "restart: kill gunicorn (TERM), wait until it exited": _between(t_restart, t_stopped),
                "restart: start gunicorn (--daemon)": _between(t_stopped, t_started),
                "hook done -> push returns": _between(t_started, push.ended),
                "hook done -> the new version answers": _between(t_started, seen),
            },
        }

    def stop(self):
        pidfile = os.path.join(self.run, "web.pid")
        try:
            with open(pidfile, encoding="utf-8") as fh:
                pid = int(fh.read().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, 9)


def corpus_django_push(corpus, name, src, needle, accept=None):
    port = corpus.pillar[name]["port"]
    warm_page(port)
    with PageWatch(port, needle, accept) as watch:
        push = corpus.push_project(src, name)
        seen = watch.wait()
    record = corpus.history(name)[-1]
    if record.get("status") != "success" or record.get("commit") != git(src, "rev-parse", "HEAD"):
        raise BenchError(f"{name}: unexpected deploy record: {json.dumps(record)[:1000]}")
    return {"push": push.seconds, "answer": seen - push.started, "record": record,
            "steps": django_steps(push, record),
            "venv": "reused" if "virtualenv reused" in push.text() else "built"}


def bench_django_change(corpus, sizes, cooking_name, editable_name, base_port):
    section("i")
    changes = DJANGO_CHANGES[sizes.quick]
    baseline = PikuBaseline(corpus, os.path.join(corpus.root, "piku"), base_port)
    baseline.init()
    sides = [("cooking", cooking_name), ("editable", editable_name)]
    srcs = {name: corpus.source(name, example="django-app") for _, name in sides}
    srcs["piku"] = corpus.source("piku-django", example="django-app")
    first, runs = {}, {"cooking": [], "editable": [], "piku": []}
    try:
        # First pushes: each side builds its virtualenv (pip), migrates and starts the app.
        version = '"version": "1"'
        for label, name in sides:
            first[label] = corpus_django_push(corpus, name, srcs[name], version, "application/json")
        first["piku"] = baseline.push(srcs["piku"], version, "application/json")
        # The same one-file change, pushed to each side in turn.
        for rev in range(1, changes + 1):
            for label, name in sides + [("piku", "piku")]:
                files, needle = django_change(srcs[name], rev)
                corpus.commit(srcs[name], files, f"template rev {rev}")
                if label == "piku":
                    runs[label].append(baseline.push(srcs[name], needle))
                else:
                    runs[label].append(corpus_django_push(corpus, name, srcs[name], needle))
    finally:
        baseline.stop()
    report_django_change(changes, first, runs)
    return runs


def report_django_change(changes, first, runs):
    labels = ("cooking", "editable", "piku")

    def med(label, get):
        return median([get(r) for r in runs[label]])

    def spread(label, get):
        values = [v for v in (get(r) for r in runs[label]) if v is not None]
        return f"{fmt_seconds(min(values))} .. {fmt_seconds(max(values))}" if values else "-"

    def cells(get, only=labels):
        return [fmt_seconds(med(lb, get)) if lb in only else "" for lb in labels]

    out(f"examples/django-app: first push, then {changes} pushes each changing only "
        f"{DJANGO_TEMPLATE}; the new version is the page showing the new template, polled from the "
        "push's start")
    out("corpus: cooking (env staging) and editable (env dev); piku-style: a post-receive hook "
        "doing git checkout -f, pip only if requirements.txt changed, collectstatic, migrate, "
        "gunicorn kill + start")
    out()
    rows = [
        ["first push: wall time (builds the virtualenv)"] + [fmt_seconds(first[lb]["push"]) for lb in labels],
        ["first push: start -> version 1 answers"] + [fmt_seconds(first[lb]["answer"]) for lb in labels],
        [f"change: git push wall time (median of {changes})"] + cells(lambda r: r["push"]),
        ["change: push start -> new version answers"] + cells(lambda r: r["answer"]),
        ["  min .. max of the above"] + [spread(lb, lambda r: r["answer"]) for lb in labels],
        ["change: engine's deploy as recorded (history.json seconds)"]
        + cells(lambda r: r["record"].get("seconds"), ("cooking", "editable")),
    ]
    phase_names = [p["phase"] for p in runs["cooking"][0]["record"]["phases"]]
    for phase in phase_names:
        def get(r, phase=phase):
            return next((p["seconds"] for p in r["record"]["phases"]
                         if p["phase"] == phase and p.get("result") is True), None)
        rows.append([f"  phase {phase}"] + [fmt_seconds(med(lb, get)) if lb != "piku" and
                                            any(get(r) is not None for r in runs[lb]) else
                                            ("skipped" if lb != "piku" else "") for lb in labels])
    step_keys = [k for k in runs["cooking"][0]["steps"] if k != "source"]
    for key in [k for k in runs["editable"][0]["steps"] if k != "source" and k not in step_keys]:
        step_keys.append(key)
    for key in step_keys:
        rows.append([f"  step {key}"] + cells(lambda r, key=key: r["steps"].get(key), ("cooking", "editable")))
    for key in runs["piku"][0]["steps"]:
        rows.append([f"  piku: {key}"] + cells(lambda r, key=key: r["steps"].get(key), ("piku",)))
    source = runs["cooking"][0]["steps"].get("source", "")
    out(f"per change: medians; corpus steps timed from the {source}")
    out()
    table(["", "cooking (staging)", "editable (dev)", "piku-style"], rows, out=out)
    venvs = {lb: sorted({r["venv"] for r in runs[lb]}) for lb in ("cooking", "editable")}
    pips = sum(1 for r in runs["piku"] if r["pip"])
    out(f"virtualenv on the changes: cooking {'/'.join(venvs['cooking'])}, editable "
        f"{'/'.join(venvs['editable'])}; piku-style ran pip on {pips} of {changes}")
    out()
    piku_push, piku_answer = med("piku", lambda r: r["push"]), med("piku", lambda r: r["answer"])
    for label in ("cooking", "editable"):
        push, answer = med(label, lambda r: r["push"]), med(label, lambda r: r["answer"])
        over = ratio(answer, piku_answer)
        verdict = "meets" if over is not None and over <= 1.0 and answer <= 3.0 else "misses"
        out(f"{label} / piku-style: wall {fmt_ratio(ratio(push, piku_push))}, until the new version answers "
            f"{fmt_ratio(ratio(answer, piku_answer))} ({fmt_seconds(answer)}; goal <= 1.00x and <= 3 s: "
            f"{verdict})")


# --------------------------------------------------------------------------- main

def versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    import salt.version
    return "Python {}, salt {}, {}, {}, {} CPU(s)".format(
        platform.python_version(), salt.version.__version__, first_line(["git", "--version"]),
        first_line(["rsync", "--version"]), os.cpu_count())


def make_sqlite(path, size):
    """An SQLite database of about ``size`` bytes, made fast (no journal, no fsync)."""
    import sqlite3

    rows = max(1, size // 4096)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)")
        conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) "
                     "INSERT INTO t SELECT x, randomblob(4000) FROM c", (rows,))
        conn.commit()
    finally:
        conn.close()


def time_database(work, label, size):
    """Snapshot and restore times of one database, each against a plain cp of the file."""
    from mc_project.project import database

    src, dump, back = (os.path.join(work, name) for name in ("db.sqlite3", "dump.sqlite3", "back.sqlite3"))
    made = time.monotonic()
    make_sqlite(src, size)
    made = time.monotonic() - made
    subprocess.run(["sync"], check=False)

    def timed(func):
        started = time.monotonic()
        func()
        return time.monotonic() - started

    snapshot = timed(lambda: database.backup_sqlite(src, dump))
    copy = timed(lambda: shutil.copyfile(src, back))
    os.unlink(back)
    restore = timed(lambda: database.restore_sqlite(dump, back))
    copy_back = timed(lambda: shutil.copyfile(dump, src))
    return [label, fmt_bytes(os.path.getsize(dump)), fmt_seconds(made), fmt_seconds(snapshot),
            fmt_seconds(copy), fmt_ratio(ratio(snapshot, copy)), fmt_seconds(restore),
            fmt_ratio(ratio(restore, copy_back))]


def bench_database(sizes, root):
    """(h): what the database costs a deploy (snapshot) and an undo (restore)."""
    section("h")
    targets = [("10 MiB", 10 * MB)] if sizes.quick else [("100 MiB", 100 * MB), ("1 GiB", 1024 * MB)]
    os.makedirs(root, exist_ok=True)
    rows = []
    for label, size in targets:
        work = tempfile.mkdtemp(prefix="corpus-bench-db-", dir=root)
        try:
            rows.append(time_database(work, label, size))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    table(["database", "dump size", "generated in", "snapshot (backup API)", "cp of the file",
           "snapshot / cp", "restore", "restore / cp"], rows, out=out)


def bench_containers():
    """Clone vs template create, on a throwaway LXC path (root and LXC needed)."""
    import containers

    section("d")
    if os.geteuid() != 0 or not shutil.which("lxc-create"):
        out("skipped: needs root and LXC")
        return
    lxc_path = tempfile.mkdtemp(prefix="corpus-bench-lxc-", dir="/var/tmp")
    try:
        result = containers.clone_vs_create(lxc_path)
    finally:
        shutil.rmtree(lxc_path, ignore_errors=True)
    out("{:<40}{:>12}".format("clone from the golden image", fmt_seconds(result["clone_seconds"])))
    out("{:<40}{:>12}".format("lxc-create -t debian (debootstrap)", fmt_seconds(result["create_seconds"])))
    out("{:<40}{:>11.0f}x".format("create / clone", result["create_over_clone"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (smoke run)")
    parser.add_argument("--root", default="/var/tmp/corpus-bench", help="throwaway working root")
    parser.add_argument("--keep", action="store_true", help="keep the root afterwards (apps are stopped)")
    parser.add_argument("--only", default="abcdefghijkpwxr", help="sections to run, e.g. 'ac'")
    args = parser.parse_args(argv)
    sizes = Sizes(args.quick)
    started = time.monotonic()
    out("corpus bench{} under {}".format(" (--quick)" if args.quick else "", args.root))
    out(versions())

    projects = {
        "bench-wsgi": {"env": "staging", "port": free_port()},
        "bench-rb-small": {"env": "staging", "port": free_port()},
        "bench-rb-large": {"env": "staging", "port": free_port()},
        "bench-disk": {"env": "staging", "port": free_port(), "keep_releases": sizes.disk_releases},
        **{"bench-change-{}-{}".format(size, kind): {"env": "staging", "port": free_port()}
           for size in ("small", "large") for kind in ("tra", "gen")},
        # (g) rolls back one release at a time: keep enough of them.
        "bench-zdt": {"env": "staging", "port": free_port(), "keep_releases": ZDT_ROUNDS[sizes.quick][1] + 2},
        # (i): the same Django app, cooking and editable
        "bench-django-staging": {"env": "staging", "port": free_port()},
        "bench-django-dev": {"env": "dev", "port": free_port()},
    }
    corpus = Corpus(args.root)
    notes = []
    failed = False
    try:
        corpus.setup(projects)
        if "a" in args.only:
            bench_push(corpus, sizes, "bench-wsgi", free_port())
        if "b" in args.only:
            bench_rollback(corpus, sizes, "bench-rb-small", "bench-rb-large", notes)
        if "c" in args.only:
            bench_disk(corpus, sizes, "bench-disk", "bench-change-small", "bench-change-large", notes)
        if "g" in args.only:
            bench_zero_downtime(corpus, sizes, "bench-zdt", free_port())
        if "h" in args.only:
            bench_database(sizes, os.path.join(args.root, "database"))
        if "i" in args.only:
            bench_django_change(corpus, sizes, "bench-django-staging", "bench-django-dev", free_port())
        if "j" in args.only:
            api.bench_api(section, out, notes, quick=args.quick)
        if "k" in args.only:
            inventory.bench_inventory(section, out, notes, quick=args.quick)
        if "p" in args.only:
            plans.bench_plans(section, out, notes, quick=args.quick)
        if "w" in args.only:
            walks.bench_walks(section, out, notes, quick=args.quick)
        if "x" in args.only:
            health.bench_health(section, out, notes, quick=args.quick)
        if "d" in args.only and not args.quick:
            bench_containers()
        if not args.quick:
            controller.bench_controller(args.only, section, out, notes)
        if "r" in args.only and not args.quick:
            redeploy.bench_redeploy(section, out, notes)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        failed = True
        out()
        out("BENCH FAILED: {}".format(exc))
    finally:
        errors = corpus.teardown(keep=args.keep)
        for error in errors:
            notes.append("cleanup: " + error)
    out()
    for note in notes:
        out("note: " + note)
    out("total bench time {}; {} {}".format(fmt_seconds(time.monotonic() - started),
                                           args.root, "kept" if args.keep else "removed"))
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
