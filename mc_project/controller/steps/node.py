"""The steps of ``link_node``: a host becomes a compute node over SSH.

    ssh:connect  node:ship  node:install  salt:seed_key  salt:start_minion  node:setup  inventory:add_node

It connects over SSH (the node's host key is trusted on first link, recorded in
the inventory, and a changed key is refused later), ships the controller's
wheelhouse (only missing or changed files), installs corpus with no index,
writes the minion configuration, pre-seeds the minion's key pair (made here; the
private key goes over SFTP only, the public one is accepted on the master),
starts the minion, waits until it answers ``test.ping``, has it set its bridge,
NAT and proxy up (``mc_lxc.setup_node``) and records the node. A failure undoes
the steps done: no inventory row, no accepted key, no minion left running, and
the prefix removed if this link made it. Re-linking a node refreshes it.

A step that fails leaves its own undo to the job (``UNDO_OWN_FAILURE``): the
undo of the steps before it takes the node back.
"""

import os
import posixpath
import shlex
import time

import paramiko
import salt.crypt
from sqlalchemy import delete, select

from mc_project.common import messages
from mc_project.common.vocabulary import MINION_UNIT
from mc_project.controller import checks, nodes, ssh
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, SshKey
from mc_project.node import tables
from mc_project.project import files
from mc_project.project.bundle import sha256_of

UNDO_OWN_FAILURE = False
PING_TIMEOUT = 90  # a fresh minion authenticates in a few seconds
INSTALL_TIMEOUT = 900
SALT_CALL_TIMEOUT = 300
KEY_SIZE = 2048
COLUMNS = ("address", "dns_name", "ssh_port", "ssh_user", "slots", "subnet", "http_port", "bridge",
           "prefix", "lxc_path", "minion_id", "status", "nat_port_min", "nat_port_max")

# The SSH connection of each running link job, by job id.
_shells = {}


def node_shell(ctl, ctx):
    """The job's SSH connection, opened again (same host key only) after a restart."""
    shell = _shells.get(ctx.job_id)
    if shell is None:
        clip = ctx.clipboard
        shell, _key = ssh.connect(clip["host"], clip["port"], clip["user"], clip["key"], clip.get("host_key"))
        _shells[ctx.job_id] = shell
    return shell


def close_shell(job_id):
    """Close the SSH connection job ``job_id`` opened, if any."""
    shell = _shells.pop(job_id, None)
    if shell is not None:
        shell.close()


def ssh_connect(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        known = None
        if clip.get("name"):
            known = sess.scalar(select(ComputeNode).where(ComputeNode.name == clip["name"]))
        if known is None:
            known = sess.scalar(select(ComputeNode).where(ComputeNode.address == clip["host"],
                                                          ComputeNode.ssh_port == clip["port"]))
        known_key = nodes.host_key_of(sess, known) if known is not None else None
    shell, server_key = ssh.connect(clip["host"], clip["port"], clip["user"], clip["key"], known_key)
    _shells[ctx.job_id] = shell
    clip["host_key"] = ssh.host_key_line(server_key)
    clip["host_key_fingerprint"] = ssh.fingerprint(server_key)
    ctx.log("connected to {}, host key {}{}".format(
        shell.where, clip["host_key_fingerprint"], " (known)" if known_key else " (first use)"))

    code, out, _err = shell.run("id -u; hostname -s; test -d /run/systemd/system && echo systemd; "
                                "ip -4 route show 2>/dev/null")
    lines = out.splitlines()
    if code != 0 or len(lines) < 2:
        raise CorpusError("Cannot run commands on {}.".format(shell.where))
    if lines[0].strip() != "0":
        raise CorpusError("{} is not root; corpus installs itself as root (link with user=root).".format(
            shell.where))
    name = clip.get("name") or lines[1].strip()
    checks.check_node_name(name)
    with db.session(ctl.url) as sess:
        other = sess.scalar(select(ComputeNode).where(ComputeNode.address == clip["host"],
                                                      ComputeNode.ssh_port == clip["port"],
                                                      ComputeNode.name != name))
        if other is not None:
            raise CorpusError("{}:{} is already linked as node {}.".format(
                clip["host"], clip["port"], other.name))
        relinked = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
        clip["relink"] = relinked is not None
        known_subnet = relinked.subnet if relinked is not None else None
        if relinked is not None and known is None:
            # Linked before at another address: trust its recorded host key only.
            recorded = nodes.host_key_of(sess, relinked)
            if recorded and recorded != clip["host_key"]:
                raise CorpusError("Node {} was linked with another SSH host key; unlink it before "
                                  "linking {} under that name.".format(name, clip["host"]))
    if not clip["relink"] and ctl.accepted_key(name):
        raise CorpusError("The master already accepts a minion named {}; link the node under "
                          "another name.".format(name))
    clip["name"] = name
    clip["minion_id"] = name
    clip["systemd"] = "systemd" in lines[2:3]
    clip["routes"] = nodes.parse_routes("\n".join(lines[2:]), clip["bridge"])

    code, out, err = shell.run("python3 -c 'import sys, venv, ensurepip; "
                               "print(\"%d.%d\" % sys.version_info[:2])'")
    if code != 0:
        raise CorpusError("{} has no usable python3 (corpus needs python3 and python3-venv there): "
                          "{}.".format(clip["host"], messages.last_line(err or out, "no output")))
    clip["python"] = out.strip()
    wanted = nodes.wheel_python_tags(ctl.settings["wheelhouse"])
    if wanted and clip["python"] not in wanted:
        raise CorpusError("{} runs Python {} but the controller's wheelhouse is for Python {}.".format(
            clip["host"], clip["python"], ", ".join(sorted(wanted))))
    choose_nft_table(clip, shell, known_subnet)


def choose_nft_table(clip, shell, known_subnet):
    """The node's own nftables table (``nft_table``, else one named after the node), refused when
    another node's table guards its bridge; the tables it used before go to ``node:setup``,
    which moves the node off them (every node of a machine once shared ``corpus``)."""
    clip["nft_table"] = clip.get("nft_table") or nodes.nft_table_for(clip["name"])
    configured = nodes.configured_nft_table(shell.read(nodes.node_paths(clip["prefix"])["config"]))
    code, out, _err = shell.run("nft -j list sets ip 2>/dev/null")
    found = tables.corpus_tables(out if code == 0 else "")
    subnet = clip.get("subnet") or known_subnet
    tables.refuse_conflicts(found, clip["bridge"], clip["nft_table"], subnet, [configured])
    clip["previous_nft_tables"] = tables.previous(found, clip["bridge"], clip["nft_table"], subnet, configured)


def ssh_disconnect(ctl, ctx):
    close_shell(ctx.job_id)


def ship(ctl, ctx):
    clip = ctx.clipboard
    shell = node_shell(ctl, ctx)
    paths = nodes.node_paths(clip["prefix"])
    wheelhouse = ctl.settings["wheelhouse"]
    if not os.path.isdir(wheelhouse):
        raise CorpusError("The controller has no wheelhouse at {}; run `corpus-controller init` "
                          "first.".format(wheelhouse))
    clip["corpus_wheel"] = nodes.corpus_wheel(wheelhouse)
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
                filename, shell.where, messages.reason(exc))) from exc
        sent += os.path.getsize(source)
        ctx.log("sent " + filename)
    stale = [name for name in there if name not in local]
    for filename in stale:
        shell.sftp.remove(posixpath.join(paths["wheelhouse"], filename))
    ctx.log("wheelhouse: {} files, {} bytes sent in {:.1f}s, {} stale removed".format(
        len(local), sent, time.monotonic() - started, len(stale)))


def unship(ctl, ctx):
    if not ctx.undo_data.get("made_prefix"):
        return
    prefix = ctx.clipboard["prefix"]
    node_shell(ctl, ctx).check("rm -rf {}".format(shlex.quote(prefix)), "Removing " + prefix)
    ctx.log("removed " + prefix)


def install(ctl, ctx):
    clip = ctx.clipboard
    shell = node_shell(ctl, ctx)
    paths = nodes.node_paths(clip["prefix"])
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
        pip=pip, wheel=shlex.quote(posixpath.join(paths["wheelhouse"], clip["corpus_wheel"]))),
        "Installing corpus", timeout=INSTALL_TIMEOUT)
    version = shell.check("{} --version".format(shlex.quote(paths["salt_minion"])),
                          "Running the installed salt-minion")
    ctx.log("installed corpus in {} ({}) in {:.1f}s".format(
        paths["venv"], version.strip(), time.monotonic() - started))


def seed_key(ctl, ctx):
    clip = ctx.clipboard
    shell = node_shell(ctl, ctx)
    paths = nodes.node_paths(clip["prefix"])
    minion_id = clip["minion_id"]
    previous = ctl.accepted_key(minion_id)
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
    master_public = files.read_text(os.path.join(ctl.opts["pki_dir"], "master.pub"))
    if master_public:
        shell.write(posixpath.join(paths["pki_dir"], "minion_master.pub"), master_public)
    shell.check("mkdir -p {}".format(shlex.quote(paths["config_dir"])), "Making " + paths["config_dir"])
    shell.write(paths["config"], nodes.minion_config(paths, minion_id, ctl.settings["master_address"],
                                               ctl.opts, clip["lxc_path"], clip["nft_table"]))
    ctl.seed_key(minion_id, public)
    ctx.log("minion {} accepted on the master, config at {}".format(minion_id, paths["config"]))


def unseed_key(ctl, ctx):
    minion_id = ctx.clipboard["minion_id"]
    previous = ctx.undo_data.get("previous_key")
    if previous:
        ctl.seed_key(minion_id, previous)
        ctx.log("the previously accepted key is back")
    else:
        ctl.delete_key(minion_id)
        ctx.log("the minion key is no longer accepted")


def start_minion(ctl, ctx):
    clip = ctx.clipboard
    shell = node_shell(ctl, ctx)
    paths = nodes.node_paths(clip["prefix"])
    started = time.monotonic()
    # A running minion keeps its old code, key and config: restart it.
    shell.check(nodes.stop_minion_command(paths), "Stopping the old minion")
    with ctl.listening("salt/minion/{}/start".format(clip["minion_id"])) as events:
        if clip["systemd"]:
            shell.write("/etc/systemd/system/" + MINION_UNIT, nodes.minion_unit(paths))
            shell.check("systemctl daemon-reload && systemctl enable --now {}".format(MINION_UNIT),
                        "Starting " + MINION_UNIT)
        else:
            shell.check("{} -c {} -d </dev/null >/dev/null 2>&1".format(
                shlex.quote(paths["salt_minion"]), shlex.quote(paths["config_dir"])),
                "Starting the salt-minion")
        answered = ctl.wait_for_ping(clip["minion_id"], PING_TIMEOUT, events)
    if not answered:
        tail = shell.run("tail -n 3 {}".format(shlex.quote(paths["log_file"])))[1]
        raise CorpusError("The minion {} on {} did not answer test.ping within {}s{}.".format(
            clip["minion_id"], clip["host"], PING_TIMEOUT,
            " (its log ends: {})".format(messages.last_line(tail, "no output")) if tail.strip() else ""))
    ctx.log("minion {} answers test.ping ({:.1f}s)".format(
        clip["minion_id"], time.monotonic() - started))


def stop_minion(ctl, ctx):
    clip = ctx.clipboard
    if clip.get("relink"):
        return  # the node stays linked as it was
    node_shell(ctl, ctx).check(nodes.stop_minion_command(nodes.node_paths(clip["prefix"])),
                          "Stopping the minion")
    if clip.get("systemd"):
        node_shell(ctl, ctx).run("rm -f /etc/systemd/system/{0}; systemctl daemon-reload".format(MINION_UNIT))
    ctx.log("minion stopped")


def setup(ctl, ctx):
    clip = ctx.clipboard
    if not clip.get("subnet"):
        with db.session(ctl.url) as sess:
            mine = sess.scalar(select(ComputeNode.subnet).where(ComputeNode.name == clip["name"]))
            taken = sess.scalars(select(ComputeNode.subnet).where(ComputeNode.name != clip["name"],
                                                                  ComputeNode.subnet.is_not(None))).all()
        clip["subnet"] = mine or nodes.free_subnet(taken, clip["routes"])
    kwarg = {"bridge": clip["bridge"], "subnet": clip["subnet"], "http_port": clip["http_port"],
             "lxc_path": clip["lxc_path"], "table": clip["nft_table"],
             "previous_tables": clip.get("previous_nft_tables") or []}
    answer = ctl.answer(clip["minion_id"], "mc_lxc.setup_node", timeout=SALT_CALL_TIMEOUT, **kwarg)
    if answer is None or answer.get("retcode") or not isinstance(answer.get("ret"), dict):
        if not clip.get("relink"):  # what it made before it failed goes: this step's undo is not run
            try:
                teardown(ctl, ctx)
            except CorpusError as exc:  # the failure itself is what the job reports
                ctx.log("taking the node down again failed too: {}".format(exc))
        if answer is None:
            raise CorpusError("The minion {} did not answer mc_lxc.setup_node.".format(clip["minion_id"]))
        raise CorpusError("Setting up node {} failed: {}.".format(
            clip["name"], messages.last_line(str(answer.get("ret")), "no output").removeprefix("ERROR: ")))
    ctx.log("bridge {} on {}, proxy on port {}, nft table {}".format(
        clip["bridge"], clip["subnet"], clip["http_port"], clip["nft_table"]))
    for released in answer["ret"].get("previous_tables") or []:
        ctx.log(released)


def teardown(ctl, ctx):
    """Take away what ``setup`` made on a node linked by this job (a relinked node stays as it
    was): its haproxy, nftables tables, golden container and bridge."""
    clip = ctx.clipboard
    if clip.get("relink") or not clip.get("subnet"):
        return
    report = nodes.teardown_node(ctl, clip["minion_id"], clip["bridge"], clip["subnet"], clip["lxc_path"])
    for line in report["removed"] + report["kept"]:
        ctx.log(line)


def add_node(ctl, ctx):
    clip = ctx.clipboard
    values = {"address": clip["host"], "dns_name": clip["dns_name"], "ssh_port": clip["port"],
              "ssh_user": clip["user"], "slots": clip["slots"], "subnet": clip["subnet"],
              "http_port": clip["http_port"], "bridge": clip["bridge"], "prefix": clip["prefix"],
              "lxc_path": clip["lxc_path"], "minion_id": clip["minion_id"], "status": "active",
              "nat_port_min": clip["nat_ports"][0], "nat_port_max": clip["nat_ports"][1]}
    with db.session(ctl.url) as sess:
        clash = sess.scalar(select(ComputeNode.name).where(ComputeNode.subnet == clip["subnet"],
                                                           ComputeNode.name != clip["name"]))
        if clash:
            raise CorpusError("Subnet {} is already node {}'s.".format(clip["subnet"], clash))
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == clip["name"]))
        if node is None:
            node = ComputeNode(name=clip["name"], guest_type="lxc", **values)
            sess.add(node)
            sess.flush()
            ctx.undo_data["created"] = True
        else:
            ctx.undo_data["previous"] = {column: getattr(node, column) for column in COLUMNS}
            for column, value in values.items():
                setattr(node, column, value)
        sess.execute(delete(SshKey).where(SshKey.node_id == node.id, SshKey.name == nodes.HOST_KEY_NAME))
        sess.add(SshKey(name=nodes.HOST_KEY_NAME, node_id=node.id, public_key=clip["host_key"],
                        fingerprint=clip["host_key_fingerprint"]))
        clip["node"] = nodes.node_record(sess, node)
    ctx.log("node {} recorded".format(clip["name"]))


def remove_node(ctl, ctx):
    name = ctx.clipboard["name"]
    with db.session(ctl.url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
        if node is None:
            return
        if ctx.undo_data.get("created"):
            sess.execute(delete(SshKey).where(SshKey.node_id == node.id))
            sess.delete(node)
        elif ctx.undo_data.get("previous"):
            for column, value in ctx.undo_data["previous"].items():
                setattr(node, column, value)


STEPS = {
    "ssh:connect": (ssh_connect, ssh_disconnect),
    "node:ship": (ship, unship),
    "node:install": (install, None),
    "salt:seed_key": (seed_key, unseed_key),
    "salt:start_minion": (start_minion, stop_minion),
    "node:setup": (setup, teardown),
    "inventory:add_node": (add_node, remove_node),
}
