"""The deploy agent: a Salt caller kept warm, so a push does not pay salt-call's start-up.

One agent serves one Salt configuration (the ``-c DIR`` and ``--local`` of the hook's
salt-call). It builds the minion options and a loaded ``salt.cli.caller`` once, then
listens on a unix socket (``agent.sock``, 0600, in a 0700 directory from
``rundir.socket_dir``: ``<projects_root>/.corpus-agent`` when short enough). For each
request it forks a child, in a process group of its own, which

* refreshes the pillar (a pillar file changed since the last deploy is seen),
* runs the requested execution function exactly as ``salt-call`` would (same
  ``__opts__``, ``__pillar__``, argument parsing, ``__context__["retcode"]``; a
  ``CommandExecutionError`` is "Error running ...: MESSAGE" and retcode 1),
* streams every line the function writes to stdout or stderr back as it comes, then
  the return and the retcode.

The modules stay loaded in the agent, every call starts from the same clean state,
several projects deploy at once, and a crash stays in its child. When the client goes
away before the end (the push was killed), the child's whole process group is killed
with SIGKILL at once, as a killed salt-call would be; the engine's crash recovery
handles the rest on the next push.

The agent stops by itself after 15 minutes without requests, when its configuration
directory is removed, and when the code it loaded or its minion configuration changed
(it then answers "restart" so the client starts a fresh one). The framing and the
client are in ``agent_client`` (standard library only: the hook imports it).

Start it with ``python -m mc_project.project.agent --config-dir DIR [--local]``: it
daemonises and returns once it listens (or exits 1 with one sentence). Starting it
twice is harmless.
"""

import argparse
import fcntl
import hashlib
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback

from mc_project import resources
from mc_project.project import agent_client as proto

IDLE_TIMEOUT = 15 * 60
# How often an idle agent looks whether its code or configuration changed.
CHECK_EVERY = 10
REQUEST_TIMEOUT = 5
LOG_MAX = 1024 * 1024
RELAY_MAX_LINE = 64 * 1024
# Loaded in the agent before it listens, so children do not load them per deploy.
# (Only functions that exist: looking up a missing one makes Salt load every module.)
WARM_FUNCTIONS = ("mc_project.deploy", "state.high", "config.get", "cmd.run", "file.file_exists",
                  "test.true")


def log(line):
    sys.stderr.write("{} [{}] {}\n".format(time.strftime("%Y-%m-%dT%H:%M:%S"), os.getpid(), line))
    sys.stderr.flush()


# --------------------------------------------------------------------------- what it loaded

def _tree_stats(top, suffix=None):
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if suffix and not name.endswith(suffix):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
    return out


def code_fingerprint():
    """What changes when corpus (or Salt) is upgraded: the package's .py files and the
    loader modules' directories (mtimes and sizes)."""
    parts = _tree_stats(resources.PACKAGE_DIR, ".py")
    for name in ("_modules", "_states"):
        parts += _tree_stats(resources.resource_path(name))
    try:
        import salt.version

        st = os.stat(salt.version.__file__)
        parts.append(f"salt:{st.st_mtime_ns}:{st.st_size}")
    except (ImportError, OSError):
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def config_fingerprint(config_dir):
    """The minion configuration's content (``minion`` and ``minion.d/*.conf``)."""
    digest = hashlib.sha256()
    files = [os.path.join(config_dir, "minion")]
    conf_d = os.path.join(config_dir, "minion.d")
    if os.path.isdir(conf_d):
        files += sorted(os.path.join(conf_d, n) for n in os.listdir(conf_d) if n.endswith(".conf"))
    for path in files:
        digest.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except OSError:
            digest.update(b"(missing)")
    return digest.hexdigest()


# --------------------------------------------------------------------------- salt

def load_opts(config_dir, local):
    """The options salt-call builds for ``-c config_dir [--local] -l quiet
    --retcode-passthrough``."""
    import salt.utils.parsers
    import salt.utils.verify

    argv = ["-c", config_dir, "-l", "quiet", "--retcode-passthrough"]
    if local:
        argv.append("--local")
    parser = salt.utils.parsers.SaltCallOptionParser()
    parser.parse_args(argv + ["test.true"])
    opts = parser.config
    opts["__cli"] = "salt-call"  # state.high then reuses the caller's pillar, as under salt-call
    if local:
        opts["file_client"] = "local"
    if opts.get("verify_env"):
        salt.utils.verify.verify_env([opts["pki_dir"], opts["cachedir"], opts["extension_modules"]],
                                     opts["user"], permissive=opts["permissive_pki_access"],
                                     pki_dir=opts["pki_dir"])
    return opts


def projects_root_of(opts):
    section = opts.get("mc_project")
    if isinstance(section, dict) and section.get("projects_root"):
        return section["projects_root"]
    return opts.get("mc_project:projects_root") or proto.DEFAULT_PROJECTS_ROOT


class Salt:
    """The warm part: a loaded caller and what refreshing the pillar needs."""

    def __init__(self, opts):
        import salt.cli.caller
        import salt.pillar

        self.caller = salt.cli.caller.BaseCaller(opts)
        minion = self.caller.minion
        self.pillar = None
        source = self._pillar_source()
        # A local pillar's compiler (renderers, its own loader) is built once; compiling
        # it again reads the pillar files afresh. Other kinds are made per call.
        if type(source) is salt.pillar.Pillar:
            self.pillar = source
            self.pillar.compile_pillar()  # loads its renderers here, once
        for fun in WARM_FUNCTIONS:
            try:
                minion.functions[fun]
            except KeyError:  # not on this minion: nothing to warm
                log(f"{fun} is not available here")
        import salt.state

    def _pillar_source(self):
        import salt.pillar

        opts = self.caller.minion.opts
        return salt.pillar.get_pillar(opts, opts["grains"], opts["id"], opts["saltenv"],
                                      pillarenv=opts.get("pillarenv"))

    def refresh_pillar(self):
        """Compile the pillar again and hand it to the loaded modules (as a minion's
        ``saltutil.refresh_pillar`` does)."""
        minion = self.caller.minion
        if self.pillar is not None:
            new = self.pillar.compile_pillar()
        else:
            source = self._pillar_source()
            try:
                new = source.compile_pillar()
            finally:
                destroy = getattr(source, "destroy", None)
                if destroy:
                    destroy()
        minion.opts["pillar"] = new
        minion.functions.pack["__pillar__"] = minion.opts["pillar"]
        inner = getattr(minion.functions, "_dunder_salt", None)
        if inner is not None and hasattr(inner, "pack"):
            inner.pack["__pillar__"] = minion.opts["pillar"]
        return new

    def call(self, fun, args):
        """(return, retcode) of ``fun`` with the command-line ``args``, as salt-call."""
        caller = self.caller
        caller.opts["fun"] = fun
        caller.opts["arg"] = list(args)
        try:
            ret = caller.call()
        except SystemExit as exc:  # salt-call's own ways out: an error line already printed
            code = exc.code
            if code is None:
                return None, 0
            if isinstance(code, int):
                return None, code
            sys.stderr.write(f"{code}\n")
            return None, 1
        retcode = ret.get("retcode", 0)
        return ret.get("return"), retcode


# --------------------------------------------------------------------------- one call

def _set_title(title):
    try:
        import setproctitle

        setproctitle.setproctitle(title)
    except ImportError:
        pass


class Sender:
    """Messages to the client from two threads; a vanished client ends the call."""

    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message):
        data = proto.encode(message)
        with self.lock:
            try:
                self.conn.sendall(data)
            except OSError:
                _client_gone()


_finished = threading.Event()


def _client_gone():
    # The push was killed: die at once with everything this call started, like a
    # killed salt-call. Not once the result is on its way (the client may close first).
    if not _finished.is_set():
        os.killpg(0, signal.SIGKILL)


def _watch_client(conn):
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        if events:
            _client_gone()
            return


def _relay(fd, sender):
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        if len(pending) > RELAY_MAX_LINE:  # no newline for that long (a progress bar): pass it on
            lines.append(pending)
            pending = b""
        for line in lines:
            sender.send({"out": line.decode("utf-8", "replace")})
    if pending:
        sender.send({"out": pending.decode("utf-8", "replace")})


def run_call(conn, request, warm, done_fd, received):
    """In the forked child: run one call and report it on ``conn``."""
    timings = {"received": received, "forked": time.time()}
    fun, args = request["fun"], [str(a) for a in request.get("args") or []]
    # `ps` shows what this child deploys (as it showed salt-call's command line).
    _set_title("corpus-agent: {} {}".format(fun, " ".join(args)))
    for key in proto.FORWARDED_ENV:
        value = (request.get("env") or {}).get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)
    sender = Sender(conn)
    threading.Thread(target=_watch_client, args=(conn,), daemon=True).start()
    sender.send({"started": os.getpid()})

    # Everything the call writes to fds 1 and 2 (its own lines, its subprocesses')
    # goes through a pipe to the client, line by line.
    read_fd, write_fd = os.pipe()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stdout.reconfigure(line_buffering=True)
    relay = threading.Thread(target=_relay, args=(read_fd, sender), daemon=True)
    relay.start()
    ret, retcode = None, 1
    try:
        started = time.time()
        warm.refresh_pillar()
        timings["pillar"] = time.time() - started
        timings["function_started"] = time.time()
        ret, retcode = warm.call(fun, args)
    except BaseException:  # noqa: BLE001 - as salt-call dies of anything: traceback, exit 1
        traceback.print_exc()
    finally:
        timings["function_ended"] = time.time()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    # A daemon the call started may keep a copy of the pipe: do not wait for it long.
    relay.join(timeout=2)
    _finished.set()
    os.write(done_fd, b"1")
    sender.send({"ret": ret, "retcode": retcode, "timings": timings})


# --------------------------------------------------------------------------- the agent

class Agent:
    def __init__(self, config_dir, local, sock_dir, warm, idle_timeout, lock_fd, fingerprints):
        self.config_dir = config_dir
        self.local = local
        self.sock_dir = sock_dir
        self.sock_path = os.path.join(sock_dir, proto.SOCKET_NAME)
        self.pid_path = os.path.join(sock_dir, proto.PID_NAME)
        self.warm = warm
        self.idle_timeout = idle_timeout
        self.lock_fd = lock_fd
        self.fingerprints = fingerprints
        self.listener = None
        self.sock_inode = None
        self.children = {}  # pid -> {"conn", "done", "what"}
        self.last_request = time.monotonic()
        self.last_check = time.monotonic()
        self.stop_reason = None
        self.poller = select.poll()
        self.fd_child = {}

    # -- set-up / tear-down ---------------------------------------------------------

    def listen(self):
        old = os.umask(0o177)
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.sock_path)
        finally:
            os.umask(old)
        os.chmod(self.sock_path, 0o600)
        self.sock_inode = os.stat(self.sock_path).st_ino
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        self.poller.register(listener.fileno(), select.POLLIN)
        tmp = self.pid_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        os.replace(tmp, self.pid_path)

    def stop_listening(self, reason):
        """No new requests: the socket, pid file and lock go, so a fresh agent can start
        at once; the calls still running finish (or die with their client)."""
        if self.listener is None:
            return
        log(f"stopping: {reason}")
        self.stop_reason = reason
        self.poller.unregister(self.listener.fileno())
        # Only its own files: a fresh agent may already have put its own there.
        try:
            if os.stat(self.sock_path).st_ino == self.sock_inode:
                os.unlink(self.sock_path)
        except OSError:
            pass
        try:
            if _read_pid(self.pid_path) == os.getpid():
                os.unlink(self.pid_path)
        except OSError:
            pass
        self.listener.close()
        self.listener = None
        os.close(self.lock_fd)
        self.lock_fd = None

    # -- the loop -------------------------------------------------------------------

    def serve(self):
        _set_title("corpus-agent -c {}{}".format(self.config_dir, " --local" if self.local else ""))
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_reason", self.stop_reason or "SIGTERM"))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.poller.register(wake_r, select.POLLIN)
        self.wake_fds = (wake_r, wake_w)
        while True:
            self.reap()
            if self.listener is not None:
                reason = self.stop_reason or self.should_stop()
                if reason:
                    self.stop_listening(reason)
            if self.listener is None and not self.children:
                log("stopped")
                return
            try:
                events = self.poller.poll(1000)
            except InterruptedError:
                continue
            for fd, event in events:
                if self.listener is not None and fd == self.listener.fileno():
                    self.accept()
                elif fd == wake_r:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif fd in self.fd_child:
                    self.client_gone(self.fd_child[fd])

    def should_stop(self):
        now = time.monotonic()
        if not self.children and now - self.last_request > self.idle_timeout:
            return f"idle for {int(now - self.last_request)} s"
        if now - self.last_check >= CHECK_EVERY:
            self.last_check = now
            if not os.path.isdir(self.config_dir):
                return f"its configuration directory {self.config_dir} is gone"
            try:
                replaced = os.stat(self.sock_path).st_ino != self.sock_inode
            except OSError:
                replaced = True
            if replaced:  # its directory was wiped (a projects root removed): nobody can reach it
                return f"its socket {self.sock_path} is gone"
            if not self.children:
                return self.stale()
        return None

    def stale(self):
        if code_fingerprint() != self.fingerprints["code"]:
            return "the corpus code changed"
        if config_fingerprint(self.config_dir) != self.fingerprints["config"]:
            return "the minion configuration changed"
        return None

    def accept(self):
        while self.listener is not None:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            received = time.time()
            try:
                request = proto.read_message(conn, timeout=REQUEST_TIMEOUT)
                conn.settimeout(None)
                self.handle(conn, request, received)
            except (OSError, proto.ProtocolError) as exc:
                log(f"bad request: {exc}")
                conn.close()

    def handle(self, conn, request, received):
        op = request.get("op")
        if op == "ping":
            conn.sendall(proto.encode({"pong": os.getpid(), "config_dir": self.config_dir,
                                       "local": self.local, "children": sorted(self.children)}))
            conn.close()
            return
        if op == "stop":
            self.stop_listening("asked to stop")
            conn.sendall(proto.encode({"stopping": os.getpid()}))
            conn.close()
            return
        if op != "call" or not isinstance(request.get("fun"), str):
            conn.sendall(proto.encode({"error": "the deploy agent got a request it does not know: "
                                                f"{request!r}"[:300]}))
            conn.close()
            return
        self.last_request = time.monotonic()
        reason = self.stale()
        if reason:
            self.stop_listening(reason)
            conn.sendall(proto.encode({"restart": reason}))
            conn.close()
            return
        self.fork_call(conn, request, received)

    def fork_call(self, conn, request, received):
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nothing of the agent's loop from here on
            code = 0
            try:
                os.setpgid(0, 0)
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                for fd in self.agent_fds():
                    os.close(fd)
                os.close(done_r)
                run_call(conn, request, self.warm, done_w, received)
            except BaseException:  # noqa: BLE001 - a child never returns into the agent's loop
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first
        os.close(done_w)
        os.set_blocking(done_r, False)
        what = "{} {}".format(request["fun"], " ".join(str(a) for a in request.get("args") or []
                                                      if not str(a).startswith(("archive=", "objects="))))
        self.children[pid] = {"conn": conn, "done": done_r, "what": what}
        self.fd_child[conn.fileno()] = pid
        self.poller.register(conn.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        log("call {} (who {}) -> child {}".format(what, request.get("who"), pid))

    def agent_fds(self):
        fds = list(self.wake_fds)
        if self.listener is not None:
            fds.append(self.listener.fileno())
        if self.lock_fd is not None:
            fds.append(self.lock_fd)
        for child in self.children.values():
            fds += [child["conn"].fileno(), child["done"]]
        return fds

    def client_gone(self, pid):
        child = self.children.get(pid)
        if child is None:
            return
        self.poller.unregister(child["conn"].fileno())
        del self.fd_child[child["conn"].fileno()]
        try:
            finished = os.read(child["done"], 1) == b"1"
        except BlockingIOError:
            finished = False
        if not finished:
            log(f"client of child {pid} went away: killing its process group")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            fd = child["conn"].fileno()
            if fd in self.fd_child:
                self.poller.unregister(fd)
                del self.fd_child[fd]
            child["conn"].close()
            os.close(child["done"])
            if os.WIFSIGNALED(status):
                log("child {} ({}) killed by signal {}".format(pid, child["what"], os.WTERMSIG(status)))
            else:
                log(f"child {pid} done")


def _read_pid(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- start

def ask(sock_path, request, timeout=5):
    """The agent's answer to one short request, or None when none answers."""
    sock = proto.connect(sock_path, timeout=timeout)
    if sock is None:
        return None
    try:
        sock.settimeout(timeout)
        sock.sendall(proto.encode(request))
        return proto.read_message(sock, timeout=timeout)
    except (OSError, proto.ProtocolError):
        return None
    finally:
        sock.close()


def agent_paths(config_dir, projects_root):
    sock_dir = proto.socket_dir(config_dir, projects_root)
    return {"dir": sock_dir, "socket": os.path.join(sock_dir, proto.SOCKET_NAME),
            "pid": os.path.join(sock_dir, proto.PID_NAME), "lock": os.path.join(sock_dir, proto.LOCK_NAME),
            "log": os.path.join(sock_dir, proto.LOG_NAME)}


def stop(config_dir, projects_root=None, timeout=30):
    """Ask the agent of ``config_dir`` to stop and wait until it is gone; its pid or None."""
    paths = agent_paths(os.path.abspath(config_dir), projects_root or proto.DEFAULT_PROJECTS_ROOT)
    answer = ask(paths["socket"], {"op": "stop"})
    if not answer:
        return None
    pid = answer.get("stopping")
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return pid


def _take_lock(paths, deadline):
    """The agent lock (held for the agent's life), or None when a live agent answers."""
    fd = os.open(paths["lock"], os.O_RDWR | os.O_CREAT, 0o600)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if ask(paths["socket"], {"op": "ping"}):  # another agent (or one starting) won
            os.close(fd)
            return None
        if time.monotonic() > deadline:
            os.close(fd)
            raise SystemExit("corpus: another deploy agent holds {} and does not answer.".format(
                paths["lock"]))
        time.sleep(0.05)


def _open_log(path):
    try:
        if os.path.getsize(path) > LOG_MAX:
            os.replace(path, path + ".1")
    except OSError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _daemonise(log_path):
    """Fork twice (the agent leaves the pusher's session and process group); the
    caller's process waits for one line on a pipe: "ok" or why the agent failed."""
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as fh:
            answer = fh.read().decode("utf-8", "replace").strip()
        if answer == "ok":
            os._exit(0)
        sys.stderr.write((answer or f"corpus: the deploy agent died while starting; see {log_path}.") + "\n")
        os._exit(1)
    os.close(ready_r)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log_fd = _open_log(log_path)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    return ready_w


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mc_project.project.agent",
                                     description="The deploy agent of one Salt configuration.")
    parser.add_argument("--config-dir", "-c", default=proto.DEFAULT_CONFIG_DIR)
    parser.add_argument("--local", action="store_true", help="masterless, as salt-call --local")
    parser.add_argument("--projects-root", help="default: the minion option mc_project:projects_root")
    parser.add_argument("--idle-timeout", type=float,
                        default=float(os.environ.get("CORPUS_AGENT_IDLE_TIMEOUT") or IDLE_TIMEOUT),
                        help="seconds without requests before it stops (default 900)")
    parser.add_argument("--foreground", action="store_true", help="do not daemonise (log to stderr)")
    parser.add_argument("--stop", action="store_true", help="stop the running agent")
    args = parser.parse_args(argv)
    config_dir = os.path.abspath(args.config_dir)
    os.environ.pop("CORPUS_HOOK_STARTED", None)
    for key in proto.FORWARDED_ENV:  # per call only
        os.environ.pop(key, None)

    if not os.path.isfile(os.path.join(config_dir, "minion")):
        sys.exit(f"corpus: no minion configuration in {config_dir}.")
    fingerprints = {"code": code_fingerprint(), "config": config_fingerprint(config_dir)}
    try:
        opts = load_opts(config_dir, args.local)
        root = args.projects_root or projects_root_of(opts)
        paths = agent_paths(config_dir, root)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever Salt raises: one sentence
        sys.exit(f"corpus: cannot read the Salt configuration in {config_dir}: {exc}")
    if args.stop:
        pid = stop(config_dir, root)
        print(f"stopped agent {pid}" if pid else "no agent was running")
        return 0
    if ask(paths["socket"], {"op": "ping"}):
        return 0
    lock_fd = _take_lock(paths, time.monotonic() + proto.START_TIMEOUT)
    if lock_fd is None:
        return 0
    try:
        os.unlink(paths["socket"])  # we hold the lock: whatever is there is stale
    except FileNotFoundError:
        pass

    ready = None if args.foreground else _daemonise(paths["log"])
    try:
        log("starting for {}{} (socket {})".format(config_dir, " --local" if args.local else "",
                                                   paths["socket"]))
        started = time.monotonic()
        warm = Salt(opts)
        agent = Agent(config_dir, args.local, paths["dir"], warm, args.idle_timeout, lock_fd,
                      fingerprints)
        agent.listen()
        log(f"listening after {time.monotonic() - started:.3f} s")
    except BaseException as exc:  # noqa: BLE001 - the starter must hear of any failure
        log("failed to start:\n" + traceback.format_exc())
        if ready is not None:
            os.write(ready, "corpus: the deploy agent failed to start: {}; see {}.".format(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__, paths["log"]).encode())
            os.close(ready)
        return 1
    if ready is not None:
        os.write(ready, b"ok")
        os.close(ready)
    agent.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
