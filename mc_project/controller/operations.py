"""The controller's operations, each run as a job of named steps.

A job is declared here as the list of its steps (``provider:action``, each a
pair of functions in ``steps/<provider>.py``), as a deploy tool declares a
deploy as a list of tasks. Each operation checks its request first (a bad one
is refused in one sentence and no job is made), then creates the job and runs
it here, reporting each step through ``progress(line)``.
"""

import datetime
import ipaddress
import logging
import os
import shlex

from sqlalchemy import delete, func, select

from mc_project.common.vocabulary import (
    DOMAIN_RE,
    ENV_NAME_RE,
    ENV_TYPES,
    LXC_PATH,
    NODE_PREFIX,
    PROJECT_NAME_RE,
)
from mc_project import jobs
from mc_project.controller import checks, envs, images, nodes
from mc_project.controller.steps import node as node_steps
from mc_project.controller.steps import redeploy as redeploy_steps
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import ComputeNode, Environment, Job, PortMapping, SshKey

log = logging.getLogger(__name__)

# A tuple is a group of steps that run at the same time (they need only what the steps
# before the group made). The credentials are made first, so the pillar (which lists the
# root key) is written while the container is cloned. The container boots with root's
# credentials and its minion written in (its key accepted before it starts), so the minion
# connects while the container comes up and keeps the pillar it started with; the node's
# NAT of its SSH port and its proxy route are made while it boots. Then the DNS records
# (SSHFP needs the host keys read at boot), the highstate and the project's remotes (which
# name the NATed port) need nothing from each other.
INIT_ENV = (
    "env:register",
    "node:pick",
    "ip:allocate",
    "creds:generate",
    ("lxc:clone", "pillar:write"),
    ("lxc:boot", "nft:map_port", "proxy:add_route"),
    ("pdns:add_records", "salt:highstate", "project:init"),
    "env:activate",
    "mail:send",
)
# Destroying runs forward only: each step is idempotent, a rerun finishes it.
DESTROY_ENV = (
    "env:retire",
    "salt:remove_minion",
    "pdns:remove_records",
    "proxy:remove_routes",
    "nft:unmap_ports",
    "lxc:destroy",
    "creds:remove",
    "pillar:remove",
    "env:remove",
)
RESIZE_ENV = ("lxc:resize",)
LINK_DNS = ("proxy:add_route", "pdns:add_records", "env:add_domain")
ADD_PROJECT = ("project:register", "project:init")
DESTROY_PROJECT = ("project:stop", "project:remove", "project:forget")
ROLLBACK = ("project:rollback",)
LINK_NODE = (
    "ssh:connect",
    "node:ship",
    "node:install",
    "salt:seed_key",
    "salt:start_minion",
    "node:setup",
    "inventory:add_node",
)
# The new container is built beside the old one, which serves until redeploy:switch; the
# projects' snapshot is taken while the new container's highstate runs, as late as it can be
# (what the old one writes after it is not carried over).
REDEPLOY = (
    "redeploy:silence",
    "redeploy:reserve",
    "redeploy:credentials",
    ("redeploy:clone", "redeploy:pillar"),
    "redeploy:boot",
    ("redeploy:highstate", "redeploy:snapshot"),
    "redeploy:restore",
    "redeploy:verify",
    "redeploy:switch",
    "redeploy:unsilence",
    "redeploy:retire",
)
# The jobs whose plans group steps (the others run one step at a time).
PLANS = {"init_env": INIT_ENV, "redeploy": REDEPLOY}


def _submit(ctl, kind, target, plan, clipboard, progress=None):
    """Run job ``kind`` (its steps as ``plan`` says) on ``target`` here; its final state."""
    total = len(jobs.flatten(plan))

    def fire(tag, data):
        ctl.fire(tag, data)
        if progress is not None and "step" in data and data["status"] != "pending":
            progress("{} step {}/{} {}: {}".format(kind, data["step"], total, data["name"], data["status"]))

    manager = ctl.jobs()
    manager.fire = fire
    return manager.submit(kind, target, plan, clipboard)


def _run(ctl, kind, target, plan, clipboard, progress=None):
    state = _submit(ctl, kind, target, plan, clipboard, progress)
    total = len(state["steps"])
    result = {"result": state["status"] == "success", "job": state["id"], "status": state["status"],
              "comment": state["message"],
              "steps": [{"step": "{}/{} {}".format(step["index"], total, step["name"]),
                         "status": step["status"], "seconds": step["seconds"]} for step in state["steps"]]}
    return result, state


# --------------------------------------------------------------------------- environments

def _init_request(ctl, name, env_type, project=None, host=None, requester=None, disk_size_mb=None, image=None):
    """Refuse a bad ``init_env`` in one sentence before any job exists; return its clipboard."""
    if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
        raise CorpusError("Environment name {!r} is not valid: use 1 to 40 lower-case letters, digits "
                          "and inner dashes (it becomes a DNS label).".format(name))
    if env_type not in ENV_TYPES:
        raise CorpusError("Unknown environment type {!r}; use one of {}.".format(env_type, ", ".join(ENV_TYPES)))
    project = project or name
    if not PROJECT_NAME_RE.fullmatch(str(project)):
        raise CorpusError("Project name {!r} is not valid.".format(project))
    checks.check_requester(requester)
    size = checks.check_disk_size_given(
        ctl.settings["lxc"]["disk_size_mb"] if disk_size_mb is None else disk_size_mb)
    with db.session(ctl.url) as sess:
        if envs.find_environment(sess, name) is not None:
            raise CorpusError("An environment named {} already exists.".format(name))
        if name in envs.container_names_in_use(sess):
            raise CorpusError("The name {} is taken by the container of a redeployed environment; choose "
                              "another.".format(name))
        if host is not None:
            envs.node_with_room(sess, host)
        elif not sess.scalars(select(ComputeNode)).first():
            raise CorpusError("No compute node is linked; link one with mc_cloud.link_node first.")
        # The image (default: the default image's current version) and a node holding it.
        found, host = images.for_environment(sess, image, host)
        image = images.ref_of(found)
    return {"env_name": name, "env_type": env_type, "project": project, "host": host, "image": image,
            "requester": requester, "disk_size_mb": size,
            "domain": "{}.{}".format(name, ctl.settings["domain"])}


def init_env(ctl, name, env_type="dev", project=None, host=None, requester=None, disk_size_mb=None,
             progress=None, image=None):
    """Create environment ``name`` (from ``image``, NAME or NAME:VERSION; default: the default
    image's current version); its UUID and access details when it worked."""
    clipboard = _init_request(ctl, name, env_type, project=project, host=host,
                              requester=requester, disk_size_mb=disk_size_mb, image=image)
    result, state = _run(ctl, "init_env", name, INIT_ENV, clipboard, progress)
    if result["result"]:
        clip = state["clipboard"]
        result["uuid"] = clip["env_uuid"]
        result["access"] = envs.access_details(clip)
        if clip.get("mail_error"):
            result["mail"] = "The access mail was not sent: {}".format(clip["mail_error"])
        elif clip.get("requester"):
            result["mail"] = "Access details mailed to {}.".format(clip["requester"])
    return result


def destroy_env(ctl, name, progress=None):
    clipboard = envs.env_clipboard(ctl, name)
    result, _state = _run(ctl, "destroy_env", name, DESTROY_ENV, clipboard, progress)
    return result


def resize_env(ctl, name, size_mb, grow, progress=None):
    size_mb = checks.check_disk_size_given(size_mb)
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        current = envs.environment(sess, name).disk_size_mb
    if current and grow and size_mb <= current:
        raise CorpusError("Enlarging {} needs a size above its {} MiB.".format(name, current))
    if current and not grow and size_mb >= current:
        raise CorpusError("Trimming {} needs a size below its {} MiB.".format(name, current))
    clipboard["size_mb"] = size_mb
    result, _state = _run(ctl, "enlarge" if grow else "trim", name, RESIZE_ENV, clipboard, progress)
    return result


def link_dns(ctl, name, domain, progress=None):
    domain = str(domain).strip().lower().rstrip(".")
    if not DOMAIN_RE.fullmatch(domain):
        raise CorpusError("{!r} is not a domain name.".format(domain))
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        for env in sess.scalars(select(Environment)):
            if domain in (env.domains or []):
                raise CorpusError("Domain {} already serves environment {}.".format(domain, env.name))
    if not clipboard["node"] or not clipboard["ip"]:
        raise CorpusError("Environment {} has no container to route to.".format(name))
    clipboard["new_domain"] = domain
    result, _state = _run(ctl, "link_dns", name, LINK_DNS, clipboard, progress)
    return result


def add_project(ctl, name, project, progress=None):
    """Create the remotes of one more project in environment ``name``."""
    if not PROJECT_NAME_RE.fullmatch(str(project)):
        raise CorpusError("Project name {!r} is not valid.".format(project))
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if env.status != "active":
            raise CorpusError("Environment {} is {}, not active.".format(name, env.status))
        if project in [row.name for row in env.projects]:
            raise CorpusError("Environment {} already has project {}.".format(name, project))
        clipboard["ssh_port"] = env.ssh_nat_port
    clipboard["project"] = project
    result, state = _run(ctl, "add_project", name, ADD_PROJECT, clipboard, progress)
    if result["result"]:
        result["git_remote"] = state["clipboard"]["git_remote"]
    return result


def destroy_project(ctl, name, project, progress=None):
    """Stop and remove one project of environment ``name``; the environment stays."""
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if project not in [row.name for row in env.projects]:
            raise CorpusError("Environment {} has no project {}.".format(name, project))
    clipboard["project"] = project
    result, _state = _run(ctl, "destroy_project", name, DESTROY_PROJECT, clipboard, progress)
    return result


def rollback_request(ctl, name, project, release=None, timeout=60):
    """Refuse a bad rollback in one sentence before any job exists; return its clipboard.

    The project's minion says its mode and kept releases: an editable project, an
    unknown release, the live one or no older one is refused here, and the release to
    make live (by default the good one before the live one, in the order they were
    deployed, as the engine picks it) and the one live now go on the clipboard."""
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if project not in [row.name for row in env.projects]:
            raise CorpusError("Environment {} has no project {}.".format(name, project))
        if env.status != "active" or not env.minion_id:
            raise CorpusError("Environment {} is {}, not active.".format(name, env.status))
    minion = clipboard["minion_id"]
    status = ctl.call(minion, "mc_project.status", project, timeout=timeout) or {}
    if status.get("mode") == "editable":
        raise CorpusError("{} runs in editable mode, which keeps no releases: push the commit you want "
                          "live instead.".format(project))
    found = ctl.call(minion, "mc_project.releases", project, timeout=timeout) or []
    kept = [row["id"] for row in found if row.get("status") == "success"]
    live = next((row["id"] for row in found if row.get("live")), None) or status.get("release")
    if release is None:
        older = kept[:kept.index(live)] if live in kept else kept
        if not older:
            raise CorpusError("No kept release of {} is older than the live one ({}).".format(
                project, live or "none"))
        release = older[-1]
    if release not in kept:
        raise CorpusError("Release {} is not a kept good release of {}; kept: {}.".format(
            release, project, ", ".join(kept) or "none"))
    if release == live:
        raise CorpusError("Release {} of {} is already live.".format(release, project))
    clipboard.update(project=project, release=release, live_before=live)
    return clipboard


def rollback(ctl, name, project, release=None, progress=None, clipboard=None):
    """Make kept release ``release`` of ``project`` live again in environment ``name`` (default:
    the one before the live one); ``clipboard`` is ``rollback_request``'s when it was checked
    already. Its undo makes the release that was live before live again."""
    clipboard = clipboard or rollback_request(ctl, name, project, release)
    result, state = _run(ctl, "rollback", name, ROLLBACK, clipboard, progress)
    if result["result"]:
        clip = state["clipboard"]
        result.update(project=clip["project"], release=clip["release"], previous=clip["live_before"])
    return result


def redeploy_request(ctl, name, image=None):
    """Refuse a bad redeploy in one sentence before any job exists; return its clipboard."""
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if env.status != "active" or not env.minion_id or not env.node_id or not env.ip:
            raise CorpusError("Environment {} is {}, not active.".format(name, env.status))
        busy = sess.scalar(select(Job).where(Job.kind == "redeploy", Job.target == name,
                                             Job.status.in_(("pending", "running", "interrupted")))
                           .order_by(Job.id.desc()))
        if busy is not None:
            state = ctl.jobs().status(busy.id)
            if state["status"] in ("pending", "running"):
                raise CorpusError("Environment {} is being redeployed already (job {}).".format(name, busy.id))
            if state["status"] == "interrupted":
                raise CorpusError("Redeploy job {} of environment {} was interrupted: resume or undo it "
                                  "first.".format(busy.id, name))
        disk = env.disk_size_mb or ctl.settings["lxc"]["disk_size_mb"]
    if image is not None and not (isinstance(image, str) and image.strip()):
        raise CorpusError("An image is named by a non-empty string.")
    clipboard = envs.env_clipboard(ctl, name)
    clipboard.update(disk_size_mb=disk, image=image)
    return clipboard


def redeploy(ctl, name, image=None, progress=None):
    """Move environment ``name`` to a new container built from the current golden image (or
    ``image``) beside its old one, which serves until the switch and is then stopped; a
    failure at any step leaves the old one serving and removes the new one."""
    clipboard = redeploy_request(ctl, name, image)
    destroy_retired(ctl)
    result, state = _run(ctl, "redeploy", name, REDEPLOY, clipboard, progress)
    if result["result"]:
        clip = state["clipboard"]
        result.update(container=clip["next"]["container"], ip=clip["next"]["ip"],
                      previous=clip["previous"]["container"], retired=clip.get("retired"))
    return result


def destroy_retired(ctl, now=None):
    """Destroy the old containers of redeploys finished ``corpus:redeploy_keep_hours`` ago or
    more; the names of those destroyed (run by each redeploy, and by ``mc_cloud.destroy_retired``
    from a schedule)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    keep = datetime.timedelta(hours=ctl.settings["redeploy_keep_hours"])
    destroyed = []
    with db.session(ctl.url) as sess:
        found = [(job.id, dict(job.clipboard or {})) for job in sess.scalars(
            select(Job).where(Job.kind == "redeploy", Job.status == "success"))]
        nodes_by_name = {node.name: envs.node_info(node) for node in sess.scalars(select(ComputeNode))}
    for job_id, clip in found:
        retired = clip.get("retired")
        if not retired or retired.get("destroyed"):
            continue
        since = datetime.datetime.fromisoformat(retired["since"])
        since = since if since.tzinfo else since.replace(tzinfo=datetime.timezone.utc)
        node = nodes_by_name.get(retired["node"])
        if now < since + keep:
            continue
        if node is None:  # its node is unlinked: nothing is left to destroy
            retired["destroyed"] = now.isoformat()
        else:
            try:
                redeploy_steps.destroy_retired_container(ctl, node, retired)
            except CorpusError as exc:
                log.warning("Old container %s of job %s not destroyed: %s", retired["container"], job_id, exc)
                continue
            destroyed.append(retired["container"])
        clip["retired"] = retired
        with db.session(ctl.url) as sess:
            sess.get(Job, job_id).clipboard = clip
    return destroyed


def list_envs(ctl):
    with db.session(ctl.url) as sess:
        rows = []
        for env in sess.scalars(select(Environment).order_by(Environment.name)):
            node = sess.get(ComputeNode, env.node_id) if env.node_id else None
            rows.append({"name": env.name, "uuid": env.uuid, "type": env.env_type, "status": env.status,
                         "project": env.project, "projects": sorted(row.name for row in env.projects),
                         "node": node.name if node else None, "ip": env.ip,
                         "ssh": "{}:{}".format(node.address, env.ssh_nat_port) if node and env.ssh_nat_port else None,
                         "domains": list(env.domains or []), "disk_size_mb": env.disk_size_mb,
                         "image": env.image})
    return rows


def credentials(ctl, name):
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        secrets = secrets_crypto.values(sess, secrets_crypto.load(ctl.settings["secrets_key"]),
                                        "env:{}".format(env.uuid))
        node = sess.get(ComputeNode, env.node_id) if env.node_id else None
        return {"name": env.name, "root_password": secrets.get("root_password"),
                "ssh_private_key": secrets.get("ssh_private_key"),
                "ssh": "ssh -p {} root@{}".format(env.ssh_nat_port, (env.domains or [node.address if node else ""])[0])}


# --------------------------------------------------------------------------- compute nodes

def link_node(ctl, host, user="root", key=None, port=22, name=None, slots=10, subnet=None, http_port=80,
              prefix=NODE_PREFIX, lxc_path=LXC_PATH, dns_name=None, bridge="corpusbr0", nft_table=None,
              nat_ports="40000-40999", progress=None):
    """Install corpus and a minion on ``host`` over SSH and record it as a compute node.

    Runs the ``link_node`` job (see ``steps/node.py``); returns the node's
    record, with the job's id as ``job_id``. Raises ``CorpusError`` with one
    sentence when it fails, after undoing what it did.

    ``bridge`` and ``nft_table`` name the node's containers' bridge and its
    nftables tables (by default ``corpus_<name>_<hash>``, the node's own: see
    ``nodes.nft_table_for``; a node linked when every node of a machine shared
    ``corpus`` moves to its own); the node keeps its proxy and NAT state under ``prefix``.
    ``nat_ports`` ("MIN-MAX") are the node ports NATed to its containers' SSH.
    """
    checks.check_link_request(host, user, name, bridge, nft_table)
    clipboard = {
        "host": host, "user": user, "key": os.path.abspath(key) if key else None,
        "port": checks.check_int(port, "The SSH port", 1, 65535), "name": name,
        "slots": checks.check_int(slots, "The number of slots", 0, 100000),
        "subnet": str(checks.check_subnet(subnet)) if subnet else None,
        "http_port": checks.check_int(http_port, "The proxy port", 1, 65535),
        "prefix": checks.check_path(prefix, "The install prefix"),
        "lxc_path": checks.check_path(lxc_path, "The LXC path"),
        "dns_name": dns_name or (None if checks.is_address(host) else host), "bridge": bridge,
        "nft_table": nft_table, "nat_ports": checks.check_port_range(nat_ports),
    }
    if not ctl.settings.get("master_address"):
        raise CorpusError("The controller setting corpus:master_address is empty: nodes could not "
                          "reach the master.")
    if clipboard["subnet"]:
        with db.session(ctl.url) as sess:
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
    state = _submit(ctl, "link_node", name or host, LINK_NODE, clipboard, progress)
    node_steps.close_shell(state["id"])
    if state["status"] != "success":
        raise CorpusError("Linking {} {}.".format(host, state["error"] or "failed"))
    record = dict(state["clipboard"]["node"])
    record["job_id"] = state["id"]
    return record


def unlink_node(ctl, name, force=False):
    """Forget compute node ``name``: take away what linking set up there (its haproxy, nftables
    tables, golden container and bridge), stop its minion, drop its accepted key and its record.

    Refused while environments live on it, unless ``force`` (they are then
    left without a node, status ``orphaned``). ``removed`` and ``kept`` say, one
    sentence per item, what went from the node and what stayed and why.
    """
    with db.session(ctl.url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == str(name)))
        if node is None:
            raise CorpusError("No compute node named {}.".format(name))
        living = sess.scalars(select(Environment.name).where(Environment.node_id == node.id)
                              .order_by(Environment.name)).all()
        minion_id, prefix = node.minion_id, node.prefix
        bridge, subnet, lxc_path = node.bridge, node.subnet, node.lxc_path
    if living and not force:
        raise CorpusError("Node {} still holds {} environment(s) ({}); unlink it with force=True to "
                          "leave them without a node.".format(name, len(living), ", ".join(living)))
    report = {"removed": [], "kept": []}
    if subnet:
        try:
            report = nodes.teardown_node(ctl, minion_id, bridge, subnet, lxc_path)
        except CorpusError as exc:
            report["kept"].append("haproxy, nft tables, golden container and bridge {} kept: {}".format(
                bridge, str(exc).rstrip(".")))
    report["kept"].append("{} kept: corpus's virtualenv and wheelhouse there make a new link "
                          "quicker".format(prefix))
    # The minion stops itself a moment after answering, from a session of its own
    # (stopping the minion's process group must not stop the stopping shell).
    stop = "setsid sh -c {}".format(shlex.quote("sleep 1; " + nodes.stop_minion_command(nodes.node_paths(prefix))))
    answer = ctl.answer(minion_id, "cmd.run_bg", timeout=15, cmd=stop, python_shell=True)
    stopped = bool(answer) and not answer.get("retcode") and ctl.falls_silent(minion_id)
    ctl.delete_key(minion_id)
    with db.session(ctl.url) as sess:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == str(name)))
        if node is not None:
            for env in sess.scalars(select(Environment).where(Environment.node_id == node.id)):
                env.node_id = None
                env.status = "orphaned"
            sess.execute(delete(PortMapping).where(PortMapping.node_id == node.id))
            sess.execute(delete(SshKey).where(SshKey.node_id == node.id))
            sess.delete(node)
    log.info("Unlinked node %s (minion %s stopped: %s)", name, minion_id, stopped)
    return {"name": name, "minion_id": minion_id, "minion_stopped": stopped, "orphaned": list(living),
            "removed": report["removed"], "kept": report["kept"]}


def list_hosts(ctl):
    """The compute nodes: name, address, DNS name, slots, free slots, guest type, status, subnet."""
    keys = ("name", "address", "dns_name", "slots", "free_slots", "guest_type", "status", "subnet")
    with db.session(ctl.url) as sess:
        found = sess.scalars(select(ComputeNode).order_by(ComputeNode.name)).all()
        return [{key: record[key] for key in keys} for record in (nodes.node_record(sess, n) for n in found)]
