"""Controller benchmarks: a real controller, this machine linked as a compute node.

(e) ``mc_cloud.init_env`` end to end, with the time of each of its steps, and its
    ``destroy_env``; then ``corpus init_env`` (the command, through the controller's
    ``corpus-api``, which runs the job in a process that is already up);
(f) 1, 4 and 8 environments created in parallel (one ``salt-run`` each) vs the
    same number one after another.

The set-up is the operator's: ``corpus-controller init`` (its master on free
ports, a real ``pdns_server`` for the DNS step, no mail relay), a private sshd on
this machine's non-loopback address, then ``salt-run mc_cloud.link_node`` over
it. Containers live under their own LXC path; everything is torn down at the
end, also after a failure.
"""

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from harness import REPO_ROOT, BenchError, fmt_ratio, fmt_seconds, free_port, ratio, table

sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from mc_project.api import process as api_process  # noqa: E402
from mc_project.api import settings as api_settings  # noqa: E402
from mc_project.controller import cli, config, wheelhouse  # noqa: E402
from mc_project.controller.nodes import nft_table_for, node_paths  # noqa: E402
from mc_project.node import lxc, spares  # noqa: E402

WORKDIR = "/var/tmp/corpus-bench-ctl"  # fixed, so that a run killed earlier is cleaned up
LXC_PATH = "/var/lib/corpus-bench/lxc"
GOLDEN = "corpus-golden"
NODE = "bench1"
SUBNET = "10.97.0.0/24"
SLOTS = 12
# Node ports NATed to containers' SSH: a range of their own, apart from the integration
# tests' nodes of this machine (the default 40000-).
NAT_PORTS = (41900, 41999)
# A bridge of its own: a node's nftables tables guard its bridge for its containers alone,
# and the integration tests' node1 of this machine has corpusbr0.
BRIDGE = "corpusbench0"
ENV_TYPE = "staging"
COUNTS = (1, 4, 8)
SALT_RUN_TIMEOUT = 1800
SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
REQUIRED = ("lxc-start", "lxc-destroy", "nft", "haproxy", "ssh-keygen")


def missing_requirements():
    """What this machine lacks to run (e) and (f); empty when it can."""
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [tool for tool in REQUIRED if not shutil.which(tool)]
    missing += [path for path in (SSHD, SFTP_SERVER) if not os.access(path, os.X_OK)]
    return missing


def _venv_script(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.access(here, os.X_OK) else (shutil.which(name) or name)


def _json_documents(text):
    """Every JSON document in ``text`` (salt-run prints progress events before its return)."""
    decoder, found, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return found
        try:
            document, index = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("\n", index)
            if index < 0:
                return found
            continue
        found.append(document)


def _kill_pidfile(path, needle, group=False):
    """Stop the process whose pid ``path`` holds, if its command line has ``needle``."""
    try:
        with open(path, encoding="ascii") as fh:
            pid = int(fh.read().split()[0])
        with open("/proc/{}/cmdline".format(pid), "rb") as fh:
            if needle.encode() not in fh.read():
                return
        if group:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


class SaltRun:
    """A finished ``salt-run``: exit code, its return (last JSON document), wall time."""

    def __init__(self, args, proc, started):
        stdout, stderr = proc.communicate(timeout=SALT_RUN_TIMEOUT)
        self.seconds = time.monotonic() - started
        self.args = args
        self.returncode = proc.returncode
        documents = _json_documents(stdout)
        self.data = documents[-1] if documents else None
        self.stderr = stderr

    @property
    def ok(self):
        return self.returncode == 0 and not (isinstance(self.data, dict) and self.data.get("result") is False)

    def reason(self):
        if isinstance(self.data, dict) and self.data.get("comment"):
            return self.data["comment"]
        if isinstance(self.data, str) and self.data.strip():
            return "exit status {}: {}".format(self.returncode, self.data.strip()[-500:])
        # Salt's warnings about unclosed clients at exit are not the reason.
        lines = [line for line in (self.stderr or "").splitlines() if line.strip() and "unclosed" not in line]
        return "exit status {}{}".format(self.returncode, ": " + lines[-1] if lines else "")


class BenchController:
    """The controller, the sshd and the linked node the controller benchmarks run on."""

    def __init__(self, workdir=WORKDIR):
        self.workdir = workdir
        self.root = os.path.join(workdir, "ctl")
        self.prefix = os.path.join(workdir, "node")
        self.sshd_dir = os.path.join(workdir, "sshd")
        self.address = config.local_ipv4()
        self.http_port = None
        self.ssh_port = None
        self.ssh_key = None
        self.db_url = None
        self.sshd = None
        self.pdns = None
        self.pdns_error = None
        self.linked = False
        self.env = dict(os.environ, PATH="{}:{}".format(os.path.dirname(sys.executable),
                                                        os.environ.get("PATH", "")))
        self.env.pop(cli.DNS_KEY_ENV, None)

    # -- salt-run

    def start(self, fun, *args):
        cmd = [_venv_script("salt-run"), "-c", os.path.dirname(cli.config_path(self.root)), "--out=json",
               "--no-color", fun] + [str(a) for a in args]
        return [fun] + list(args), subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    text=True), time.monotonic()

    @staticmethod
    def finish(launched):
        """Wait for a ``salt-run`` that ``start`` launched."""
        return SaltRun(*launched)

    def run(self, fun, *args, check=True):
        done = self.finish(self.start(fun, *args))
        if check and not done.ok:
            raise BenchError("salt-run {} failed: {}".format(" ".join(map(str, done.args)), done.reason()))
        return done

    def list_envs(self):
        data = self.run("mc_cloud.list_envs").data
        return [env for env in data or [] if isinstance(env, dict)]

    # -- set-up

    def setup(self):
        self.clean_previous()
        for path in (self.root, self.prefix, self.sshd_dir):
            os.makedirs(path)
        self._start_pdns()
        self._init_controller()
        self._start_sshd()
        self._link_node()

    def _start_pdns(self):
        from support.services import PDNS_SERVER, PdnsServer  # a real pdns_server on 127.0.0.1

        if not os.access(PDNS_SERVER, os.X_OK):
            self.pdns_error = "pdns_server is not installed"
            return
        try:
            self.pdns = PdnsServer(os.path.join(self.workdir, "pdns"))
        except Exception as exc:  # pdns_server missing or not answering: the step logs "no DNS"
            self.pdns = None
            self.pdns_error = "{}: {}".format(type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")

    def _init_controller(self):
        wheels = wheelhouse.ensure_wheelhouse(wheelhouse.shared_cache())
        publish_port, ret_port = free_port(), free_port()
        while ret_port == publish_port:
            ret_port = free_port()
        cmd = [_venv_script("corpus-controller"), "init", "--root", self.root, "--wheelhouse", wheels,
               "--publish-port", str(publish_port), "--ret-port", str(ret_port),
               "--master-address", self.address]
        env = dict(self.env)
        if self.pdns is not None:
            cmd += ["--dns-api", self.pdns.api_url]
            env[cli.DNS_KEY_ENV] = self.pdns.api_key  # not on the command line, where ps shows it
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise BenchError("corpus-controller init exited {}: {}".format(
                proc.returncode, (proc.stderr or proc.stdout).strip()[-1000:]))
        self.db_url = cli.read_master_config(self.root)["corpus"]["db_url"]

    def _start_sshd(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        host_key, client_key = os.path.join(self.sshd_dir, "host_key"), os.path.join(self.sshd_dir, "client_key")
        for path in (host_key, client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "corpus-bench", "-f", path],
                           check=True, capture_output=True)
        shutil.copy(client_key + ".pub", os.path.join(self.sshd_dir, "authorized_keys"))
        self.ssh_key = client_key
        self.ssh_port = free_port()
        conf = os.path.join(self.sshd_dir, "sshd_config")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write("\n".join([
                "ListenAddress {}:{}".format(self.address, self.ssh_port),
                "HostKey " + host_key,
                "PidFile " + os.path.join(self.sshd_dir, "sshd.pid"),
                "AuthorizedKeysFile " + os.path.join(self.sshd_dir, "authorized_keys"),
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp " + SFTP_SERVER,
            ]) + "\n")
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.sshd_dir, "sshd.log"), "wb"))
        deadline = time.monotonic() + 10
        while not _answers(self.address, self.ssh_port):
            if self.sshd.poll() is not None or time.monotonic() > deadline:
                raise BenchError("sshd did not listen on {}:{}; see {}".format(
                    self.address, self.ssh_port, os.path.join(self.sshd_dir, "sshd.log")))
            time.sleep(0.1)

    def _link_node(self):
        self.http_port = free_port()
        self.linked = True  # from here on, teardown unlinks whatever came of it
        self.run("mc_cloud.link_node", self.address, "user=root", "key=" + self.ssh_key,
                 "port={}".format(self.ssh_port), "name=" + NODE, "slots={}".format(SLOTS),
                 "subnet=" + SUBNET, "http_port={}".format(self.http_port), "prefix=" + self.prefix,
                 "lxc_path=" + LXC_PATH, "nat_ports={}-{}".format(*NAT_PORTS), "bridge=" + BRIDGE)

    # -- teardown

    def teardown(self):
        """Take down everything set up; returns what could not be (one line each)."""
        problems = []
        if self.linked and self.db_url:
            try:
                for env in self.list_envs():
                    done = self.run("mc_cloud.destroy_env", env["name"], check=False)
                    if not done.ok:
                        problems.append("destroy_env {}: {}".format(env["name"], done.reason()))
                done = self.run("mc_cloud.unlink_node", NODE, "force=True", check=False)
                if not done.ok and "No compute node" not in done.reason():
                    problems.append("unlink_node {}: {}".format(NODE, done.reason()))
            except BenchError as exc:
                problems.append(str(exc))
        if os.path.isdir(self.root):
            proc = subprocess.run([_venv_script("corpus-controller"), "stop", "--root", self.root],
                                  env=self.env, capture_output=True, text=True)
            if proc.returncode:
                problems.append("corpus-controller stop: " + (proc.stderr or proc.stdout).strip()[-300:])
        if self.sshd is not None:
            self.sshd.terminate()
            self.sshd.wait(timeout=10)
            self.sshd = None
        if self.pdns is not None:
            self.pdns.stop()
            self.pdns = None
        problems += self._remove_node_leftovers()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def _remove_node_leftovers(self):
        """What an unlink that failed (or never ran) leaves on this machine: the node's proxy,
        minion, containers, bridge and nftables tables."""
        paths = node_paths(self.prefix)
        _kill_pidfile(paths["pidfile"], "salt-minion", group=True)
        _kill_pidfile(os.path.join(paths["state_dir"], "haproxy.pid"), "haproxy")
        problems = []
        spares.remove(LXC_PATH)
        listed = subprocess.run(["lxc-ls", "-P", LXC_PATH], capture_output=True, text=True)
        for container in listed.stdout.split():
            if container != GOLDEN:
                gone = subprocess.run(["lxc-destroy", "-f", "-P", LXC_PATH, "-n", container],
                                      capture_output=True, text=True)
                if gone.returncode:
                    problems.append("lxc-destroy {}: {}".format(container, gone.stderr.strip()[-200:]))
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        for family in ("ip", "bridge"):
            subprocess.run(["nft", "delete", "table", family, nft_table_for(NODE)], capture_output=True)
        return problems

    def clean_previous(self):
        """A run killed earlier may have left its master, sshd, node and containers."""
        if os.path.isdir(self.workdir):
            if os.path.exists(cli.config_path(self.root)):
                subprocess.run([_venv_script("corpus-controller"), "stop", "--root", self.root],
                               env=self.env, capture_output=True)
            _kill_pidfile(os.path.join(self.sshd_dir, "sshd.pid"), "sshd")
            self._remove_node_leftovers()
            shutil.rmtree(self.workdir, ignore_errors=True)


def _answers(address, port, banner=None, timeout=3):
    """Whether ``address:port`` accepts a connection (and its first bytes start with ``banner``)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            return banner is None or sock.recv(64).startswith(banner)
    except OSError:
        return False


# --------------------------------------------------------------------------- (e)

def init_env_steps(ctl, name):
    """The steps of ``name``'s newest init_env job and the job's own time, from its record
    (created to ended): ([(step name, seconds)], seconds)."""
    jobs = ctl.run("mc_jobs.status", name).data
    for job in jobs if isinstance(jobs, list) else []:
        if job.get("kind") == "init_env":
            seconds = (datetime.datetime.fromisoformat(job["ended"])
                       - datetime.datetime.fromisoformat(job["created"])).total_seconds()
            return [(step["name"], step["seconds"]) for step in job["steps"]], seconds
    raise BenchError("mc_jobs.status {} shows no init_env job: {}".format(name, str(jobs)[:300]))


def timed_init_env(ctl, name):
    """init_env then destroy_env of ``name``: (wall seconds, ([(step, seconds)], job seconds),
    destroy seconds)."""
    created = ctl.run("mc_cloud.init_env", name, ENV_TYPE, check=False)
    if not created.ok:
        raise BenchError("init_env {} failed: {}".format(name, created.reason()))
    steps = init_env_steps(ctl, name)
    destroyed = ctl.run("mc_cloud.destroy_env", name, check=False)
    if not destroyed.ok:
        raise BenchError("destroy_env {} failed: {}".format(name, destroyed.reason()))
    return created.seconds, steps, destroyed.seconds


class CorpusCommand:
    """The ``corpus`` command, logged in to the controller's API as its admin."""

    def __init__(self, ctl):
        home = os.path.join(ctl.workdir, "cli-home")
        os.makedirs(home, exist_ok=True)
        self.env = dict(ctl.env, HOME=home)
        api = api_settings.api_settings(cli.read_master_config(ctl.root))
        with open(os.path.join(ctl.root, "admin-password"), encoding="utf-8") as fh:
            self.run("--url", api_process.base_url(api), "login", "--user", "admin", "--password-stdin",
                     stdin=fh.read())

    def start(self, *args, stdin=None):
        proc = subprocess.Popen([_venv_script("corpus")] + list(args), env=self.env, text=True,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.args_given = args
        return proc, stdin

    @staticmethod
    def finish(started):
        """The finished command's output; one sentence when it failed."""
        proc, stdin = started
        stdout, stderr = proc.communicate(stdin, timeout=SALT_RUN_TIMEOUT)
        if proc.returncode:
            raise BenchError("corpus {} exited {}: {}".format(" ".join(proc.args_given), proc.returncode,
                                                            (stderr or stdout).strip()[-500:]))
        return stdout

    def run(self, *args, stdin=None):
        return self.finish(self.start(*args, stdin=stdin))


def timed_corpus_init_env(ctl, name):
    """``corpus init_env`` of ``name`` (the CLI, the API, the job), then its destroy: (wall, steps)."""
    corpus = CorpusCommand(ctl)
    started = time.monotonic()
    corpus.run("init_env", name, ENV_TYPE)
    wall = time.monotonic() - started
    steps = init_env_steps(ctl, name)
    corpus.run("destroy", name, "--yes")
    return wall, steps


def refill_spares(count=1, wait=900):
    """The node's pool of ``count`` spares ready, once a refill the last environments started
    in the background is over (``spares.refill`` says "busy" while one runs)."""
    deadline = time.monotonic() + wait
    while spares.refill(LXC_PATH, count=count) == "busy":
        if time.monotonic() > deadline:
            raise BenchError("the node's spares were still being made after {} s".format(wait))
        time.sleep(0.5)


def bench_init_env(ctl, out):
    """One environment with the node's spare container ready (a node that has been up), then
    one with none (the node's first environment; its next spare is made meanwhile)."""
    refill_spares()  # the golden image's size: the controller's default disk
    warm = timed_init_env(ctl, "bench-e")
    spares.remove(LXC_PATH)
    cold = timed_init_env(ctl, "bench-e-cold")
    spares.remove(LXC_PATH)
    refill_spares()
    command = timed_corpus_init_env(ctl, "bench-e-cli")
    spares.remove(LXC_PATH)
    out("one environment ({}) on node {}: salt-run mc_cloud.init_env, then mc_cloud.destroy_env;".format(
        ENV_TYPE, NODE))
    out("first with the node's spare container ready, then with none; step times from mc_jobs.status;")
    out("then `corpus init_env` and `corpus destroy` (the command through the controller's corpus-api)")
    out()
    rows = []
    for i, ((step, seconds), (_, cold_seconds)) in enumerate(zip(warm[1][0], cold[1][0]), 1):
        rows.append(["{:>2}. {}".format(i, step), fmt_seconds(seconds), fmt_seconds(cold_seconds)])
    rows += [
        ["the job, created to ended (grouped steps overlap)", fmt_seconds(warm[1][1]), fmt_seconds(cold[1][1])],
        ["salt-run start-up and request checks (wall - job)", fmt_seconds(warm[0] - warm[1][1]),
         fmt_seconds(cold[0] - cold[1][1])],
        ["init_env wall time (salt-run)", fmt_seconds(warm[0]), fmt_seconds(cold[0])],
        ["corpus init_env wall time (command, API, job; spare ready)", fmt_seconds(command[0]), ""],
        ["  of which the job", fmt_seconds(command[1][1]), ""],
        ["destroy_env wall time (salt-run)", fmt_seconds(warm[2]), fmt_seconds(cold[2])],
    ]
    table(["init_env step", "spare ready", "no spare"], rows, out=out)
    return {"wall": warm[0], "steps": warm[1][0], "job": warm[1][1], "destroy": warm[2], "cold_wall": cold[0],
            "command_wall": command[0]}


# --------------------------------------------------------------------------- (f)

def create_round(ctl, names, parallel):
    """Create ``names`` (all at once or one after another), check them, destroy them.

    Returns (wall seconds of the creation, how many were made, destroy seconds, failures).
    """
    started = time.monotonic()
    if parallel:
        runs = [ctl.finish(run) for run in [ctl.start("mc_cloud.init_env", name, ENV_TYPE) for name in names]]
    else:
        runs = [ctl.run("mc_cloud.init_env", name, ENV_TYPE, check=False) for name in names]
    wall = time.monotonic() - started
    failures = ["init_env {}: {}".format(name, run.reason()) for name, run in zip(names, runs) if not run.ok]
    made = [name for name, run in zip(names, runs) if run.ok]
    failures += check_environments(ctl, made)
    started = time.monotonic()
    destroys = [ctl.finish(run) for run in [ctl.start("mc_cloud.destroy_env", env["name"])
                                            for env in ctl.list_envs()]]
    destroy_wall = time.monotonic() - started
    failures += ["destroy_env {}: {}".format(run.args[1], run.reason()) for run in destroys if not run.ok]
    return wall, len(made), destroy_wall, failures


def corpus_round(ctl, names):
    """``corpus init_env`` of ``names`` all at once, through the API: (wall seconds, failures);
    each one checked, all destroyed after."""
    corpus = CorpusCommand(ctl)
    started = time.monotonic()
    launched = [corpus.start("init_env", name, ENV_TYPE) for name in names]
    failures = []
    for name, run in zip(names, launched):
        try:
            corpus.finish(run)
        except BenchError as exc:
            failures.append("{}: {}".format(name, exc))
    wall = time.monotonic() - started
    failures += check_environments(ctl, names)
    for run in [ctl.start("mc_cloud.destroy_env", env["name"]) for env in ctl.list_envs()]:
        ctl.finish(run)
    return wall, failures


def check_environments(ctl, names):
    """Each environment has its own address and NATed port, and its container's sshd answers there."""
    envs = {env["name"]: env for env in ctl.list_envs() if env["name"] in names}
    problems = ["{} is not listed".format(name) for name in names if name not in envs]
    for what in ("ip", "ssh"):
        values = [env[what] for env in envs.values()]
        if len(set(values)) != len(values) or None in values:
            problems.append("environments share or lack an {}: {}".format(
                what, ", ".join("{}={}".format(n, e[what]) for n, e in sorted(envs.items()))))
    for name, env in sorted(envs.items()):
        if env.get("status") != "active":
            problems.append("{} is {}, not active".format(name, env.get("status")))
        if env.get("ssh"):
            host, port = env["ssh"].rsplit(":", 1)
            if not _answers(host, int(port), banner=b"SSH-"):
                problems.append("{}: no SSH banner on {}".format(name, env["ssh"]))
    return problems


def bench_parallel(ctl, out, counts=COUNTS):
    rows, failures = [], []
    single = None  # the first round's parallel wall time: one environment alone (counts start at 1)
    for count in counts:
        measured = {}
        for mode in ("parallel", "sequential"):
            names = ["bench-{}{}-{}".format(mode[0], count, i) for i in range(1, count + 1)]
            # Each round starts alike: the node's one spare ready, no refill left running from
            # the round before (it would slow this one's first environment).
            refill_spares()
            wall, made, destroy_wall, failed = create_round(ctl, names, parallel=(mode == "parallel"))
            # A round where some failed is shown, marked: its time is not that of N environments.
            measured[mode] = (wall, "" if made == count else " ({}/{} made)".format(made, count))
            failures += failed
            out("  {} x {}: {} (destroyed in {}){}".format(
                count, mode, fmt_seconds(wall), fmt_seconds(destroy_wall),
                "; FAILED: " + "; ".join(failed) if failed else ""))
        (par, par_note), (seq, seq_note) = measured["parallel"], measured["sequential"]
        single = single or par
        rows.append([str(count), fmt_seconds(par) + par_note, "{:.2f}x".format(par / single), fmt_seconds(par / count),
                     fmt_seconds(seq) + seq_note, fmt_seconds(seq / count), fmt_ratio(ratio(seq, par))])
    out()
    out("wall time to create N environments (every one checked: own address, own NATed port whose")
    out("SSH answers; all destroyed after each round; the node's one spare ready before each round);")
    out("{} CPU(s)".format(os.cpu_count()))
    out()
    table(["N", "parallel", "against one", "per env", "sequential", "per env", "sequential / parallel"], rows,
          out=out)
    # What a fleet's users do: N `corpus init_env` at once, each job run by the API that is up;
    # with the node's one spare (the default), then with as many spares as environments
    # (``corpus:lxc:spare: N``), made before the round as the node makes them between bursts.
    many = counts[-1]
    refill_spares()
    one, failed = corpus_round(ctl, ["bench-c1-1"])
    failures += failed
    rows = [["1", "1", fmt_seconds(one), "1.00x"]]
    for pool in (1, many):
        refill_spares(pool)
        wall, failed = corpus_round(ctl, ["bench-c{}-{}-{}".format(many, pool, i) for i in range(1, many + 1)])
        failures += failed
        rows.append([str(many), str(pool), fmt_seconds(wall), "{:.2f}x".format(wall / one) if one else "-"])
    spares.remove(LXC_PATH)
    out()
    out("through the corpus command and the controller's API, the node's spares ready before each round:")
    out()
    table(["N at once", "spares", "wall", "against one"], rows, out=out)
    if failures:
        raise BenchError("{} environment(s) failed: {}".format(len(failures), "; ".join(failures)))
    return rows


# --------------------------------------------------------------------------- entry point

def warm_golden(ctl):
    """Make the node's golden container and bake the node's wheelhouse into it before anything
    is timed, as the first init_env would: that happens once per wheelhouse, not per
    environment (the controller's default image settings, which the bench keeps)."""
    started = time.monotonic()
    done = lxc.golden(LXC_PATH, wheelhouse=node_paths(ctl.prefix)["wheelhouse"])
    return "golden container {}, its minion venv {}, in {} (before timing)".format(
        "made" if done.get("built") else "there", done.get("venv"), fmt_seconds(time.monotonic() - started))


def bench_controller(only, section, out, notes, counts=COUNTS):
    """Run sections (e) and (f) that are in ``only``, on one controller set up for both."""
    keys = [key for key in "ef" if key in only]
    if not keys:
        return
    missing = missing_requirements()
    if missing:
        for key in keys:
            section(key)
            out("skipped: needs root, LXC, nftables, haproxy and OpenSSH's sshd (missing: {})".format(
                ", ".join(missing)))
        return
    ctl = BenchController()
    problems = []
    try:
        started = time.monotonic()
        ctl.setup()
        setup_seconds = time.monotonic() - started
        dns = "pdns_server on {}".format(ctl.pdns.api_url) if ctl.pdns else "none ({})".format(ctl.pdns_error)
        notes.append("(e/f) controller set up in {} (corpus-controller init, sshd {}:{}, link_node {}); "
                     "DNS: {}".format(fmt_seconds(setup_seconds), ctl.address, ctl.ssh_port, NODE, dns))
        notes.append("(e/f) " + warm_golden(ctl))
        if "e" in keys:
            section("e")
            bench_init_env(ctl, out)
        if "f" in keys:
            section("f")
            bench_parallel(ctl, out, counts)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        raise BenchError("controller bench: {}: {}".format(type(exc).__name__, exc)) from exc
    finally:
        problems = ctl.teardown()
        notes.extend("cleanup (e/f): " + problem for problem in problems)
    if problems:
        raise BenchError("the controller bench did not clean up everything (see the notes)")
