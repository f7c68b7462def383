"""Compute nodes: link a host to the controller over SSH, unlink it, list them.

Linking is a job (see ``mc_project.jobs``) of undoable steps::

    ssh:connect  node:ship  node:install  salt:seed_key  salt:start_minion  node:setup  inventory:add_node

It connects over SSH (paramiko; the node's host key is trusted on first link,
recorded in the inventory, and a changed key is refused later), ships the
controller's wheelhouse to ``<prefix>/wheelhouse`` (only missing or changed
files), installs corpus in ``<prefix>/venv`` with no index, writes the minion
configuration, pre-seeds the minion's key pair (made here; the private key goes
over SFTP only, the public one is accepted on the master), starts the minion,
waits until it answers ``test.ping``, has it set its bridge, NAT and proxy up
(``mc_lxc.setup_node``) and records the node. A failure undoes the steps done:
no inventory row, no accepted key, no minion left running, and the prefix
removed if this link made it. Re-linking a node refreshes it.
"""

import base64
import hashlib
import ipaddress
import logging
import os
import posixpath
import re
import shlex
import socket
import time

import paramiko
import salt.cache
import salt.client
import salt.crypt
import salt.key
import salt.utils.event
import yaml
from sqlalchemy import delete, func, select

from mc_project import jobs
from mc_project.project.bundle import sha256_of
from mc_project.controller.envs import LIVE
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, PortMapping, SshKey

log = logging.getLogger(__name__)

LINK_STEPS = ("ssh:connect", "node:ship", "node:install", "salt:seed_key",
              "salt:start_minion", "node:setup", "inventory:add_node")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# A path given to the node's shell: absolute, no whitespace nor shell syntax.
PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")

HOST_KEY_NAME = "ssh-host-key"  # SshKey.name of a node's SSH host key
MINION_UNIT = "corpus-minion.service"
SSH_TIMEOUT = 15
PING_TIMEOUT = 90  # a fresh minion authenticates in a few seconds
INSTALL_TIMEOUT = 900
SALT_CALL_TIMEOUT = 300
KEY_SIZE = 2048


# --------------------------------------------------------------------------- layout on the node

def node_paths(prefix):
    """Where corpus lives on a node installed under ``prefix``."""
    etc = posixpath.join(prefix, "etc", "salt")
    return {
        "prefix": prefix,
        "wheelhouse": posixpath.join(prefix, "wheelhouse"),
        "venv": posixpath.join(prefix, "venv"),
        "python": posixpath.join(prefix, "venv", "bin", "python"),
        "salt_minion": posixpath.join(prefix, "venv", "bin", "salt-minion"),
        "config_dir": etc,
        "config": posixpath.join(etc, "minion"),
        "pki_dir": posixpath.join(etc, "pki", "minion"),
        "cachedir": posixpath.join(prefix, "var", "cache", "salt", "minion"),
        "sock_dir": posixpath.join(prefix, "var", "run", "salt", "minion"),
        "pidfile": posixpath.join(prefix, "var", "run", "salt-minion.pid"),
        "log_file": posixpath.join(prefix, "var", "log", "salt", "minion"),
        # mc_lxc's proxy routes and saved port mappings.
        "state_dir": posixpath.join(prefix, "var", "lib", "node"),
    }


def minion_config(paths, minion_id, master_address, master_opts, lxc_path, nft_table):
    """The node's minion configuration (YAML text)."""
    return yaml.safe_dump({
        "id": minion_id,
        "master": master_address,
        "master_port": int(master_opts["ret_port"]),
        "publish_port": int(master_opts["publish_port"]),
        "root_dir": paths["prefix"],
        "pki_dir": paths["pki_dir"],
        "cachedir": paths["cachedir"],
        "sock_dir": paths["sock_dir"],
        "pidfile": paths["pidfile"],
        "log_file": paths["log_file"],
        "file_client": "remote",
        # What mc_lxc uses when a call does not say.
        "mc_lxc": {"lxc_path": lxc_path, "state_dir": paths["state_dir"], "nft_table": nft_table},
    }, default_flow_style=False)


def minion_unit(paths):
    """The systemd unit that runs the node's minion."""
    return ("[Unit]\nDescription=corpus salt-minion ({prefix})\n"
            "After=network-online.target\nWants=network-online.target\n\n"
            "[Service]\nExecStart={minion} -c {config_dir}\nRestart=on-failure\nKillMode=process\n\n"
            "[Install]\nWantedBy=multi-user.target\n").format(
                prefix=paths["prefix"], minion=paths["salt_minion"], config_dir=paths["config_dir"])


# --------------------------------------------------------------------------- SSH

def host_key_line(key):
    return "{} {}".format(key.get_name(), key.get_base64())


def fingerprint(key):
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept the unknown host key of a node linked for the first time, and keep it."""

    def __init__(self):
        self.key = None

    def missing_host_key(self, client, hostname, key):
        self.key = key


class NodeShell:
    """An SSH connection to a node: run commands, move files."""

    def __init__(self, client, where):
        self.client = client
        self.where = where
        self._sftp = None

    @property
    def sftp(self):
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def run(self, command, timeout=SSH_TIMEOUT * 4):
        """Run ``command`` through the node's shell; return ``(retcode, stdout, stderr)``."""
        try:
            _stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            return stdout.channel.recv_exit_status(), out, err
        except (paramiko.SSHException, OSError) as exc:
            raise CorpusError("The SSH connection to {} failed while running a command: {}.".format(
                self.where, _reason(exc))) from exc

    def check(self, command, what, timeout=SSH_TIMEOUT * 4):
        """Run ``command``; raise a sentence naming ``what`` failed if it exits non-zero."""
        code, out, err = self.run(command, timeout)
        if code != 0:
            raise CorpusError("{} failed on {}: {}.".format(what, self.where, _last_line(err or out)))
        return out

    def write(self, path, text, mode=0o644):
        """Write ``text`` to ``path`` atomically, with ``mode`` set before any byte lands."""
        temporary = path + ".corpus-tmp"
        try:
            with self.sftp.open(temporary, "w") as fh:
                self.sftp.chmod(temporary, mode)
                fh.write(text.encode("utf-8"))
            self.sftp.posix_rename(temporary, path)
        except (IOError, paramiko.SSHException) as exc:
            raise CorpusError("Cannot write {} on {}: {}.".format(path, self.where, _reason(exc))) from exc

    def read(self, path):
        """The text of ``path`` on the node, or None when it does not exist."""
        try:
            with self.sftp.open(path, "r") as fh:
                return fh.read().decode("utf-8")
        except FileNotFoundError:
            return None
        except (IOError, paramiko.SSHException) as exc:
            raise CorpusError("Cannot read {} on {}: {}.".format(path, self.where, _reason(exc))) from exc

    def close(self):
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


def connect(host, port, user, key, known_host_key=None, ssh_client_factory=None):
    """An open ``NodeShell`` to ``user@host:port`` and the host key it presented.

    With ``known_host_key`` (``"type base64"``), any other key is refused.
    """
    where = "{}@{}:{}".format(user, host, port)
    if key is not None and not os.path.isfile(key):
        raise CorpusError("No SSH private key at {}.".format(key))
    client = (ssh_client_factory or paramiko.SSHClient)()
    policy = _TrustOnFirstUse()
    client.set_missing_host_key_policy(policy)
    expected = None
    if known_host_key:
        keytype, data = known_host_key.split(None, 1)
        expected = paramiko.PKey.from_type_string(keytype, base64.b64decode(data))
        known_name = host if int(port) == 22 else "[{}]:{}".format(host, port)
        client.get_host_keys().add(known_name, keytype, expected)
    try:
        client.connect(host, port=int(port), username=user, key_filename=key,
                       look_for_keys=key is None, allow_agent=key is None, timeout=SSH_TIMEOUT,
                       banner_timeout=SSH_TIMEOUT, auth_timeout=SSH_TIMEOUT)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise CorpusError(
            "The SSH host key of {}:{} changed since it was linked (expected {}, got {}); "
            "unlink the node before linking it again if this change is expected.".format(
                host, port, fingerprint(exc.expected_key), fingerprint(exc.key))) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise CorpusError("The SSH key {} is protected by a passphrase; corpus needs one without.".format(
            key)) from None
    except paramiko.AuthenticationException:
        client.close()
        raise CorpusError("{} refused the SSH key {}.".format(where, key or "of this controller")) from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise CorpusError("Cannot reach {}:{} over SSH: the connection timed out.".format(
            host, port)) from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        client.close()
        raise CorpusError("Cannot reach {}:{} over SSH: {}.".format(host, port, _reason(exc))) from None
    server_key = expected if known_host_key else policy.key
    if server_key is None:  # already known to the client's own host keys
        server_key = client.get_transport().get_remote_server_key()
    return NodeShell(client, where), server_key


# --------------------------------------------------------------------------- helpers

def _reason(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else "no output"


def _check_int(value, what, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CorpusError("{} must be a whole number, not {!r}.".format(what, value)) from None
    if not low <= number <= high:
        raise CorpusError("{} must be between {} and {}, not {}.".format(what, low, high, number))
    return number


def _check_port_range(value):
    low, _, high = str(value).partition("-")
    try:
        low, high = int(low), int(high)
    except ValueError:
        raise CorpusError("NAT ports are a range MIN-MAX, not {!r}.".format(value)) from None
    if not 1024 <= low <= high <= 65535:
        raise CorpusError("NAT ports {!r} must be a range within 1024-65535.".format(value))
    return [low, high]


def _check_path(value, what):
    if not isinstance(value, str) or not PATH_RE.match(value) or "/../" in value + "/" or value == "/":
        raise CorpusError("{} must be an absolute path of plain characters, not {!r}.".format(what, value))
    return value.rstrip("/")


def _check_name(value, what="A node name"):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise CorpusError("{} is letters, digits, '.', '_' and '-' (64 at most), not {!r}.".format(
            what, value))
    return value


def _check_subnet(value):
    try:
        subnet = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise CorpusError("{!r} is not a subnet in CIDR notation (e.g. 10.20.0.0/24).".format(
            value)) from None
    if subnet.version != 4 or not 8 <= subnet.prefixlen <= 29:
        raise CorpusError("A node's subnet is an IPv4 network from /8 to /29, not {}.".format(subnet))
    return subnet


def _is_address(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def node_record(sess, node):
    """A node's inventory record as a JSON-able mapping."""
    used = sess.scalar(select(func.count(Environment.id)).where(Environment.node_id == node.id,
                                                                Environment.status.in_(LIVE)))
    return {
        "name": node.name, "address": node.address, "dns_name": node.dns_name,
        "ssh_port": node.ssh_port, "ssh_user": node.ssh_user, "slots": node.slots,
        "free_slots": max(node.slots - used, 0), "guest_type": node.guest_type,
        "status": node.status, "subnet": node.subnet, "http_port": node.http_port,
        "bridge": node.bridge, "lxc_path": node.lxc_path, "prefix": node.prefix,
        "minion_id": node.minion_id, "nat_port_min": node.nat_port_min,
        "nat_port_max": node.nat_port_max,
    }


def _host_key_of(sess, node):
    return sess.scalar(select(SshKey.public_key).where(SshKey.node_id == node.id,
                                                       SshKey.name == HOST_KEY_NAME))


def _key_cache(master_opts):
    """The master's key store (the ``keys`` bank salt-key itself uses)."""
    return salt.cache.Cache(master_opts, driver=master_opts["keys.cache_driver"])


def accepted_key(master_opts, minion_id):
    """The public key the master accepts for ``minion_id``, or None."""
    found = _key_cache(master_opts).fetch("keys", minion_id) or {}
    return found.get("pub") if found.get("state") == "accepted" else None


def accept_key(master_opts, minion_id, public_key):
    """Accept ``public_key`` for ``minion_id`` (any pending, rejected or denied key goes)."""
    cache = _key_cache(master_opts)
    cache.flush("denied_keys", minion_id)
    cache.store("keys", minion_id, {"state": "accepted", "pub": public_key})


def delete_key(master_opts, minion_id):
    """Forget every key of ``minion_id``, as ``salt-key -d`` does."""
    with salt.key.Key(master_opts) as keys:
        keys.delete_key(match_dict={"minions": [minion_id], "minions_pre": [minion_id],
                                    "minions_rejected": [minion_id], "minions_denied": [minion_id]})


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _salt_cmd(master_opts, minion_id, fun, kwarg=None, timeout=SALT_CALL_TIMEOUT):
    """Run ``fun`` on one minion; its ``{"ret", "retcode"}`` or None if it did not answer."""
    client = salt.client.LocalClient(mopts=master_opts)
    try:
        answer = client.cmd(minion_id, fun, kwarg=kwarg or {}, timeout=timeout, full_return=True)
    finally:
        client.destroy()
    return (answer or {}).get(minion_id)


def wait_for_ping(master_opts, minion_id, timeout=PING_TIMEOUT, events=None):
    """Whether ``minion_id`` answered ``test.ping`` within ``timeout`` seconds.

    With ``events`` (the master's event bus, listened to before the minion was
    started), the ping waits for the minion's start event: a ping sent before
    the minion is connected only times out.
    """
    deadline = time.monotonic() + timeout
    if events is not None:
        events.get_event(wait=timeout, tag="salt/minion/{}/start".format(minion_id), full=True)
    while True:
        left = deadline - time.monotonic()
        answer = _salt_cmd(master_opts, minion_id, "test.ping", timeout=max(min(left, 10), 2))
        if answer and answer.get("ret") is True:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)


def _stop_minion_command(paths):
    """A shell command stopping the node's minion, whichever way it was started.

    A daemonised ``salt-minion`` forks process managers into its process group:
    the whole group is stopped (killed after ten seconds), or they would live on.
    """
    return (
        "if [ -d /run/systemd/system ]; then systemctl disable --now {unit} 2>/dev/null; fi; "
        "if [ -f {pidfile} ]; then pid=$(cat {pidfile}); pgid=$(ps -o pgid= -p \"$pid\" | tr -d ' '); "
        "if [ -n \"$pgid\" ] && grep -q salt-minion /proc/$pid/cmdline; then "
        "kill -TERM -$pgid; "
        "for i in $(seq 50); do ps -e -o pgid=,stat= | "
        "awk -v g=$pgid '$1 == g && $2 !~ /^Z/ {{live = 1}} END {{exit !live}}' || break; sleep 0.2; done; "
        "kill -KILL -$pgid 2>/dev/null; fi; rm -f {pidfile}; fi; true"
    ).format(unit=MINION_UNIT, pidfile=shlex.quote(paths["pidfile"]))


def _falls_silent(master_opts, minion_id, timeout=20):
    """Whether ``minion_id`` stops answering ``test.ping`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        answer = _salt_cmd(master_opts, minion_id, "test.ping", timeout=3)
        if not answer or answer.get("ret") is not True:
            return True
    return False


def _wheel_python_tags(wheelhouse):
    """The CPython versions ("3.11") the binary wheels of ``wheelhouse`` are for."""
    tags = set()
    for filename in os.listdir(wheelhouse):
        # Interpreter and ABI both "cpXY": a wheel for that Python only (not abi3).
        match = re.search(r"-cp(\d)(\d+)-cp\1\2m?-", filename)
        if filename.endswith(".whl") and match:
            tags.add("{}.{}".format(match.group(1), match.group(2)))
    return tags


def _corpus_wheel(wheelhouse):
    found = sorted(name for name in os.listdir(wheelhouse)
                   if name.startswith("corpus-") and name.endswith(".whl"))
    if not found:
        raise CorpusError("The wheelhouse {} holds no corpus wheel; build it with "
                          "`corpus-controller init` first.".format(wheelhouse))
    return found[-1]


def _free_subnet(taken, routes):
    """The first 10.<N>.0.0/24 that neither another node nor the node's own routes use."""
    used = [ipaddress.ip_network(cidr) for cidr in taken] + [ipaddress.ip_network(cidr) for cidr in routes]
    for number in range(1, 255):
        candidate = ipaddress.ip_network("10.{}.0.0/24".format(number))
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)
    raise CorpusError("No free 10.N.0.0/24 subnet is left for a new node; give one with subnet=.")


def _parse_routes(text, bridge):
    """The IPv4 networks in ``ip -4 route`` output, except the default and ``bridge``'s own."""
    networks = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("default", "unreachable", "blackhole", "prohibit"):
            continue
        if "dev" in words and words[words.index("dev") + 1:words.index("dev") + 2] == [bridge]:
            continue
        try:
            network = ipaddress.ip_network(words[0], strict=False)
        except ValueError:
            continue
        if network.version == 4 and network.prefixlen > 0:
            networks.append(str(network))
    return networks


# --------------------------------------------------------------------------- the link job

class NodeLinker:
    """The steps of a ``link_node`` job, bound to a controller's settings and master.

    ``registry()`` gives the steps for ``jobs.Jobs``; the SSH connections they
    open are kept per job and closed by ``close()`` (or at the end of a ``with``).
    """

    def __init__(self, settings, master_opts, ssh_client_factory=None):
        self.settings = settings
        self.master_opts = master_opts
        self.ssh_client_factory = ssh_client_factory
        self.shells = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        for shell in self.shells.values():
            shell.close()
        self.shells.clear()

    def registry(self):
        return {
            "ssh:connect": (self.ssh_connect, self.ssh_disconnect),
            "node:ship": (self.ship, self.unship),
            "node:install": (self.install, None),
            "salt:seed_key": (self.seed_key, self.unseed_key),
            "salt:start_minion": (self.start_minion, self.stop_minion),
            "node:setup": (self.setup, None),
            "inventory:add_node": (self.add_node, self.remove_node),
        }

    @property
    def url(self):
        return self.settings["db_url"]

    def shell(self, ctx):
        """The job's SSH connection, opened again (same host key only) after a restart."""
        shell = self.shells.get(ctx.job_id)
        if shell is None:
            board = ctx.clipboard
            shell, _key = connect(board["host"], board["port"], board["user"], board["key"],
                                  board.get("host_key"), self.ssh_client_factory)
            self.shells[ctx.job_id] = shell
        return shell

    # -- ssh:connect

    def ssh_connect(self, ctx):
        board = ctx.clipboard
        with db.session(self.url) as sess:
            known = None
            if board.get("name"):
                known = sess.scalar(select(ComputeNode).where(ComputeNode.name == board["name"]))
            if known is None:
                known = sess.scalar(select(ComputeNode).where(ComputeNode.address == board["host"],
                                                              ComputeNode.ssh_port == board["port"]))
            known_key = _host_key_of(sess, known) if known is not None else None
        shell, server_key = connect(board["host"], board["port"], board["user"], board["key"],
                                    known_key, self.ssh_client_factory)
        self.shells[ctx.job_id] = shell
        board["host_key"] = host_key_line(server_key)
        board["host_key_fingerprint"] = fingerprint(server_key)
        ctx.log("connected to {}, host key {}{}".format(
            shell.where, board["host_key_fingerprint"], " (known)" if known_key else " (first use)"))

        code, out, _err = shell.run("id -u; hostname -s; test -d /run/systemd/system && echo systemd; "
                                    "ip -4 route show 2>/dev/null")
        lines = out.splitlines()
        if code != 0 or len(lines) < 2:
            raise CorpusError("Cannot run commands on {}.".format(shell.where))
        if lines[0].strip() != "0":
            raise CorpusError("{} is not root; corpus installs itself as root (link with user=root).".format(
                shell.where))
        name = board.get("name") or lines[1].strip()
        _check_name(name)
        with db.session(self.url) as sess:
            other = sess.scalar(select(ComputeNode).where(ComputeNode.address == board["host"],
                                                          ComputeNode.ssh_port == board["port"],
                                                          ComputeNode.name != name))
            if other is not None:
                raise CorpusError("{}:{} is already linked as node {}.".format(
                    board["host"], board["port"], other.name))
            relinked = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
            board["relink"] = relinked is not None
            if relinked is not None and known is None:
                # Linked before at another address: trust its recorded host key only.
                recorded = _host_key_of(sess, relinked)
                if recorded and recorded != board["host_key"]:
                    raise CorpusError("Node {} was linked with another SSH host key; unlink it before "
                                      "linking {} under that name.".format(name, board["host"]))
        if not board["relink"] and accepted_key(self.master_opts, name):
            raise CorpusError("The master already accepts a minion named {}; link the node under "
                              "another name.".format(name))
        board["name"] = name
        board["minion_id"] = name
        board["systemd"] = "systemd" in lines[2:3]
        board["routes"] = _parse_routes("\n".join(lines[2:]), board["bridge"])

        code, out, err = shell.run("python3 -c 'import sys, venv, ensurepip; "
                                   "print(\"%d.%d\" % sys.version_info[:2])'")
        if code != 0:
            raise CorpusError("{} has no usable python3 (corpus needs python3 and python3-venv there): "
                              "{}.".format(board["host"], _last_line(err or out)))
        board["python"] = out.strip()
        wanted = _wheel_python_tags(self.settings["wheelhouse"])
        if wanted and board["python"] not in wanted:
            raise CorpusError("{} runs Python {} but the controller's wheelhouse is for Python {}.".format(
                board["host"], board["python"], ", ".join(sorted(wanted))))

    def ssh_disconnect(self, ctx):
        shell = self.shells.pop(ctx.job_id, None)
        if shell is not None:
            shell.close()

    # -- node:ship

    def ship(self, ctx):
        board = ctx.clipboard
        shell = self.shell(ctx)
        paths = node_paths(board["prefix"])
        wheelhouse = self.settings["wheelhouse"]
        if not os.path.isdir(wheelhouse):
            raise CorpusError("The controller has no wheelhouse at {}; run `corpus-controller init` "
                              "first.".format(wheelhouse))
        board["corpus_wheel"] = _corpus_wheel(wheelhouse)
        code, _out, _err = shell.run("test -e {}".format(shlex.quote(paths["prefix"])))
        if code != 0:
            ctx.undo_data["made_prefix"] = True
        remote = shlex.quote(paths["wheelhouse"])
        out = shell.check("mkdir -p {0} && cd {0} && find . -maxdepth 1 -type f ! -name '.*' -printf '%f\\n' "
                          "| while read f; do sha256sum \"$f\"; done".format(remote),
                          "Listing the wheelhouse")
        there = {}
        for line in out.splitlines():
            digest, _sep, filename = line.partition("  ")
            there[filename.strip()] = digest.strip()
        local = sorted(name for name in os.listdir(wheelhouse)  # wheels, not the build stamp
                       if not name.startswith(".") and os.path.isfile(os.path.join(wheelhouse, name)))
        started = time.monotonic()
        sent = 0
        for filename in local:
            source = os.path.join(wheelhouse, filename)
            if there.get(filename) == sha256_of(source):
                continue
            target = posixpath.join(paths["wheelhouse"], filename)
            try:
                shell.sftp.put(source, target + ".corpus-tmp")
                shell.sftp.posix_rename(target + ".corpus-tmp", target)
            except (IOError, paramiko.SSHException) as exc:
                raise CorpusError("Cannot copy {} to {}: {}.".format(
                    filename, shell.where, _reason(exc))) from exc
            sent += os.path.getsize(source)
            ctx.log("sent " + filename)
        stale = [name for name in there if name not in local]
        for filename in stale:
            shell.sftp.remove(posixpath.join(paths["wheelhouse"], filename))
        ctx.log("wheelhouse: {} files, {} bytes sent in {:.1f}s, {} stale removed".format(
            len(local), sent, time.monotonic() - started, len(stale)))

    def unship(self, ctx):
        if not ctx.undo_data.get("made_prefix"):
            return
        prefix = ctx.clipboard["prefix"]
        self.shell(ctx).check("rm -rf {}".format(shlex.quote(prefix)), "Removing " + prefix)
        ctx.log("removed " + prefix)

    # -- node:install

    def install(self, ctx):
        board = ctx.clipboard
        shell = self.shell(ctx)
        paths = node_paths(board["prefix"])
        started = time.monotonic()
        shell.check("test -x {python} || python3 -m venv {venv}".format(
            python=shlex.quote(paths["python"]), venv=shlex.quote(paths["venv"])),
            "Making the virtualenv " + paths["venv"])
        # Compiling every module of salt would take most of the install's time;
        # the minion compiles what it imports.
        pip = ("{} -m pip install -q --disable-pip-version-check --no-compile --no-index "
               "--find-links {}").format(shlex.quote(paths["python"]), shlex.quote(paths["wheelhouse"]))
        # A rebuilt corpus wheel keeps its version: reinstall it alone, whatever pip thinks.
        shell.check("{pip} corpus && {pip} --no-deps --force-reinstall {wheel}".format(
            pip=pip, wheel=shlex.quote(posixpath.join(paths["wheelhouse"], board["corpus_wheel"]))),
            "Installing corpus", timeout=INSTALL_TIMEOUT)
        version = shell.check("{} --version".format(shlex.quote(paths["salt_minion"])),
                              "Running the installed salt-minion")
        ctx.log("installed corpus in {} ({}) in {:.1f}s".format(
            paths["venv"], version.strip(), time.monotonic() - started))

    # -- salt:seed_key

    def seed_key(self, ctx):
        board = ctx.clipboard
        shell = self.shell(ctx)
        paths = node_paths(board["prefix"])
        minion_id = board["minion_id"]
        previous = accepted_key(self.master_opts, minion_id)
        ctx.undo_data["previous_key"] = previous
        shell.check("mkdir -p {} && chmod 700 {}".format(
            shlex.quote(paths["pki_dir"]), shlex.quote(posixpath.dirname(paths["pki_dir"]))),
            "Making the minion's key directory")
        node_public = shell.read(posixpath.join(paths["pki_dir"], "minion.pub"))
        node_private = shell.run("test -s {}".format(
            shlex.quote(posixpath.join(paths["pki_dir"], "minion.pem"))))[0] == 0
        if previous and node_public and node_private and node_public.strip() == previous.strip():
            public = previous
            ctx.log("the node keeps its accepted minion key")
        else:
            private, public = salt.crypt.gen_keys(KEY_SIZE)
            shell.write(posixpath.join(paths["pki_dir"], "minion.pem"), private, mode=0o600)
            del private
            shell.write(posixpath.join(paths["pki_dir"], "minion.pub"), public)
            ctx.log("a new minion key pair was made here; its private half went to the node only")
        # The minion trusts this master from its first connection on.
        master_public = _read(os.path.join(self.master_opts["pki_dir"], "master.pub"))
        if master_public:
            shell.write(posixpath.join(paths["pki_dir"], "minion_master.pub"), master_public)
        shell.check("mkdir -p {}".format(shlex.quote(paths["config_dir"])), "Making " + paths["config_dir"])
        shell.write(paths["config"], minion_config(paths, minion_id, self.settings["master_address"],
                                                   self.master_opts, board["lxc_path"], board["nft_table"]))
        accept_key(self.master_opts, minion_id, public)
        ctx.log("minion {} accepted on the master, config at {}".format(minion_id, paths["config"]))

    def unseed_key(self, ctx):
        minion_id = ctx.clipboard["minion_id"]
        previous = ctx.undo_data.get("previous_key")
        if previous:
            accept_key(self.master_opts, minion_id, previous)
            ctx.log("the previously accepted key is back")
        else:
            delete_key(self.master_opts, minion_id)
            ctx.log("the minion key is no longer accepted")

    # -- salt:start_minion

    def start_minion(self, ctx):
        board = ctx.clipboard
        shell = self.shell(ctx)
        paths = node_paths(board["prefix"])
        started = time.monotonic()
        # A running minion keeps its old code, key and config: restart it.
        shell.check(_stop_minion_command(paths), "Stopping the old minion")
        with salt.utils.event.get_master_event(self.master_opts, self.master_opts["sock_dir"],
                                               listen=True) as events:
            if board["systemd"]:
                shell.write("/etc/systemd/system/" + MINION_UNIT, minion_unit(paths))
                shell.check("systemctl daemon-reload && systemctl enable --now {}".format(MINION_UNIT),
                            "Starting " + MINION_UNIT)
            else:
                shell.check("{} -c {} -d </dev/null >/dev/null 2>&1".format(
                    shlex.quote(paths["salt_minion"]), shlex.quote(paths["config_dir"])),
                    "Starting the salt-minion")
            answered = wait_for_ping(self.master_opts, board["minion_id"], PING_TIMEOUT, events)
        if not answered:
            tail = shell.run("tail -n 3 {}".format(shlex.quote(paths["log_file"])))[1]
            raise CorpusError("The minion {} on {} did not answer test.ping within {}s{}.".format(
                board["minion_id"], board["host"], PING_TIMEOUT,
                " (its log ends: {})".format(_last_line(tail)) if tail.strip() else ""))
        ctx.log("minion {} answers test.ping ({:.1f}s)".format(
            board["minion_id"], time.monotonic() - started))

    def stop_minion(self, ctx):
        board = ctx.clipboard
        if board.get("relink"):
            return  # the node stays linked as it was
        self.shell(ctx).check(_stop_minion_command(node_paths(board["prefix"])),
                              "Stopping the minion")
        if board.get("systemd"):
            self.shell(ctx).run("rm -f /etc/systemd/system/{0}; systemctl daemon-reload".format(MINION_UNIT))
        ctx.log("minion stopped")

    # -- node:setup

    def setup(self, ctx):
        board = ctx.clipboard
        if not board.get("subnet"):
            with db.session(self.url) as sess:
                mine = sess.scalar(select(ComputeNode.subnet).where(ComputeNode.name == board["name"]))
                taken = sess.scalars(select(ComputeNode.subnet).where(ComputeNode.name != board["name"],
                                                                      ComputeNode.subnet.is_not(None))).all()
            board["subnet"] = mine or _free_subnet(taken, board["routes"])
        kwarg = {"bridge": board["bridge"], "subnet": board["subnet"], "http_port": board["http_port"],
                 "lxc_path": board["lxc_path"]}
        answer = _salt_cmd(self.master_opts, board["minion_id"], "mc_lxc.setup_node", kwarg)
        if answer is None:
            raise CorpusError("The minion {} did not answer mc_lxc.setup_node.".format(board["minion_id"]))
        if answer.get("retcode") or not isinstance(answer.get("ret"), dict):
            raise CorpusError("Setting up node {} failed: {}.".format(
                board["name"], _last_line(str(answer.get("ret"))).removeprefix("ERROR: ")))
        ctx.log("bridge {} on {}, proxy on port {}".format(
            board["bridge"], board["subnet"], board["http_port"]))

    # -- inventory:add_node

    COLUMNS = ("address", "dns_name", "ssh_port", "ssh_user", "slots", "subnet", "http_port", "bridge",
               "prefix", "lxc_path", "minion_id", "status", "nat_port_min", "nat_port_max")

    def add_node(self, ctx):
        board = ctx.clipboard
        values = {"address": board["host"], "dns_name": board["dns_name"], "ssh_port": board["port"],
                  "ssh_user": board["user"], "slots": board["slots"], "subnet": board["subnet"],
                  "http_port": board["http_port"], "bridge": board["bridge"], "prefix": board["prefix"],
                  "lxc_path": board["lxc_path"], "minion_id": board["minion_id"], "status": "active",
                  "nat_port_min": board["nat_ports"][0], "nat_port_max": board["nat_ports"][1]}
        with db.session(self.url) as sess:
            clash = sess.scalar(select(ComputeNode.name).where(ComputeNode.subnet == board["subnet"],
                                                               ComputeNode.name != board["name"]))
            if clash:
                raise CorpusError("Subnet {} is already node {}'s.".format(board["subnet"], clash))
            node = sess.scalar(select(ComputeNode).where(ComputeNode.name == board["name"]))
            if node is None:
                node = ComputeNode(name=board["name"], guest_type="lxc", **values)
                sess.add(node)
                sess.flush()
                ctx.undo_data["created"] = True
            else:
                ctx.undo_data["previous"] = {column: getattr(node, column) for column in self.COLUMNS}
                for column, value in values.items():
                    setattr(node, column, value)
            sess.execute(delete(SshKey).where(SshKey.node_id == node.id, SshKey.name == HOST_KEY_NAME))
            sess.add(SshKey(name=HOST_KEY_NAME, node_id=node.id, public_key=board["host_key"],
                            fingerprint=board["host_key_fingerprint"]))
            board["node"] = node_record(sess, node)
        ctx.log("node {} recorded".format(board["name"]))

    def remove_node(self, ctx):
        name = ctx.clipboard["name"]
        with db.session(self.url) as sess:
            node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
            if node is None:
                return
            if ctx.undo_data.get("created"):
                sess.execute(delete(SshKey).where(SshKey.node_id == node.id))
                sess.delete(node)
            elif ctx.undo_data.get("previous"):
                for column, value in ctx.undo_data["previous"].items():
                    setattr(node, column, value)


def register_steps(ctl, registry):
    """Register the ``link_node`` steps in ``registry``, bound to the controller ``ctl``.

    What ``mc_jobs.resume`` and ``mc_jobs.undo`` need to finish or take back a
    link cut off by a restart (its SSH connection is opened again on demand).
    """
    registry.update(NodeLinker(ctl.settings, ctl.opts).registry())


# --------------------------------------------------------------------------- the public functions

def link_node(settings, master_opts, host, user="root", key=None, port=22, name=None, slots=10,
              subnet=None, http_port=80, prefix="/srv/corpus", lxc_path="/var/lib/lxc", dns_name=None,
              ssh_client_factory=None, bridge="corpusbr0", nft_table="corpus", nat_ports="40000-40999",
              fire=None):
    """Install corpus and a minion on ``host`` over SSH and record it as a compute node.

    Runs the ``link_node`` job (see the module docstring); returns the node's
    record, with the job's id as ``job_id``. Raises ``CorpusError`` with one
    sentence when it fails, after undoing what it did.

    ``bridge`` and ``nft_table`` name the node's containers' bridge and its
    nftables table; the node keeps its proxy and NAT state under ``prefix``.
    ``nat_ports`` ("MIN-MAX") are the node ports NATed to its containers' SSH.
    """
    if not isinstance(host, str) or not host.strip() or any(char.isspace() for char in host):
        raise CorpusError("A node's host is an address or a DNS name, not {!r}.".format(host))
    if name is not None:
        _check_name(name)
    if not isinstance(user, str) or not NAME_RE.match(user):
        raise CorpusError("{!r} is not an SSH user name.".format(user))
    if not BRIDGE_RE.match(str(bridge)):
        raise CorpusError("A bridge name is 1 to 15 letters, digits, '.', '_' or '-', not {!r}.".format(
            bridge))
    if not isinstance(nft_table, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,31}$", nft_table):
        raise CorpusError("An nftables table name is a letter then letters, digits or '_', not {!r}.".format(
            nft_table))
    clipboard = {
        "host": host, "user": user, "key": os.path.abspath(key) if key else None,
        "port": _check_int(port, "The SSH port", 1, 65535), "name": name,
        "slots": _check_int(slots, "The number of slots", 0, 100000),
        "subnet": str(_check_subnet(subnet)) if subnet else None,
        "http_port": _check_int(http_port, "The proxy port", 1, 65535),
        "prefix": _check_path(prefix, "The install prefix"),
        "lxc_path": _check_path(lxc_path, "The LXC path"),
        "dns_name": dns_name or (None if _is_address(host) else host), "bridge": bridge,
        "nft_table": nft_table, "nat_ports": _check_port_range(nat_ports),
    }
    if not settings.get("master_address"):
        raise CorpusError("The controller setting corpus:master_address is empty: nodes could not "
                          "reach the master.")
    url = settings["db_url"]
    db.init(url)
    if clipboard["subnet"]:
        with db.session(url) as sess:
            wanted = ipaddress.ip_network(clipboard["subnet"])
            for other, cidr in sess.execute(select(ComputeNode.name, ComputeNode.subnet).where(
                    ComputeNode.subnet.is_not(None))):
                if other != name and wanted.overlaps(ipaddress.ip_network(cidr)):
                    raise CorpusError("Subnet {} overlaps node {}'s {}.".format(wanted, other, cidr))
            node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name)) if name else None
            if node is not None and node.subnet and node.subnet != str(wanted) and sess.scalar(
                    select(func.count(Environment.id)).where(Environment.node_id == node.id)):
                raise CorpusError("Node {} keeps subnet {} while environments live on it.".format(
                    name, node.subnet))
    with NodeLinker(settings, master_opts, ssh_client_factory) as linker:
        manager = jobs.Jobs(url, registry=linker.registry(), fire=fire)
        state = manager.submit("link_node", name or host, list(LINK_STEPS), clipboard)
    if state["status"] != "success":
        raise CorpusError("Linking {} {}.".format(host, state["error"] or "failed"))
    record = dict(state["clipboard"]["node"])
    record["job_id"] = state["id"]
    return record


def unlink_node(settings, master_opts, name, force=False):
    """Forget compute node ``name``: stop its minion, drop its accepted key and its record.

    Refused while environments live on it, unless ``force`` (they are then
    left without a node, status ``orphaned``).
    """
    url = settings["db_url"]
    db.init(url)
    with db.session(url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == str(name)))
        if node is None:
            raise CorpusError("No compute node named {}.".format(name))
        envs = sess.scalars(select(Environment.name).where(Environment.node_id == node.id)
                            .order_by(Environment.name)).all()
        minion_id, prefix = node.minion_id, node.prefix
    if envs and not force:
        raise CorpusError("Node {} still holds {} environment(s) ({}); unlink it with force=True to "
                          "leave them without a node.".format(name, len(envs), ", ".join(envs)))
    # The minion stops itself a moment after answering, from a session of its own
    # (stopping the minion's process group must not stop the stopping shell).
    stop = "setsid sh -c {}".format(shlex.quote("sleep 1; " + _stop_minion_command(node_paths(prefix))))
    answer = _salt_cmd(master_opts, minion_id, "cmd.run_bg", {"cmd": stop, "python_shell": True}, timeout=15)
    stopped = bool(answer) and not answer.get("retcode") and _falls_silent(master_opts, minion_id)
    delete_key(master_opts, minion_id)
    with db.session(url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == str(name)))
        if node is not None:
            for env in sess.scalars(select(Environment).where(Environment.node_id == node.id)):
                env.node_id = None
                env.status = "orphaned"
            sess.execute(delete(PortMapping).where(PortMapping.node_id == node.id))
            sess.execute(delete(SshKey).where(SshKey.node_id == node.id))
            sess.delete(node)
    log.info("Unlinked node %s (minion %s stopped: %s)", name, minion_id, stopped)
    return {"name": name, "minion_id": minion_id, "minion_stopped": stopped, "orphaned": list(envs)}


def list_hosts(settings):
    """The compute nodes: name, address, DNS name, slots, free slots, guest type, status, subnet."""
    url = settings["db_url"]
    db.init(url)
    keys = ("name", "address", "dns_name", "slots", "free_slots", "guest_type", "status", "subnet")
    with db.session(url) as sess:
        nodes = sess.scalars(select(ComputeNode).order_by(ComputeNode.name)).all()
        return [{key: record[key] for key in keys} for record in (node_record(sess, n) for n in nodes)]
