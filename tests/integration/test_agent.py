"""Pushes go through the warm deploy agent: real git push, real hook, real agent.

* A second push is served by the agent the first push started (same pid), its output
  reaches the pusher while the deploy runs, and the new version answers over HTTP.
* A failing deploy fails the push with the deploy's error line; the branch stays.
* Killing the push kills the deploy's whole process group at once; the agent stays and
  the next push recovers the interrupted deploy.
* A changed Salt pillar is seen by the next push, without a new agent.
* An agent whose code changed answers "restart": the push starts a fresh one.
* Starting it twice is harmless; an agent that cannot start falls back to salt-call.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import psutil
import pytest
from support.corpus import EXAMPLES, hold_push, sample_project
from support.web import get_json
from support.git import head, ls_remote
from support.wait import process_ended, wait_for

from mc_project import resources
from mc_project.project import agent, rundir
from mc_project.project import agent_client as proto

SLOW = sample_project("slow")


@pytest.fixture
def corpus(corpus):
    """The usual per-test corpus; its deploy agent is stopped at the end."""
    yield corpus
    agent.stop(corpus.run.config_dir, corpus.root)


def agent_paths(corpus):
    return agent.agent_paths(corpus.run.config_dir, corpus.root)


def agent_pid(corpus):
    """The pid of the agent answering on the corpus's socket, or None."""
    answer = agent.ask(agent_paths(corpus)["socket"], {"op": "ping"})
    return answer["pong"] if answer else None


def group_of(pgid):
    """Live processes of process group ``pgid`` (zombies left for their parent aside)."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.info["pid"])
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def answer(corpus, name):
    return get_json(corpus.port(name))


def test_second_push_is_served_by_the_running_agent_and_streams(corpus, tmp_path):
    name = "agent-app"
    paths = corpus.init(name, env="staging")
    src = corpus.source(SLOW, name=name)
    first = corpus.push(src, name)
    assert first.returncode == 0, first.stderr
    assert "remote: -----> deploying" in first.stderr
    pid = agent_pid(corpus)
    assert pid, "the first push left no agent listening"
    sock = agent_paths(corpus)
    preferred = os.path.join(corpus.root, ".corpus-agent")
    if len(preferred) <= rundir.MAX_DIR:
        assert sock["dir"] == preferred
    else:  # too long a path for a socket: a private directory named after the config
        assert os.path.dirname(sock["dir"]) == rundir.base_dir()
    assert os.stat(sock["dir"]).st_mode & 0o777 == 0o700
    assert os.stat(sock["socket"]).st_mode & 0o777 == 0o600
    assert int(read(sock["pid"])) == pid

    push, gate, _ = hold_push(corpus, src, name, "build", 2, tmp_path)
    try:
        # The pusher already sees the deploy's progress while it is held in build.
        wait_for(lambda: "-----> build" in push.output, timeout=60, what="streamed progress")
        assert push.proc.poll() is None
        # The child running this deploy (the first push's child may not be reaped yet).
        titles = []
        for child in agent.ask(sock["socket"], {"op": "ping"})["children"]:
            try:
                titles.append(" ".join(psutil.Process(child).cmdline()))
            except psutil.NoSuchProcess:
                continue
        assert [t for t in titles if "mc_project.deploy" in t and name in t], titles
        held = time.monotonic()
    finally:
        os.unlink(gate)
    assert push.wait() == 0, push.output
    assert max(t for t, _ in push.lines) > held  # the rest came after the gate opened
    assert "is live" in push.output
    assert agent_pid(corpus) == pid
    assert answer(corpus, name)["version"] == "2"
    assert head(paths["project_git"], "refs/heads/main") == head(src)
    log = read(sock["log"])
    log = log[log.rfind("starting for"):]  # this agent's lines (the log outlives agents)
    assert log.count(f"call mc_project.deploy {name}") == 2


def test_failing_deploy_fails_the_push_and_keeps_the_branch(corpus):
    name = "agent-broken"
    paths = corpus.init(name, env="staging")
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    good = ls_remote(paths["project_git"])
    pid = agent_pid(corpus)

    shutil.copy(os.path.join(EXAMPLES, "broken-build", ".salt", "build.sls"),
                os.path.join(src, ".salt", "build.sls"))
    bad = corpus.commit(src, {"VERSION": "2\n"}, "a build that fails")
    proc = corpus.push(src, name)
    assert proc.returncode != 0, proc.stderr
    # corpus's sentence, once, without Salt's wrapper
    assert "Error running" not in proc.stderr
    assert sum("failed in phase build and was rolled back" in line for line in proc.stderr.splitlines()) == 1
    assert "pre-receive hook declined" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert ls_remote(paths["project_git"]) == good != bad
    assert answer(corpus, name)["version"] == "1"
    assert corpus.history(name)[-1]["status"] == "failed"
    assert agent_pid(corpus) == pid


def test_killing_the_push_kills_the_deploy_at_once(corpus, tmp_path):
    name = "agent-killed"
    paths = corpus.init(name, env="staging")
    src = corpus.source(SLOW, name=name)
    assert corpus.push(src, name).returncode == 0
    good = ls_remote(paths["project_git"])
    pid = agent_pid(corpus)

    push, gate, _ = hold_push(corpus, src, name, "build", 2, tmp_path)
    try:
        child = agent.ask(agent_paths(corpus)["socket"], {"op": "ping"})["children"][0]
        group = group_of(child)
        pause = int(read(gate + ".reached"))
        assert child in group and pause in group, (child, group, pause)
        push.kill()
        # The deploy's process group is gone: the child and what it ran (the paused build).
        wait_for(lambda: not group_of(child), timeout=10, what="the deploy's processes to die")
        assert process_ended(pause)
    finally:
        os.unlink(gate)
        push.kill()
    assert agent_pid(corpus) == pid
    assert ls_remote(paths["project_git"]) == good
    assert corpus.history(name)[-1]["status"] == "running"  # interrupted: the next push recovers it

    corpus.commit(src, {"VERSION": "3\n", "PAUSE": None}, "v3")
    nxt = corpus.push(src, name)
    assert nxt.returncode == 0, nxt.stderr
    assert "recovering interrupted deploy" in nxt.stderr
    assert answer(corpus, name)["version"] == "3"


def test_changed_pillar_is_seen_by_the_next_push(corpus):
    name = "agent-pillar"
    corpus.init(name, env="staging")
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    assert answer(corpus, name)["greeting"] == "hello"
    pid = agent_pid(corpus)

    corpus.set_pillar(name, {"env": "staging", "data": {"greeting": "hola"}})
    corpus.commit(src, {"VERSION": "2\n"}, "v2")
    proc = corpus.push(src, name)
    assert proc.returncode == 0, proc.stderr
    body = answer(corpus, name)
    assert body["greeting"] == "hola" and body["version"] == "2"
    assert agent_pid(corpus) == pid  # refreshed in place, not restarted


def test_agent_whose_code_changed_is_replaced(corpus):
    name = "agent-upgrade"
    corpus.init(name, env="staging")
    src = corpus.source("wsgi-app", name=name)
    assert corpus.push(src, name).returncode == 0
    old = agent_pid(corpus)
    assert old

    # What an upgrade of corpus does to the agent's fingerprint: a newer module file.
    module = os.path.join(resources.PACKAGE_DIR, "project", "agent_client.py")
    st = os.stat(module)
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        corpus.commit(src, {"VERSION": "2\n"}, "v2")
        proc = corpus.push(src, name)
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert proc.returncode == 0, proc.stderr
    assert answer(corpus, name)["version"] == "2"
    new = agent_pid(corpus)
    assert new and new != old
    wait_for(lambda: process_ended(old), timeout=30, what="the old agent to exit")
    assert "stopping: the corpus code changed" in read(agent_paths(corpus)["log"])


def test_starting_twice_is_harmless_and_idle_agent_stops(corpus):
    corpus.init("agent-start")
    cmd = [sys.executable, "-m", "mc_project.project.agent", "--config-dir", corpus.run.config_dir,
           "--local", "--projects-root", corpus.root, "--idle-timeout", "5"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    pid = agent_pid(corpus)
    assert pid
    assert subprocess.run(cmd, check=False, capture_output=True, timeout=60).returncode == 0
    assert agent_pid(corpus) == pid
    title = f"corpus-agent -c {corpus.run.config_dir} --local"
    running = [p.pid for p in psutil.process_iter(["cmdline"])
               if title in " ".join(p.info["cmdline"] or [])]
    assert running == [pid]
    # Idle for longer than its --idle-timeout: it stops and removes its socket.
    wait_for(lambda: not psutil.pid_exists(pid), timeout=30, what="the idle agent to stop")
    assert not os.path.exists(agent_paths(corpus)["socket"])


def test_client_runs_a_call_and_falls_back_to_salt_call(corpus, tmp_path):
    name = "agent-fallback"
    corpus.init(name)
    salt_call = "{} -c {} --local".format(os.path.join(os.path.dirname(sys.executable), "salt-call"),
                                          corpus.run.config_dir)
    base = [sys.executable, "-m", "mc_project.project.agent_client", "--salt-call", salt_call,
            "--projects-root", corpus.root]
    out_file = str(tmp_path / "ret.json")
    ok = subprocess.run(base + ["--out-file", out_file, "mc_project.settings", name, "port=8123"],
                        check=False, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(read(out_file))["local"]["port"] == 8123
    # A CommandExecutionError: salt-call's line and retcode 1.
    bad = subprocess.run(base + ["mc_project.settings", "bad/name"], check=False, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1
    assert "Error running 'mc_project.settings':" in bad.stderr
    # The call gets the client's CORPUS_KILL_AT, and only that call.
    env = dict(os.environ, CORPUS_KILL_AT="build")
    for environ, expected in ((env, "build"), (os.environ, "")):
        got = subprocess.run(base + ["--out-file", out_file, "environ.get", "CORPUS_KILL_AT"],
                             check=False, capture_output=True, text=True, timeout=120, env=environ)
        assert got.returncode == 0, got.stderr
        assert json.loads(read(out_file))["local"] == expected
    agent.stop(corpus.run.config_dir, corpus.root)

    # A socket directory open to others is refused: the client says so and runs salt-call.
    sock_dir = agent_paths(corpus)["dir"]
    os.chmod(sock_dir, 0o755)
    try:
        fallback = subprocess.run(base + ["--out-file", out_file, "mc_project.settings", name],
                                  check=False, capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(sock_dir, 0o700)
    assert fallback.returncode == 0, fallback.stderr
    assert "running salt-call instead" in fallback.stderr
    assert json.loads(read(out_file))["local"]["name"] == name
    assert proto.SOCKET_NAME not in os.listdir(sock_dir)
