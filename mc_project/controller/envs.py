"""Environments: the containers projects run in, made and unmade as jobs.

``init_env`` reserves an inventory row, places the container on a node, gives
it an address, clones it from the node's golden image, makes its credentials,
NATs a node port to its SSH, routes its domain through the node's proxy,
registers DNS, writes its pillar, installs and accepts its minion, highstates
it, creates the project's remotes and mails the requester. Each step has an
undo, so a failure anywhere leaves nothing behind (see ``mc_project.jobs``).

Every step reads what it needs from the job's clipboard and the inventory; the
clipboard never holds a secret (passwords and private keys are ``Secret``
rows).
"""

import ipaddress
import random
import re
import time

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from mc_project.controller import credentials, mail, pdns
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import (
    ENV_TYPES,
    ComputeNode,
    DnsRecord,
    Environment,
    Pillar,
    PortMapping,
    Project,
    Secret,
    SshKey,
)

# A DNS label: it becomes the container's name and the first label of its domain.
ENV_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODES = {"dev": "editable", "staging": "cooking", "prod": "final"}
APP_PORT = 8080  # where a container's web process listens; the node's proxy sends HTTP there
PROJECTS_ROOT = "/srv/projects"
LIVE = ("creating", "active")  # environments that hold a slot, an address and a port

INIT_STEPS = (
    "env:register",
    "node:pick",
    "ip:allocate",
    "lxc:clone",
    "lxc:configure",
    "creds:generate",
    "nft:map_port",
    "proxy:add_route",
    "pdns:add_records",
    "pillar:write",
    "salt:install_minion",
    "salt:highstate",
    "project:init",
    "env:activate",
    "mail:send",
)
DESTROY_STEPS = (
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


# --------------------------------------------------------------------------- requests

# A mail address corpus will write to: a plain local part and a dotted domain, nothing a
# mail header or a shell could read as more.
MAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
DISK_MIN_MB = 512
DISK_MAX_MB = 1024 * 1024  # 1 TiB


def check_disk_size(size):
    """A container's disk size in MiB, within bounds, or one sentence."""
    if isinstance(size, bool) or not isinstance(size, int) or not DISK_MIN_MB <= size <= DISK_MAX_MB:
        raise CorpusError("Disk size must be a whole number of MiB from {} to {}, not {!r}.".format(
            DISK_MIN_MB, DISK_MAX_MB, size))
    return size


def check_init_request(ctl, name, env_type, project=None, host=None, requester=None, disk_size_mb=None):
    """Refuse a bad ``init_env`` in one sentence before any job exists; return its clipboard."""
    if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
        raise CorpusError("Environment name {!r} is not valid: use 1 to 40 lower-case letters, digits "
                          "and inner dashes (it becomes a DNS label).".format(name))
    if env_type not in ENV_TYPES:
        raise CorpusError("Unknown environment type {!r}; use one of {}.".format(env_type, ", ".join(ENV_TYPES)))
    project = project or name
    if not PROJECT_NAME_RE.fullmatch(str(project)):
        raise CorpusError("Project name {!r} is not valid.".format(project))
    if requester is not None and not MAIL_RE.fullmatch(str(requester)):
        raise CorpusError("Requester {!r} is not an e-mail address (user@domain.tld).".format(requester))
    size = check_disk_size(disk_size_mb or ctl.settings["lxc"]["disk_size_mb"])
    with db.session(ctl.url) as sess:
        if find_environment(sess, name) is not None:
            raise CorpusError("An environment named {} already exists.".format(name))
        if host is not None:
            _node_with_room(sess, host)
        elif not sess.scalars(select(ComputeNode)).first():
            raise CorpusError("No compute node is linked; link one with mc_cloud.link_node first.")
    return {"env_name": name, "env_type": env_type, "project": project, "host": host,
            "requester": requester, "disk_size_mb": size,
            "domain": "{}.{}".format(name, ctl.settings["domain"])}


def find_environment(sess, name):
    """Environment ``name``, or None: for undo steps, which must cope with it being gone."""
    return sess.scalar(select(Environment).where(Environment.name == name))


def environment(sess, name):
    env = find_environment(sess, name)
    if env is None:
        raise CorpusError("No environment named {}.".format(name))
    return env


def _live_count(sess, node):
    return sess.scalar(select(func.count(Environment.id)).where(
        Environment.node_id == node.id, Environment.status.in_(LIVE)))


def _node_with_room(sess, name):
    node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
    if node is None:
        raise CorpusError("No compute node named {}.".format(name))
    if node.status != "active":
        raise CorpusError("Compute node {} is {}, not active.".format(name, node.status))
    if _live_count(sess, node) >= node.slots:
        raise CorpusError("Compute node {} has no free slot ({} used).".format(name, node.slots))
    return node


class _Contended(Exception):
    """Another job took what this transaction chose: choose again."""


def allocating(ctl, choose, attempts=20):
    """Run ``choose(sess)`` in a transaction, again when a parallel job won the race.

    Allocations (a slot, an address, a port) read what is free then write
    their pick; the inventory's unique constraints, or a recount, catch two
    jobs picking the same thing, and the loser picks again.
    """
    for attempt in range(attempts):
        try:
            with db.session(ctl.url) as sess:
                return choose(sess)
        except (IntegrityError, OperationalError, _Contended):
            if attempt == attempts - 1:
                raise CorpusError("The inventory stayed busy with other jobs; try again.") from None
            time.sleep(random.uniform(0.05, 0.3))


def _node_info(node):
    return {"name": node.name, "minion_id": node.minion_id or node.name, "address": node.address,
            "dns_name": node.dns_name, "subnet": node.subnet, "bridge": node.bridge,
            "lxc_path": node.lxc_path, "http_port": node.http_port, "prefix": node.prefix}


def _secret_owner(clip):
    return "env:{}".format(clip["env_uuid"])


# --------------------------------------------------------------------------- steps

def register_steps(ctl, registry):
    """Register every environment step, bound to the controller ``ctl``."""
    steps = {
        "env:register": (register_env, unregister_env),
        "node:pick": (pick_node, release_node),
        "ip:allocate": (allocate_ip, release_ip),
        "lxc:clone": (clone_container, destroy_container),
        "lxc:configure": (configure_container, None),
        "creds:generate": (generate_credentials, remove_credentials),
        "nft:map_port": (map_ssh_port, unmap_ports),
        "proxy:add_route": (add_routes, remove_routes),
        "pdns:add_records": (add_dns_records, remove_dns_records),
        "pillar:write": (write_pillar, remove_pillar),
        "salt:install_minion": (install_minion, remove_minion),
        "salt:highstate": (highstate, None),
        "project:init": (init_project, None),
        "env:activate": (activate_env, deactivate_env),
        "mail:send": (send_access_mail, None),
        # destroying runs forward only: each step is idempotent, a rerun finishes it
        "env:retire": (retire_env, None),
        "salt:remove_minion": (remove_minion, None),
        "pdns:remove_records": (remove_dns_records, None),
        "proxy:remove_routes": (remove_routes, None),
        "nft:unmap_ports": (unmap_ports, None),
        "lxc:destroy": (destroy_container, None),
        "creds:remove": (remove_credentials, None),
        "pillar:remove": (remove_pillar, None),
        "env:remove": (remove_env, None),
        "lxc:resize": (resize_container, None),
        "env:add_domain": (add_domain, remove_domain),
        "project:register": (register_project, forget_project),
        "project:stop": (stop_project, None),
        "project:remove": (remove_project, None),
        "project:forget": (forget_project, None),
    }
    for name, (do, undo) in steps.items():
        registry[name] = (_bound(ctl, do, undo), _bound(ctl, undo) if undo else None)


def _bound(ctl, step, undo=None):
    """``step`` bound to ``ctl``; when it raises, its own undo takes back what it did first."""
    def run(ctx):
        try:
            return step(ctl, ctx)
        except Exception:
            if undo is not None:
                try:
                    undo(ctl, ctx)
                except Exception as exc:  # the step's own failure is what the job reports
                    ctx.log("cleaning up after the failure failed too: {}".format(exc))
            raise
    run.__name__ = step.__name__
    return run


def register_env(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        if env is not None and env.uuid != clip.get("env_uuid"):
            raise CorpusError("An environment named {} already exists.".format(clip["env_name"]))
        if env is None:
            env = Environment(name=clip["env_name"], env_type=clip["env_type"], project=clip["project"],
                              requester=clip.get("requester"), disk_size_mb=clip["disk_size_mb"],
                              container=clip["env_name"], minion_id=clip["domain"],
                              domains=[clip["domain"]], status="creating")
            env.projects = [Project(name=clip["project"])]
            sess.add(env)
            sess.flush()
        clip["env_uuid"] = env.uuid
        clip["minion_id"] = env.minion_id
    ctx.log("environment {} reserved as {}".format(clip["env_name"], clip["env_uuid"]))


def unregister_env(ctl, ctx):
    name = ctx.clipboard["env_name"]
    with db.session(ctl.url) as sess:
        sess.execute(delete(Environment).where(Environment.name == name,
                                               Environment.uuid == ctx.clipboard.get("env_uuid")))


def pick_node(ctl, ctx):
    clip = ctx.clipboard

    def choose(sess):
        env = environment(sess, clip["env_name"])
        if env.node_id is not None:
            return _node_info(sess.get(ComputeNode, env.node_id))
        if clip.get("host"):
            node = _node_with_room(sess, clip["host"])
        else:
            candidates = []
            for node in sess.scalars(select(ComputeNode).where(ComputeNode.status == "active")):
                free = node.slots - _live_count(sess, node)
                if free > 0:
                    candidates.append((-free, node.name, node))
            if not candidates:
                raise CorpusError("No compute node has a free slot.")
            node = sorted(candidates)[0][2]
        env.node_id = node.id
        sess.flush()
        if _live_count(sess, node) > node.slots:  # a parallel job took the last slot first
            raise _Contended()
        return _node_info(node)

    clip["node"] = allocating(ctl, choose)
    ctx.log("placed on node {}".format(clip["node"]["name"]))


def release_node(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.node_id = None


def allocate_ip(ctl, ctx):
    clip = ctx.clipboard

    def choose(sess):
        env = environment(sess, clip["env_name"])
        node = sess.get(ComputeNode, env.node_id)
        if not node.subnet:
            raise CorpusError("Compute node {} has no container subnet.".format(node.name))
        net = ipaddress.ip_network(node.subnet)
        hosts = list(net.hosts())
        gateway = hosts[0]  # the node's bridge
        if env.ip is None:
            used = set(sess.scalars(select(Environment.ip).where(Environment.node_id == node.id,
                                                                  Environment.ip.is_not(None))))
            free = next((str(ip) for ip in hosts[1:] if str(ip) not in used), None)
            if free is None:
                raise CorpusError("No free address left in node {}'s subnet {}.".format(node.name, net))
            env.ip = free
            sess.flush()  # a parallel job's pick of the same address fails here
        return {"ip": env.ip, "gateway": str(gateway), "prefixlen": net.prefixlen}

    clip.update(allocating(ctl, choose))
    ctx.log("address {}/{}".format(clip["ip"], clip["prefixlen"]))


def release_ip(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.ip = None


def _node(ctx):
    return ctx.clipboard["node"]


def clone_container(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    lxc = ctl.settings["lxc"]
    golden = ctl.call(node["minion_id"], "mc_lxc.golden", lxc_path=node["lxc_path"], mirror=lxc["mirror"],
                      suite=lxc["suite"], disk_size_mb=lxc["disk_size_mb"], timeout=1800)
    ctx.log("golden image {} ({})".format(golden.get("name"), "built" if golden.get("built") else "cached"))
    ctl.call(node["minion_id"], "mc_lxc.clone", name=clip["env_name"], lxc_path=node["lxc_path"],
             disk_size_mb=clip["disk_size_mb"], exist_ok=True, timeout=600)
    ctx.log("container {} cloned on {}".format(clip["env_name"], node["name"]))


def destroy_container(ctl, ctx):
    node = ctx.clipboard.get("node")
    if node:
        ctl.call(node["minion_id"], "mc_lxc.destroy", name=ctx.clipboard["env_name"],
                 lxc_path=node["lxc_path"], timeout=300)


def configure_container(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    ctl.call(node["minion_id"], "mc_lxc.configure", name=clip["env_name"], hostname=clip["env_name"],
             address="{}/{}".format(clip["ip"], clip["prefixlen"]), gateway=clip["gateway"],
             bridge=node["bridge"], lxc_path=node["lxc_path"])
    ctl.call(node["minion_id"], "mc_lxc.start", name=clip["env_name"], lxc_path=node["lxc_path"],
             wait=120, timeout=300)
    ctx.log("container {} started at {}".format(clip["env_name"], clip["ip"]))


def generate_credentials(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    owner = _secret_owner(clip)
    password = credentials.generate_password()
    private, public = credentials.generate_ssh_keypair("root@{}".format(clip["domain"]))
    with secrets_crypto.writing(ctl.settings["secrets_key"]) as keyring, db.session(ctl.url) as sess:
        env = environment(sess, clip["env_name"])
        sess.execute(delete(Secret).where(Secret.owner == owner))
        sess.execute(delete(SshKey).where(SshKey.environment_id == env.id))
        secrets_crypto.put(sess, keyring, owner, "root_password", password)
        secrets_crypto.put(sess, keyring, owner, "ssh_private_key", private)
        sess.add(SshKey(name="root", public_key=public, fingerprint=credentials.fingerprint(public),
                        environment_id=env.id))
    # Sealed to the node's key: the job's load, kept in the master's job cache, holds no hash.
    ctl.call(node["minion_id"], "mc_lxc.set_root_password", name=clip["env_name"],
             sealed_hash=ctl.seal(node["minion_id"], credentials.password_hash(password)),
             lxc_path=node["lxc_path"])
    ctl.call(node["minion_id"], "mc_lxc.authorize_key", name=clip["env_name"], public_key=public,
             lxc_path=node["lxc_path"])
    clip["host_keys"] = ctl.call(node["minion_id"], "mc_lxc.host_keys", name=clip["env_name"],
                                 lxc_path=node["lxc_path"])
    clip["ssh_public_key"] = public
    ctx.log("root password and SSH key pair stored as secrets of {}".format(owner))


def remove_credentials(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        sess.execute(delete(Secret).where(Secret.owner == _secret_owner(clip)))
        env = find_environment(sess, clip["env_name"])
        if env is not None:
            sess.execute(delete(SshKey).where(SshKey.environment_id == env.id))


def map_ssh_port(ctl, ctx):
    clip, node_info = ctx.clipboard, _node(ctx)

    def choose(sess):
        env = environment(sess, clip["env_name"])
        node = sess.get(ComputeNode, env.node_id)
        mapping = sess.scalar(select(PortMapping).where(PortMapping.environment_id == env.id,
                                                        PortMapping.internal_port == 22))
        if mapping is None:
            used = set(sess.scalars(select(PortMapping.external_port).where(
                PortMapping.node_id == node.id, PortMapping.protocol == "tcp")))
            port = next((p for p in range(node.nat_port_min, node.nat_port_max + 1) if p not in used), None)
            if port is None:
                raise CorpusError("No free port left in node {}'s range {}-{}.".format(
                    node.name, node.nat_port_min, node.nat_port_max))
            mapping = PortMapping(node_id=node.id, external_port=port, environment_id=env.id,
                                  internal_port=22, protocol="tcp")
            sess.add(mapping)
            env.ssh_nat_port = port
            sess.flush()  # a parallel job's pick of the same port fails here
        return mapping.external_port

    port = allocating(ctl, choose)
    ctx.undo_data["ports"] = [port]
    ctl.call(node_info["minion_id"], "mc_lxc.map_port", external_port=port, address=clip["ip"],
             internal_port=22)
    clip["ssh_port"] = port
    ctx.log("node port {} NATed to {}:22".format(port, clip["ip"]))


def unmap_ports(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        if env is None:
            return
        ports = list(sess.scalars(select(PortMapping.external_port).where(
            PortMapping.environment_id == env.id)))
    node = clip.get("node")
    for port in ports:
        if node:
            ctl.call(node["minion_id"], "mc_lxc.unmap_port", external_port=port)
        with db.session(ctl.url) as sess:
            sess.execute(delete(PortMapping).where(PortMapping.external_port == port,
                                                   PortMapping.node_id == _node_id(sess, node)))
        ctx.log("node port {} released".format(port))
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        if env is not None:
            env.ssh_nat_port = None


def _node_id(sess, node):
    return sess.scalar(select(ComputeNode.id).where(ComputeNode.name == node["name"])) if node else None


def _domains(ctx):
    """The domains this step works on: one being linked, else all of the environment's."""
    clip = ctx.clipboard
    return [clip["new_domain"]] if clip.get("new_domain") else [clip["domain"]] + clip.get("extra_domains", [])


def add_routes(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    for domain in _domains(ctx):
        ctl.call(node["minion_id"], "mc_lxc.add_route", domain=domain, address=clip["ip"], port=APP_PORT)
        ctx.undo_data.setdefault("domains", []).append(domain)
        ctx.log("proxy on {}:{} routes {} to {}:{}".format(node["name"], node["http_port"], domain,
                                                          clip["ip"], APP_PORT))


def remove_routes(ctl, ctx):
    node = ctx.clipboard.get("node")
    if not node:
        return
    for domain in ctx.undo_data.get("domains") or _domains(ctx):
        ctl.call(node["minion_id"], "mc_lxc.remove_route", domain=domain)


def _dns(ctl):
    dns = ctl.settings["dns"]
    if not dns.get("api_url"):
        return None, None
    return pdns.PowerDns(dns["api_url"], dns.get("api_key"), server_id=dns.get("server_id", "localhost")), dns


def zone_of(domain, dns):
    """The zone a domain's records go in: the managed zone, or the domain's own zone."""
    managed = dns["zone"].rstrip(".")
    return dns["zone"] if domain == managed or domain.endswith("." + managed) else domain + "."


def add_dns_records(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    api, dns = _dns(ctl)
    if api is None:
        ctx.log("no DNS server is configured: no records registered")
        return
    sshfp = credentials.sshfp_records(clip.get("host_keys") or [])
    ctx.undo_data.setdefault("records", [])
    for domain in _domains(ctx):
        zone = zone_of(domain, dns)
        records = [{"name": domain, "type": "A", "contents": [node["address"]], "ttl": dns["ttl"]},
                   {"name": "*." + domain, "type": "A", "contents": [node["address"]], "ttl": dns["ttl"]}]
        if sshfp:
            records.append({"name": domain, "type": "SSHFP", "contents": sshfp, "ttl": dns["ttl"]})
        api.ensure_zone(zone)
        ctx.undo_data["records"] += [[zone, r["name"], r["type"]] for r in records]
        api.add_records(zone, records)
        with db.session(ctl.url) as sess:
            env = environment(sess, clip["env_name"])
            for record in records:
                for content in record["contents"]:
                    sess.merge(_dns_row(sess, zone, record["name"], record["type"], content, record["ttl"],
                                        env.id))
    ctx.log("DNS: {}".format(", ".join("{} {}".format(n, t) for _z, n, t in ctx.undo_data["records"])))


def _dns_row(sess, zone, name, rtype, content, ttl, env_id):
    row = sess.scalar(select(DnsRecord).where(DnsRecord.name == name, DnsRecord.type == rtype,
                                              DnsRecord.content == content))
    return row or DnsRecord(zone=zone, name=name, type=rtype, content=content, ttl=ttl,
                            environment_id=env_id)


def remove_dns_records(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        rows = [] if env is None else list(sess.scalars(select(DnsRecord).where(
            DnsRecord.environment_id == env.id)))
        if clip.get("new_domain"):
            rows = [row for row in rows if row.name in (clip["new_domain"], "*." + clip["new_domain"])]
        names = {(row.zone, row.name, row.type) for row in rows}
        ids = [row.id for row in rows]
    names |= {tuple(record) for record in ctx.undo_data.get("records", [])}
    api, _dns_settings = _dns(ctl)
    if api is not None:
        for zone in sorted({zone for zone, _name, _type in names}):
            api.remove_records(zone, sorted((name, rtype) for z, name, rtype in names if z == zone))
    with db.session(ctl.url) as sess:
        sess.execute(delete(DnsRecord).where(DnsRecord.id.in_(ids)))


def env_pillar(clip, node):
    """What the environment's minion sees as its pillar (served by the corpus ext_pillar)."""
    return {
        "corpus": {
            "role": "environment",
            "env": {"name": clip["env_name"], "uuid": clip["env_uuid"], "type": clip["env_type"],
                    "mode": MODES[clip["env_type"]], "domain": clip["domain"],
                    "domains": [clip["domain"]] + clip.get("extra_domains", []),
                    "node": node["name"], "address": clip["ip"], "project": clip["project"]},
            "dns": {"fqdn": clip["domain"], "wildcard": "*." + clip["domain"]},
            "firewall": {"ssh": {"node": node["address"], "external_port": clip.get("ssh_port"),
                                 "internal_port": 22},
                         "http": {"node_port": node["http_port"], "internal_port": APP_PORT}},
            "credentials": {"root_authorized_keys": [clip["ssh_public_key"]] if clip.get("ssh_public_key") else [],
                            "secrets": ["root_password", "ssh_private_key"]},
        },
        "mc_project": {"projects_root": PROJECTS_ROOT},
        "makina-projects": {clip["project"]: {"env": clip["env_type"], "bind": "0.0.0.0",
                                              "port": APP_PORT}},
    }


def write_pillar(ctl, ctx):
    clip = ctx.clipboard
    data = env_pillar(clip, _node(ctx))
    with db.session(ctl.url) as sess:
        row = sess.scalar(select(Pillar).where(Pillar.minion_id == clip["minion_id"]))
        if row is None:
            sess.add(Pillar(minion_id=clip["minion_id"], data=data))
        else:
            row.data = data
    ctx.log("pillar written for minion {}".format(clip["minion_id"]))


def remove_pillar(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Pillar).where(Pillar.minion_id == ctx.clipboard["minion_id"]))


def install_minion(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    installed = ctl.call(node["minion_id"], "mc_lxc.install_minion", name=clip["env_name"],
                         master=ctl.settings["master_address"], minion_id=clip["minion_id"],
                         master_port=ctl.opts.get("ret_port", 4506),
                         publish_port=ctl.opts.get("publish_port", 4505),
                         wheelhouse="{}/wheelhouse".format(node["prefix"]), lxc_path=node["lxc_path"],
                         timeout=900)
    ctx.undo_data["minion_id"] = clip["minion_id"]
    ctl.accept_key(clip["minion_id"], installed["public_key"], timeout=120)
    ctl.wait_for_minion(clip["minion_id"], timeout=120)
    ctx.log("minion {} installed, key {} accepted".format(clip["minion_id"], installed["fingerprint"]))


def remove_minion(ctl, ctx):
    """Stop the container's minion, then forget its key (a running minion would offer it again)."""
    clip = ctx.clipboard
    node = clip.get("node")
    if node:
        try:
            ctl.call(node["minion_id"], "mc_lxc.attach", name=clip["env_name"],
                     cmd="systemctl stop corpus-minion.service", lxc_path=node["lxc_path"])
        except CorpusError as exc:  # no container, or not running: no minion to stop
            ctx.log("minion not stopped: {}".format(exc))
    ctl.delete_key(clip["minion_id"])


def highstate(ctl, ctx):
    clip = ctx.clipboard
    try:
        ret = ctl.call(clip["minion_id"], "state.apply", timeout=600)
    except CorpusError as exc:
        # A fresh minion may miss a publication while it reconnects; a highstate is
        # safe to apply again.
        if "did not answer" not in str(exc):
            raise
        ctx.log("{}; applying it again".format(exc))
        ret = ctl.call(clip["minion_id"], "state.apply", timeout=600)
    ctx.log("highstate: {} states applied".format(len(ret) if isinstance(ret, dict) else "no"))


def init_project(ctl, ctx):
    clip = ctx.clipboard
    ctl.call(clip["minion_id"], "mc_project.init_project", clip["project"], timeout=300)
    clip["git_remote"] = "ssh://root@{}:{}{}/{}/git/project.git".format(
        clip["domain"], clip["ssh_port"], PROJECTS_ROOT, clip["project"])
    ctx.log("project {} remotes created: {}".format(clip["project"], clip["git_remote"]))


def activate_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        environment(sess, ctx.clipboard["env_name"]).status = "active"


def deactivate_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.status = "creating"


def access_details(ctl, clip):
    node = clip["node"]
    port = "" if node["http_port"] == 80 else ":{}".format(node["http_port"])
    return {"name": clip["env_name"], "uuid": clip["env_uuid"], "env_type": clip["env_type"],
            "urls": ["http://{}{}/".format(domain, port)
                     for domain in [clip["domain"]] + clip.get("extra_domains", [])],
            "ssh_host": clip["domain"], "ssh_port": clip.get("ssh_port"), "node": node["name"],
            "node_address": node["address"], "git_remote": clip.get("git_remote"),
            "project": clip["project"]}


def send_access_mail(ctl, ctx):
    """Mail the requester; a mail relay that fails is reported, not a failed environment."""
    clip = ctx.clipboard
    smtp = ctl.settings["smtp"]
    if not clip.get("requester"):
        ctx.log("no requester: no mail sent")
        return
    if not smtp.get("host"):
        clip["mail_error"] = "no mail relay is configured"
        ctx.log("no mail relay is configured: no mail sent")
        return
    try:
        subject, body = mail.access_mail(access_details(ctl, clip))
        mail.send_mail(smtp, clip["requester"], subject, body)
    except CorpusError as exc:
        clip["mail_error"] = str(exc)
        ctx.log("access mail not sent: {}".format(exc))
        return
    clip.pop("mail_error", None)
    ctx.log("access details mailed to {}".format(clip["requester"]))


# -- destroying, resizing, more domains

def env_clipboard(ctl, name):
    """What the inventory knows of an environment, as the clipboard of a job on it."""
    with db.session(ctl.url) as sess:
        env = environment(sess, name)
        node = sess.get(ComputeNode, env.node_id) if env.node_id else None
        return {"env_name": env.name, "env_uuid": env.uuid, "env_type": env.env_type,
                "project": env.project, "minion_id": env.minion_id, "domain": (env.domains or [None])[0],
                "extra_domains": list(env.domains or [])[1:], "ip": env.ip,
                "node": _node_info(node) if node else None}


def retire_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        environment(sess, ctx.clipboard["env_name"]).status = "destroying"


def remove_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Environment).where(Environment.name == ctx.clipboard["env_name"]))
    ctx.log("environment {} removed; its address, slot and ports are free".format(ctx.clipboard["env_name"]))


def _pillar_domains(sess, env):
    """Keep the environment's pillar in step with its domains."""
    row = sess.scalar(select(Pillar).where(Pillar.minion_id == env.minion_id))
    if row is not None:
        data = dict(row.data)
        data["corpus"] = dict(data["corpus"], env=dict(data["corpus"]["env"], domains=list(env.domains)))
        row.data = data


def add_domain(ctl, ctx):
    """Record a linked domain on the environment and in its pillar."""
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = environment(sess, clip["env_name"])
        if clip["new_domain"] not in env.domains:
            env.domains = list(env.domains) + [clip["new_domain"]]
        clip["extra_domains"] = list(env.domains)[1:]
        _pillar_domains(sess, env)
    ctx.log("domain {} linked to {}".format(clip["new_domain"], clip["env_name"]))


def remove_domain(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        if env is None:
            return
        env.domains = [domain for domain in env.domains if domain != clip["new_domain"]]
        _pillar_domains(sess, env)


def _project_pillar(sess, env, project, present):
    row = sess.scalar(select(Pillar).where(Pillar.minion_id == env.minion_id))
    if row is None:
        return
    data = dict(row.data)
    projects = dict(data.get("makina-projects") or {})
    if present:
        projects[project] = {"env": env.env_type, "bind": "0.0.0.0", "port": APP_PORT}
    else:
        projects.pop(project, None)
    data["makina-projects"] = projects
    row.data = data


def register_project(ctl, ctx):
    """Record one more project of an environment, and give it its pillar."""
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = environment(sess, clip["env_name"])
        if clip["project"] not in [project.name for project in env.projects]:
            env.projects.append(Project(name=clip["project"]))
        _project_pillar(sess, env, clip["project"], True)


def forget_project(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = find_environment(sess, clip["env_name"])
        if env is None:
            return
        sess.execute(delete(Project).where(Project.environment_id == env.id, Project.name == clip["project"]))
        _project_pillar(sess, env, clip["project"], False)


def _project_dir(clip):
    return "{}/{}".format(PROJECTS_ROOT, clip["project"])


def stop_project(ctl, ctx):
    clip = ctx.clipboard
    if ctl.call(clip["minion_id"], "file.directory_exists", _project_dir(clip)):
        ctl.call(clip["minion_id"], "mc_project.stop", clip["project"], timeout=120)
        ctx.log("project {} stopped".format(clip["project"]))


def remove_project(ctl, ctx):
    clip = ctx.clipboard
    ctl.call(clip["minion_id"], "file.remove", _project_dir(clip), timeout=300)
    ctx.log("{} removed from {}".format(_project_dir(clip), clip["env_name"]))


def resize_container(ctl, ctx):
    clip, node = ctx.clipboard, _node(ctx)
    ret = ctl.call(node["minion_id"], "mc_lxc.resize", name=clip["env_name"], size_mb=clip["size_mb"],
                   lxc_path=node["lxc_path"], timeout=600)
    with db.session(ctl.url) as sess:
        environment(sess, clip["env_name"]).disk_size_mb = clip["size_mb"]
    ctx.log("rootfs of {} now {} MiB ({})".format(clip["env_name"], clip["size_mb"], ret))
