"""The hook's side of the deploy agent: hand one call to the warm agent, relay its output.

``hooks/pre-receive`` runs::

    $CORPUS_PYTHON -m mc_project.project.agent_client --salt-call "$CORPUS_SALT_CALL" \\
        --projects-root ROOT --out-file FILE mc_project.deploy NAME ref=.. old=.. rev=.. who=..

It connects to the agent of that Salt configuration (``mc_project.project.agent``),
starting it when none listens, sends one request, writes every line the call prints
to stderr as it comes and exits with the call's retcode, as
``salt-call --retcode-passthrough`` would. When no agent can be started it says so in
one line and execs the salt-call instead.

This module runs on every push before anything else, so it imports only the standard
library (and ``rundir``, which is standard library only): python starts in ~30 ms here
against ~1.2 s for salt-call. The message framing the agent uses lives here too.

Protocol: one JSON object per line (UTF-8, ``\\n``-terminated, never a raw newline
inside). The client sends one request; the agent answers with any number of
messages and, for a call, ends with ``ret``:

``{"op": "call", "fun": F, "args": [...], "env": {...}, "who": W, "timings": {...}}``
    client -> agent: run ``F`` with the salt-call command-line ``args``.
``{"op": "ping"}`` / ``{"op": "stop"}``
    client -> agent: ``{"pong": PID, ...}`` / ``{"stopping": PID}``.
``{"restart": REASON}``
    agent -> client: the agent is out of date and stops; start a fresh one and ask again.
``{"started": PID, ...}``
    agent -> client: the call runs in process PID (nothing ran before this message).
``{"out": LINE}``
    agent -> client: one line the call wrote to its stdout or stderr.
``{"ret": VALUE, "retcode": N, "timings": {...}}``
    agent -> client: the call's return and retcode; the last message.
"""

import json
import os
import socket
import sys
import time

from mc_project.common.vocabulary import PROJECTS_ROOT as DEFAULT_PROJECTS_ROOT
from mc_project.errors import CorpusError
from mc_project.project import rundir

SOCKET_NAME = "agent.sock"
PID_NAME = "agent.pid"
LOCK_NAME = "agent.lock"
LOG_NAME = "agent.log"
AGENT_DIR_NAME = ".corpus-agent"
DEFAULT_CONFIG_DIR = "/etc/salt"
# How long a client waits for an agent it started to listen.
START_TIMEOUT = 20
# Variables of the client's environment a call gets (tests stop a deploy at a step).
FORWARDED_ENV = ("CORPUS_KILL_AT",)
# One message (a deploy's return) is small; this only stops a runaway peer.
MAX_LINE = 64 * 1024 * 1024


class ProtocolError(Exception):
    """A peer sent something that is not a line of one JSON object."""


def encode(message):
    """One message as its line of bytes."""
    if not isinstance(message, dict):
        raise ProtocolError(f"a message is a JSON object, not {type(message).__name__}")
    # ensure_ascii escapes every control character: a message never spans two lines.
    return (json.dumps(message, separators=(",", ":"), default=repr) + "\n").encode("ascii")


def decode(line):
    """The message of one line (bytes or str, with or without its newline)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON line: {line[:200]!r} ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"not a JSON object: {line[:200]!r}")
    return message


class LineReader:
    """Splits a byte stream into messages, whatever the chunks it arrives in."""

    def __init__(self, max_line=MAX_LINE):
        self.buffer = b""
        self.max_line = max_line

    def feed(self, data):
        """The complete messages ``data`` finishes, in order."""
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > self.max_line:
            raise ProtocolError(f"a line longer than {self.max_line} bytes")
        return [decode(line) for line in lines if line.strip()]

    def pending(self):
        """Bytes of an unfinished line (a peer that stopped mid-message)."""
        return len(self.buffer)


def messages(sock, reader=None, bufsize=65536):
    """Yield the messages read from ``sock`` until the peer closes it."""
    reader = reader or LineReader()
    while True:
        data = sock.recv(bufsize)
        if not data:
            if reader.pending():
                raise ProtocolError("the connection closed in the middle of a message")
            return
        yield from reader.feed(data)


def read_message(sock, timeout=None):
    """The first message on ``sock``, read byte-wise so nothing after it is consumed."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        byte = sock.recv(1)
        if not byte:
            raise ProtocolError("the connection closed before a whole message came")
        if byte == b"\n":
            return decode(bytes(data))
        data += byte
        if len(data) > MAX_LINE:
            raise ProtocolError(f"a line longer than {MAX_LINE} bytes")


# --------------------------------------------------------------------------- where

def socket_dir(config_dir, projects_root):
    """The agent's private directory for the Salt configuration ``config_dir``."""
    preferred = os.path.join(projects_root or DEFAULT_PROJECTS_ROOT, AGENT_DIR_NAME)
    return rundir.socket_dir(preferred, os.path.abspath(config_dir))


def salt_call_config(salt_call):
    """(config dir, local) of a salt-call command line (``CORPUS_SALT_CALL``)."""
    import shlex  # only the hook path needs it

    words = shlex.split(salt_call)
    config_dir, local = DEFAULT_CONFIG_DIR, False
    for i, word in enumerate(words):
        if word in ("-c", "--config-dir") and i + 1 < len(words):
            config_dir = words[i + 1]
        elif word.startswith("--config-dir="):
            config_dir = word.split("=", 1)[1]
        elif word == "--local":
            local = True
    return os.path.abspath(config_dir), local


# --------------------------------------------------------------------------- client

class Options:
    def __init__(self):
        self.config_dir = None
        self.local = False
        self.salt_call = None
        self.projects_root = None
        self.out_file = None
        self.pusher = False
        self.fun = None
        self.args = []


USAGE = ("usage: python -m mc_project.project.agent_client (-c DIR [--local] | --salt-call CMD) "
         "[--projects-root ROOT] [--out-file FILE] [--pusher] FUN [ARG ...]")


def parse_args(argv):
    """Options of the command line (argparse costs more than the whole parse here)."""
    opts = Options()
    argv = list(argv)
    while argv and opts.fun is None:
        word = argv.pop(0)
        if word == "--":
            break
        if word == "--local":
            opts.local = True
            continue
        if word == "--pusher":  # the output goes to a git pusher: corpus's sentences only
            opts.pusher = True
            continue
        for flag, attr in (("-c", "config_dir"), ("--config-dir", "config_dir"),
                           ("--salt-call", "salt_call"), ("--projects-root", "projects_root"),
                           ("--out-file", "out_file")):
            if word == flag:
                if not argv:
                    raise SystemExit(f"{flag} needs a value\n{USAGE}")
                setattr(opts, attr, argv.pop(0))
                break
            if word.startswith(flag + "=") and flag.startswith("--"):
                setattr(opts, attr, word.split("=", 1)[1])
                break
        else:
            if word.startswith("-"):
                raise SystemExit(f"unknown option {word}\n{USAGE}")
            opts.fun = word
    if opts.fun is None:
        if not argv:
            raise SystemExit(USAGE)
        opts.fun = argv.pop(0)
    opts.args = argv
    if opts.config_dir is None:
        if opts.salt_call:
            opts.config_dir, local = salt_call_config(opts.salt_call)
            opts.local = opts.local or local
        else:
            opts.config_dir = DEFAULT_CONFIG_DIR
    opts.config_dir = os.path.abspath(opts.config_dir)
    return opts


def say(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def connect(path, timeout=5):
    """A connected socket to the agent at ``path``, or None when none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (TimeoutError, FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    sock.settimeout(None)
    return sock


def agent_command(opts):
    cmd = [sys.executable, "-m", "mc_project.project.agent", "--config-dir", opts.config_dir]
    if opts.local:
        cmd.append("--local")
    if opts.projects_root:
        cmd += ["--projects-root", opts.projects_root]
    return cmd


def start_agent(opts):
    """Start the agent (it returns once it listens); None, or why it could not start."""
    import subprocess  # only when no agent runs: not on the path of every push

    try:
        proc = subprocess.run(agent_command(opts), check=False, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=START_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        return f"it did not listen within {START_TIMEOUT} s"
    except OSError as exc:
        return str(exc)
    if proc.returncode:
        text = proc.stdout.decode("utf-8", "replace").strip().splitlines()
        return text[-1] if text else f"it exited {proc.returncode}"
    return None


class Retry(Exception):
    """The agent did not run the call (it restarts or went away first): ask again."""


def for_pusher(fun, out=say):
    """``out`` without Salt's ``Error running 'FUN': `` wrapper: a pusher reads corpus's
    sentence as it is."""
    wrapper = f"Error running '{fun}': "

    def relay(line):
        out(line[len(wrapper):] if line.startswith(wrapper) else line)
    return relay


def exchange(sock, request, out=say):
    """Send ``request``, relay the output; returns the final message."""
    sock.sendall(encode(request))
    started = False
    try:
        for message in messages(sock):
            if "out" in message:
                out(message["out"])
            elif "started" in message:
                started = True
            elif "ret" in message or "retcode" in message:
                return message
            elif "restart" in message and not started:
                raise Retry(message["restart"])
            elif "error" in message:
                return {"ret": None, "retcode": 1, "error": message["error"]}
    except (ConnectionResetError, ProtocolError) as exc:
        if not started:
            raise Retry(str(exc)) from None
        return {"ret": None, "retcode": 1,
                "error": f"the deploy agent's worker ended without a result ({exc})"}
    if not started:
        raise Retry("the agent closed the connection")
    return {"ret": None, "retcode": 1,
            "error": "the deploy agent's worker ended without a result (it was killed)"}


def request_for(opts, hook_started=None):
    env = {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}
    who = next((a.split("=", 1)[1] for a in opts.args if a.startswith("who=")), None)
    timings = {"client": time.time()}
    if hook_started:
        timings["hook"] = hook_started
    return {"op": "call", "fun": opts.fun, "args": opts.args, "env": env, "who": who,
            "timings": timings}


def write_return(path, value):
    # What `salt-call --out=json --out-file=PATH` would have written.
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"local": value}, fh, indent=4, default=repr)
        fh.write("\n")


def record_timings(final, request):
    """Append the hook-to-return timings to ``$CORPUS_AGENT_TIMINGS`` (the benchmarks)."""
    path = os.environ.get("CORPUS_AGENT_TIMINGS")
    if not path:
        return
    timings = dict(request["timings"], **(final.get("timings") or {}))
    timings["client_done"] = time.time()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"fun": request["fun"], "args": request["args"],
                             "retcode": final.get("retcode"), "timings": timings}) + "\n")


def fall_back(opts, reason):
    """Run the salt-call of the hook instead (as the hook did before the agent)."""
    if not opts.salt_call:
        say(f"corpus: the deploy agent could not be used ({reason}).")
        return 1
    import shlex

    say(f"corpus: the deploy agent could not be used ({reason}); running salt-call instead.")
    cmd = shlex.split(opts.salt_call) + ["--retcode-passthrough", "-l", "quiet", "--out=json"]
    if opts.out_file:
        cmd.append("--out-file=" + opts.out_file)
    cmd += [opts.fun] + opts.args
    sys.stderr.flush()
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        say(f"corpus: cannot run {cmd[0]}: {exc}")
        return 1


def call(opts, hook_started=None):
    """Run one call through the agent; returns the exit code."""
    try:
        path = os.path.join(socket_dir(opts.config_dir, opts.projects_root), SOCKET_NAME)
    except (CorpusError, OSError) as exc:  # rundir refuses a directory others could use
        return fall_back(opts, str(exc))
    request = request_for(opts, hook_started)
    reason = "it kept restarting"
    for _ in range(4):
        sock = connect(path)
        if sock is None:
            started = time.time()
            why = start_agent(opts)
            request["timings"]["agent_start"] = time.time() - started
            if why:
                return fall_back(opts, "it could not be started: " + why)
            sock = connect(path)
            if sock is None:
                reason = f"nothing listens on {path} after it started"
                continue
        try:
            final = exchange(sock, request, for_pusher(opts.fun) if opts.pusher else say)
        except Retry as exc:
            reason = str(exc)
            continue
        finally:
            sock.close()
        if final.get("error"):
            say("corpus: " + final["error"])
        if opts.out_file:
            write_return(opts.out_file, final.get("ret"))
        record_timings(final, request)
        code = final.get("retcode") or 0
        return code if isinstance(code, int) else 1
    return fall_back(opts, reason)


def main(argv=None):
    hook_started = os.environ.pop("CORPUS_HOOK_STARTED", None)
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        hook_started = float(hook_started) if hook_started else None
    except ValueError:
        hook_started = None
    return call(opts, hook_started)


if __name__ == "__main__":
    sys.exit(main())
