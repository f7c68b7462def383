"""What a user of the host sees of a project's privileges when corpus runs as root.

examples/wsgi-app deployed in env staging (cooking) and env dev (editable), and the
envecho test project, each with a secret in the ``environment`` of its private pillar
(``init.sls`` pushed to ``git/pillar.git`` before the code):

* the app and its front (haproxy, once it has bound the public port) run as the
  project's user ``app-<name>``, never as uid 0;
* what holds or may echo the secret (``pillar/``, ``git/``, ``supervisor/``, ``logs/``) is
  root's and closed to others; ``data/`` is the app user's; the app user cannot write
  the release it runs, nor add a file to ``current/``; no file that ``nobody`` can read
  holds the secret, and supervisord.conf never does;
* the unix sockets and pid file of the project's supervisord and front are in private
  directories, never in a world-writable one, also under a projects root too long for a
  socket path;
* a pillar value holding a newline and ``[program:evil]`` adds no program to supervisord
  and reaches the app verbatim.
"""

import configparser
import json
import os
import pwd
import secrets
import stat
import subprocess
import sys
import threading
import time

import psutil
import pytest
from support.corpus import Corpus, pillar_source, sample_project
from support.saltcall import local_salt
from support.web import http_get

from mc_project.project import agent, supervisor

pytestmark = pytest.mark.needs("root")  # apps run as users of their own only when corpus runs as root

ENVECHO = sample_project("envecho")
SECRET = "lp-secret-" + secrets.token_hex(12)
PWNED = "/tmp/pwned-" + secrets.token_hex(6)
INJECTED = f"first line\n[program:evil]\ncommand=touch {PWNED}\nautostart=true\n"
PROGRAMS = {"front", "web-a", "web-b"}


# --------------------------------------------------------------------------- helpers

def environment_sls(values):
    """``init.sls`` setting ``environment``; JSON strings are YAML double-quoted strings."""
    return "environment:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in values.items())


def deploy(corpus, name, env, example, environment):
    """init, push the private pillar (stored: nothing live yet), then push the code."""
    paths = corpus.init(name, env=env)
    proc = corpus.push(pillar_source(corpus, name, environment_sls(environment)), name, kind="pillar")
    assert proc.returncode == 0, proc.stderr
    proc = corpus.push(corpus.source(example, name=name), name)
    assert proc.returncode == 0, proc.stderr
    cfg = corpus.settings(name)
    assert http_get(cfg["port"])[0] == 200
    return {"name": name, "paths": paths, "cfg": cfg, "user": "app-" + name}


def sup(project):
    return {"name": project["name"], "paths": project["paths"]}


def process_info(project):
    """supervisord's pid and {program: pid} of what it runs."""
    server = supervisor.rpc(sup(project))
    return server.getPID(), {p["name"]: p["pid"] for p in server.getAllProcessInfo() if p["pid"]}


def status_ids(pid):
    """The Uid, Gid (real, effective, saved, filesystem) and Groups lines of /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in value.split()]
    return out


def listening_pid(port):
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def as_user(user, script):
    """``sh -c script`` as ``user`` (runuser: no password, no login shell needed)."""
    return subprocess.run(["runuser", "-u", user, "--", "sh", "-c", script], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30, check=False)


def readable_by(user, path):
    return subprocess.run(["runuser", "-u", user, "--", "cat", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                          check=False).returncode == 0


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def assert_root_private(path, want):
    st = os.lstat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, want), \
        f"{path}: owner {st.st_uid}:{st.st_gid} mode {stat.S_IMODE(st.st_mode):o}, wanted root:root {want:o}"


def files_under(top):
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def unix_listeners(pids):
    """{socket path: pid} of the unix sockets ``pids`` listen on (``ss -xlp``), with
    the temporary name a daemon bound before renaming it reduced to its directory."""
    proc = subprocess.run(["ss", "-xlpn"], capture_output=True, text=True, check=True)
    found = {}
    for line in proc.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 7 or not fields[4].startswith("/"):
            continue
        for pid in pids:
            if f"pid={pid}," in line:
                found[fields[4]] = pid
    return found


def assert_private_socket_dir(path):
    """The directory of a socket or pid file: root's, 0700, not /tmp (nor any
    world-writable directory) itself."""
    parent = os.path.dirname(path)
    assert parent not in ("/tmp", "/var/tmp", "/run", "/dev/shm"), path
    st = os.stat(parent)
    assert not st.st_mode & 0o002, f"{path} is in a world-writable directory"
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700), \
        f"{path} is in {parent} (owner {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}), not a private directory"


# --------------------------------------------------------------------------- the projects

@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    corpus = Corpus(tmp_path_factory.mktemp("least-privilege"), local_salt)
    try:
        yield {
            "staging": deploy(corpus, "lp-stage", "staging", "wsgi-app", {"SECRET": SECRET}),
            "dev": deploy(corpus, "lp-dev", "dev", "wsgi-app", {"SECRET": SECRET}),
            "inject": deploy(corpus, "lp-inject", "staging", ENVECHO,
                             {"SECRET": SECRET, "INJECTED": INJECTED}),
            "corpus": corpus,
        }
    finally:
        corpus.stop_all()
        agent.stop(corpus.run.config_dir, corpus.root)
        if os.path.exists(PWNED):
            os.unlink(PWNED)


ENVS = ("staging", "dev", "inject")


# --------------------------------------------------------------------------- who runs what

@pytest.mark.parametrize("env", ENVS)
def test_app_and_front_run_as_the_project_user(projects, env):
    project = projects[env]
    uid = pwd.getpwnam(project["user"]).pw_uid
    supervisord, programs = process_info(project)
    assert "front" in programs and any(p.startswith("web-") for p in programs), programs
    for program, pid in programs.items():
        ids = status_ids(pid)
        assert ids["Uid"] == [uid] * 4, "{} (pid {}) Uid: {}".format(program, pid, ids["Uid"])
        assert 0 not in ids["Gid"] and 0 not in ids["Groups"], f"{program} (pid {pid}): {ids}"
    # What answers on the public port (haproxy, after binding it) and on the live
    # slot's loopback port (the app) is that user too, and a child of the project's
    # supervisord (supervisord itself stays root to manage them).
    with open(os.path.join(project["paths"]["supervisor"], "state.json"), encoding="utf-8") as fh:
        slot_port = json.load(fh)["live"]["port"]
    for port in (project["cfg"]["port"], slot_port):
        pid = listening_pid(port)
        assert pid is not None, f"nothing listens on {port}"
        assert status_ids(pid)["Uid"] == [uid] * 4, port
        assert psutil.Process(pid).ppid() == supervisord
    assert {psutil.Process(pid).username() for pid in programs.values()} == {project["user"]}
    assert psutil.Process(supervisord).children(recursive=True)


def test_the_app_itself_says_which_ids_it_has(projects):
    status, body = http_get(projects["inject"]["cfg"]["port"], "/whoami")
    assert status == 200, body
    ids = json.loads(body)
    assert ids["uid"] != 0 and ids["euid"] != 0 and ids["gid"] != 0 and 0 not in ids["groups"], ids


# --------------------------------------------------------------------------- modes and owners

@pytest.mark.parametrize("env", ENVS)
def test_secrets_and_configs_are_roots_and_closed_to_others(projects, env):
    paths = projects[env]["paths"]
    for key in ("pillar", "supervisor", "logs", "snapshots", "archives", "build"):
        assert_root_private(paths[key], 0o700)
    assert_root_private(os.path.dirname(paths["pillar_git"]), 0o700)  # git/, so git/pillar.git
    assert os.path.dirname(paths["pillar_git"]) == os.path.dirname(paths["project_git"])
    # Every file of supervisor/ (the slots' specs holding the secret, supervisord.conf,
    # haproxy.cfg, state.json) and the sockets and pid file under it.
    found = set()
    for path in files_under(paths["supervisor"]):
        st = os.lstat(path)
        found.add(os.path.basename(path))
        assert st.st_uid == 0 and not st.st_mode & 0o077, f"{path} is {stat.S_IMODE(st.st_mode):o}"
        if stat.S_ISDIR(st.st_mode):
            assert_root_private(path, 0o700)
        elif stat.S_ISREG(st.st_mode):
            assert_root_private(path, 0o600)
    assert {"supervisord.conf", "haproxy.cfg", "state.json"} <= found, found
    specs = [f for f in found if f.startswith("web-") and f.endswith(".json")]
    assert specs and any(SECRET in read(os.path.join(paths["supervisor"], f)) for f in specs)
    deploy_logs = [f for f in os.listdir(paths["logs"]) if f.startswith("deploy-")]
    assert deploy_logs
    for name in deploy_logs + ["web.log", "front.log"]:
        assert_root_private(os.path.join(paths["logs"], name), 0o600)


def test_private_files_are_0600_even_inside_private_dirs(projects):
    paths = projects["staging"]["paths"]
    files = [p for key in ("pillar", "logs", "supervisor") for p in files_under(paths[key])
             if os.path.isfile(p)]
    assert os.path.join(paths["pillar"], "init.sls") in files
    open_files = [f"{os.path.relpath(p, paths['root'])} {mode(p):o}" for p in files if mode(p) & 0o077]
    assert not open_files, open_files


@pytest.mark.parametrize("env", ENVS)
def test_data_belongs_to_the_app_user(projects, env):
    project = projects[env]
    st = os.lstat(project["paths"]["data"])
    entry = pwd.getpwnam(project["user"])
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (entry.pw_uid, entry.pw_gid, 0o750)
    probe = os.path.join(project["paths"]["data"], f"probe-{os.getpid()}")
    assert as_user(project["user"], f"echo x > {probe}").returncode == 0
    os.unlink(probe)


@pytest.mark.parametrize("env", ENVS)
def test_the_app_user_cannot_write_the_code_it_runs(projects, env):
    project = projects[env]
    current = project["paths"]["current"]
    tree = os.path.realpath(current)
    if env == "dev":
        assert tree == os.path.realpath(project["paths"]["project"])
    else:
        assert os.path.dirname(tree) == os.path.realpath(project["paths"]["releases"])
    user = project["user"]
    files = [p for p in files_under(tree) if os.path.isfile(p)]
    assert files
    for path in files:
        proc = as_user(user, f"echo x >> '{path}'")
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, path
    dirs = [current] + [p for p in files_under(tree) if os.path.isdir(p)]
    for where in dirs:
        proc = as_user(user, f"echo x > '{where}/added-by-the-app'")
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, where
        assert not os.path.exists(os.path.join(where, "added-by-the-app"))
    proc = as_user(user, f"mv '{files[0]}' '{files[0]}.moved'")
    assert proc.returncode != 0 and os.path.exists(files[0])
    if env != "dev":
        for path in files:
            assert not mode(path) & 0o222, f"{path} is writable ({mode(path):o})"


# --------------------------------------------------------------------------- the secret

@pytest.mark.parametrize("env", ENVS)
def test_the_secret_is_in_no_file_nobody_can_read(projects, env):
    project = projects[env]
    root = project["paths"]["root"]
    holding = []
    for path in files_under(root):
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as fh:
                if SECRET.encode() in fh.read():
                    holding.append(path)
    assert holding, "the secret was expected at least in pillar/init.sls and a slot's spec"
    readable = [p for p in holding if readable_by("nobody", p)]
    assert not readable, readable
    # The same as nobody would look for it: a recursive grep from the project root.
    proc = subprocess.run(["runuser", "-u", "nobody", "--", "grep", "-rlF", SECRET, root],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout == "", proc.stdout
    conf = read(supervisor.conf_path(sup(project)))
    assert SECRET not in conf
    assert SECRET not in read(os.path.join(project["paths"]["supervisor"], "haproxy.cfg"))


def test_the_app_gets_the_secret(projects):
    status, body = http_get(projects["inject"]["cfg"]["port"], "/env?name=SECRET")
    assert status == 200 and json.loads(body)["value"] == SECRET, body


def test_a_pillar_push_never_opens_the_pillar_to_others(projects):
    """Watch pillar/ and pillar/init.sls while pillar pushes land."""
    corpus, project = projects["corpus"], projects["staging"]
    pillar = project["paths"]["pillar"]
    src = os.path.join(corpus.base, "src", project["name"] + "-pillar")
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            for path in (pillar, os.path.join(pillar, "init.sls")):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if st.st_mode & 0o004:
                    seen.add(f"{os.path.relpath(path, project['paths']['root'])} {stat.S_IMODE(st.st_mode):o}")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        for n in range(3):
            corpus.commit(src, {"init.sls": environment_sls({"SECRET": SECRET, "ROUND": str(n)})},
                          f"round {n}")
            proc = corpus.push(src, project["name"], kind="pillar")
            assert proc.returncode == 0, proc.stderr
            if seen:
                break
    finally:
        stop.set()
        thread.join()
    assert not seen, f"open to others during a pillar push: {sorted(seen)}"


# --------------------------------------------------------------------------- sockets

@pytest.mark.parametrize("env", ENVS)
def test_sockets_and_pid_file_are_in_private_dirs(projects, env):
    project = projects[env]
    supervisord, programs = process_info(project)
    listeners = unix_listeners([supervisord, programs["front"]])
    assert set(listeners.values()) == {supervisord, programs["front"]}, listeners
    for path in listeners:
        assert_private_socket_dir(path)
    parser = configparser.RawConfigParser()
    parser.read(supervisor.conf_path(sup(project)))
    pidfile = parser["supervisord"]["pidfile"]
    assert read(pidfile).strip() == str(supervisord)
    assert_private_socket_dir(pidfile)


def test_the_deploy_agent_keeps_its_socket_pid_file_and_log_private(projects):
    corpus = projects["corpus"]
    paths = agent.agent_paths(corpus.run.config_dir, corpus.root)
    if not os.path.exists(paths["pid"]):
        pytest.skip("the pushes fell back to salt-call: no deploy agent ran")
    pid = int(read(paths["pid"]))
    listeners = unix_listeners([pid])
    assert listeners, "the deploy agent (pid {}) listens on no unix socket".format(pid)
    for path in list(listeners) + [paths["pid"], paths["log"]]:
        assert_private_socket_dir(path)
    for path in (paths["socket"], paths["pid"], paths["log"]):
        st = os.lstat(path)
        assert st.st_uid == 0 and not st.st_mode & 0o077, f"{path} is {stat.S_IMODE(st.st_mode):o}"
    assert SECRET not in read(paths["log"])


def test_a_long_projects_root_keeps_its_sockets_private(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("long"))
    base = os.path.join(base, "a-projects-root-whose-path-is-too-long-for-a-unix-socket-" * 2)
    os.makedirs(base)
    corpus = Corpus(base, local_salt)
    name = "lp-long"
    try:
        paths = corpus.init(name, env="staging")
        assert len(os.path.join(paths["supervisor"], "run", "supervisor.sock")) > 108
        proc = corpus.push(corpus.source("wsgi-app", name=name), name)
        assert proc.returncode == 0, proc.stderr
        status, body = http_get(corpus.port(name), "/")
        assert status == 200 and json.loads(body)["version"] == "1", body
        project = {"name": name, "paths": paths}
        supervisord, programs = process_info(project)
        listeners = unix_listeners([supervisord, programs["front"]])
        assert set(listeners.values()) == {supervisord, programs["front"]}, listeners
        for path in listeners:
            assert_private_socket_dir(path)
            assert not path.startswith(paths["root"]) and len(path) < 108, path
    finally:
        corpus.stop_all()
        agent.stop(corpus.run.config_dir, corpus.root)


# --------------------------------------------------------------------------- injection

def test_a_newline_in_a_pillar_value_adds_no_program(projects):
    project = projects["inject"]
    conf_path = supervisor.conf_path(sup(project))
    text = read(conf_path)
    assert "evil" not in text and PWNED not in text
    parser = configparser.RawConfigParser()
    parser.read(conf_path)
    programs = {s.split(":", 1)[1] for s in parser.sections() if s.startswith("program:")}
    assert programs <= PROGRAMS and "front" in programs, parser.sections()
    _, running = process_info(project)
    server = supervisor.rpc(sup(project))
    assert {p["name"] for p in server.getAllProcessInfo()} <= PROGRAMS
    assert set(running) <= PROGRAMS
    ctl = subprocess.run([os.path.join(os.path.dirname(sys.executable), "supervisorctl"),
                          "-c", conf_path, "status"], capture_output=True, text=True, timeout=30, check=False)
    listed = {line.split()[0] for line in ctl.stdout.splitlines() if line.strip()}
    assert listed <= PROGRAMS and "front" in listed, ctl.stdout + ctl.stderr
    time.sleep(1)  # an injected program would have started with the others
    assert not os.path.exists(PWNED)
    status, body = http_get(project["cfg"]["port"], "/env?name=INJECTED")
    assert status == 200 and json.loads(body)["value"] == INJECTED, body

