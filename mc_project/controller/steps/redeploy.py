"""``redeploy:*``: an environment moved to a new container built beside its old one.

The new container (``<name>-<n>``: its own container name, address, minion id
``r<n>.<domain>`` and minion key) is cloned from the current golden image and booted
with new root credentials (kept as the secrets of ``env:<uuid>:next`` until the switch)
while the old one serves. Each project's tree (its remotes, kept releases and bundles,
the live release and ``data/``, its SQLite database with it) is copied from a snapshot
taken on the node, then started and checked against the new container directly. Only
then do the proxy route, the SSH NAT port, the DNS records (A, SSHFP), the inventory row
and the credentials move to it, and the old container is stopped; it is destroyed
``corpus:redeploy_keep_hours`` later (``operations.destroy_retired``).

The steps reuse init_env's (``lxc:clone``, ``lxc:boot``, ``salt:highstate``,
``project:init``, ``pdns:add_records``) on a view of the clipboard in which the
environment's container, address and minion are the new ones (``_next``). Every step
before ``redeploy:switch`` leaves the old container untouched, so its undo is the
new one's removal; the switch's undo puts everything back on the old container.
"""

import datetime
import ipaddress
import shlex
import time

from sqlalchemy import delete, or_, select, update

from mc_project.common.vocabulary import PROJECTS_ROOT
from mc_project.controller import credentials, envs
from mc_project.controller.steps import creds, dns, lxc, minion, pillar, proxy
from mc_project.errors import CorpusError
from mc_project.health import app_health, silences
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.health_models import Silence
from mc_project.inventory.models import (ComputeNode, DnsRecord, Environment, Pillar, PortMapping, Secret,
                                         SshKey, utcnow)

SILENCE_HOURS = 2
HOST_KEY = "host:"  # an environment's SSH host key rows are "host:<key type>", one per type
ATTACH = ("lxc-attach -n {name} -P {path} --clear-env --set-var PATH=/usr/local/sbin:/usr/local/bin:"
          "/usr/sbin:/usr/bin:/sbin:/bin -- ")


class View:
    """What a reused step sees: ``clipboard`` (a view of the job's), this step's own part
    of ``undo_data`` (under ``key``), and the job's log."""

    def __init__(self, ctx, clipboard, key):
        self.job_id, self.name, self.clipboard = ctx.job_id, ctx.name, clipboard
        self.undo_data = ctx.undo_data.setdefault(key, {})
        self.log = ctx.log


def _next(clip, secrets=False):
    """The clipboard as the new container's steps see it: its container name, address and
    minion; with ``secrets``, its credentials' owner (``env:<uuid>:next``)."""
    nxt = clip["next"]
    view = dict(clip, container=nxt["container"], ip=nxt["ip"], minion_id=nxt["minion_id"],
                gateway=nxt["gateway"], prefixlen=nxt["prefixlen"], ssh_public_key=nxt.get("ssh_public_key"),
                host_keys=nxt.get("host_keys"), image=clip.get("image"))
    if secrets:
        view["env_uuid"] = clip["env_uuid"] + ":next"
    return view


def next_owner(clip):
    return "env:{}:next".format(clip["env_uuid"])


def previous_owner(clip):
    return "env:{}:previous".format(clip["env_uuid"])


def _tenant_host(sess, env_name):
    env = envs.find_environment(sess, env_name)
    if env is None or env.tenant_id is None:
        return None, None
    return env.tenant_id, sess.scalar(select(Host.id).where(Host.environment_id == env.id))


# --------------------------------------------------------------------------- silence

def silence_checks(ctl, ctx):
    """A silence on the environment's host for the redeploy (its checks would see the switch)."""
    clip = ctx.clipboard
    if clip.get("silence_id"):
        return
    with db.session(ctl.url) as sess:
        tenant_id, host_id = _tenant_host(sess, clip["env_name"])
        if host_id is None:
            ctx.log("no tenant host to silence")
            return
        made = silences.create(sess, tenant_id, "corpus", "redeploy (job {})".format(ctx.job_id),
                               utcnow() + datetime.timedelta(hours=SILENCE_HOURS), host_id=host_id)
        clip["silence_id"] = made.id
    ctx.log("checks of {} silenced (silence {})".format(clip["env_name"], clip["silence_id"]))


def end_silence(ctl, ctx):
    silence_id = ctx.clipboard.get("silence_id")
    if silence_id:
        with db.session(ctl.url) as sess:
            sess.execute(update(Silence).where(Silence.id == silence_id, Silence.until > utcnow())
                         .values(until=utcnow()))
        ctx.log("silence {} ended".format(silence_id))


# --------------------------------------------------------------------------- reserve

def reserve_container(ctl, ctx):
    """The new container's name (``<name>-<n>``), address, gateway and minion id."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    if clip.get("next"):
        return
    existing = {row["name"] for row in ctl.call(node["minion_id"], "mc_lxc.list_containers",
                                                 lxc_path=node["lxc_path"]) or []}
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        taken = set(sess.scalars(select(Environment.name))) | envs.container_names_in_use(sess, ctx.job_id)
        used = envs.addresses_in_use(sess, sess.get(ComputeNode, env.node_id), ctx.job_id)
        current = env.container or env.name
    base, _dash, number = current.rpartition("-")
    if not (base == clip["env_name"] and number.isdigit()):
        base, number = clip["env_name"], "1"
    index = int(number) + 1
    while "{}-{}".format(base, index) in taken | existing:
        index += 1
    net = ipaddress.ip_network(node["subnet"])
    hosts = list(net.hosts())
    address = next((str(ip) for ip in hosts[1:] if str(ip) not in used), None)
    if address is None:
        raise CorpusError("No free address left in node {}'s subnet {} for the new container.".format(
            node["name"], net))
    clip["next"] = {"container": "{}-{}".format(base, index), "ip": address, "gateway": str(hosts[0]),
                    "prefixlen": net.prefixlen, "minion_id": "r{}.{}".format(index, clip["domain"])}
    clip["previous"] = {"container": current, "ip": clip["ip"], "minion_id": clip["minion_id"]}
    ctx.log("new container {} at {} (minion {}) beside {}".format(
        clip["next"]["container"], address, clip["next"]["minion_id"], current))


# --------------------------------------------------------------------------- credentials

def generate_credentials(ctl, ctx):
    """A new root password and SSH key pair, as the secrets of ``env:<uuid>:next``."""
    clip = ctx.clipboard
    owner = next_owner(clip)
    password = credentials.generate_password()
    private, public = credentials.generate_ssh_keypair("root@{}".format(clip["domain"]))
    with secrets_crypto.writing(ctl.settings["secrets_key"]) as keyring, db.session(ctl.url) as sess:
        creds.store_secrets(sess, keyring, owner, password, private)
    clip["next"] = dict(clip["next"], ssh_public_key=public)
    ctx.log("new root password and SSH key pair stored as secrets of {}".format(owner))


def remove_credentials(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Secret).where(Secret.owner == next_owner(ctx.clipboard)))


# --------------------------------------------------------------------------- the new container

def write_pillar(ctl, ctx):
    clip = ctx.clipboard
    view = _next(clip)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        view["extra_domains"] = list(env.domains or [])[1:]
        view["ssh_port"] = env.ssh_nat_port
        data = pillar.env_pillar(view, clip["node"])
        projects = dict(data["makina-projects"])
        for row in env.projects:
            projects.setdefault(row.name, dict(projects[clip["project"]]))
        data["makina-projects"] = projects
        old = sess.scalar(select(Pillar).where(Pillar.minion_id == clip["minion_id"]))
        if old is not None:  # what was added to the old one's pillar since (projects) stays
            data["makina-projects"] = dict(old.data.get("makina-projects") or {}, **projects)
        pillar.save(sess, view["minion_id"], data)
    ctx.log("pillar written for minion {}".format(view["minion_id"]))


def remove_pillar(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Pillar).where(Pillar.minion_id == ctx.clipboard["next"]["minion_id"]))


def clone_container(ctl, ctx):
    view = View(ctx, _next(ctx.clipboard), "clone")
    lxc.clone_container(ctl, view)
    ctx.clipboard["next"] = dict(ctx.clipboard["next"], image_ref=view.clipboard.get("image_ref"))


def destroy_container(ctl, ctx):
    if ctx.clipboard.get("next"):
        lxc.destroy_container(ctl, View(ctx, _next(ctx.clipboard), "clone"))


def boot_container(ctl, ctx):
    view = View(ctx, _next(ctx.clipboard, secrets=True), "boot")
    lxc.boot_container(ctl, view)
    ctx.clipboard["next"] = dict(ctx.clipboard["next"], host_keys=view.clipboard["host_keys"])


def remove_minion(ctl, ctx):
    if ctx.clipboard.get("next"):
        minion.remove_minion(ctl, View(ctx, _next(ctx.clipboard), "boot"))


def highstate(ctl, ctx):
    minion.highstate(ctl, View(ctx, _next(ctx.clipboard), "highstate"))


# --------------------------------------------------------------------------- projects

def _attach(node, name):
    return ATTACH.format(name=shlex.quote(name), path=shlex.quote(node["lxc_path"]))


def archive_dir(clip, job_id):
    return "{}/redeploy/{}".format(clip["node"]["prefix"], job_id)


def _on_node(ctl, node, command, what):
    """Run ``command`` (bash, ``pipefail``) on the node; raise ``what`` with its error."""
    try:
        ret = ctl.call(node["minion_id"], "cmd.run_all", "set -o pipefail; " + command, python_shell=True,
                       shell="/bin/bash", timeout=1800)
    except CorpusError as exc:
        raise CorpusError("{} failed: {}".format(what, exc)) from None
    if ret.get("retcode"):
        raise CorpusError("{} failed: {}".format(what, (ret.get("stderr") or ret.get("stdout") or "").strip()[:300]))
    return ret.get("stdout") or ""


def snapshot_projects(ctl, ctx):
    """Each project's tree in the old container (remotes, releases and bundles, the live one,
    ``data/`` with its SQLite database), as a tar file on the node; and what is live."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    folder = archive_dir(clip, ctx.job_id)
    ctx.undo_data["folder"] = folder
    with db.session(ctl.url) as sess:
        names = sorted(row.name for row in envs.environment(sess, clip["env_name"]).projects)
    old = clip.get("previous", {}).get("container") or _container(ctl, clip)
    found = {}
    for name in names:
        status = _status(ctl, clip["minion_id"], name)
        path = "{}/{}".format(PROJECTS_ROOT, name)
        tar = "{}/{}.tar".format(folder, name)
        # tar's status 1 is a file that changed while it was read (a log the live app writes);
        # the supervisor's sockets are its running process's, not the project's.
        out = _on_node(ctl, node, "mkdir -p {f} && chmod 700 {f} && if {a}test -d {p}; then {{ {a}tar -C {r} "
                       "--warning=no-file-changed --exclude={n}/supervisor/run -cf - {n} > {t} || [ $? -eq 1 ]; }} "
                       "&& stat -c %s {t}; fi".format(
                           f=shlex.quote(folder), a=_attach(node, old), p=shlex.quote(path),
                           r=PROJECTS_ROOT, n=shlex.quote(name), t=shlex.quote(tar)),
                       "Snapshotting project {}".format(name))
        if out.strip():
            found[name] = {"release": status.get("release"), "bytes": int(out.split()[-1])}
            ctx.log("{}: live release {}, {} bytes".format(name, status.get("release") or "none",
                                                           found[name]["bytes"]))
    clip["snapshots"] = found


def _status(ctl, minion_id, project, attempts=3):
    """``mc_project.status`` of ``project``; asked again when a busy minion let Salt's gather
    timeout pass ("did not return"): it only reads."""
    for attempt in range(attempts):
        try:
            return ctl.call(minion_id, "mc_project.status", project, timeout=60) or {}
        except CorpusError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)


def _container(ctl, clip):
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        return env.container or env.name


def remove_snapshots(ctl, ctx):
    folder = ctx.undo_data.get("folder") or archive_dir(ctx.clipboard, ctx.job_id)
    if ctx.clipboard.get("node"):
        _on_node(ctl, ctx.clipboard["node"], "rm -rf {}".format(shlex.quote(folder)), "Removing the snapshots")


def restore_projects(ctl, ctx):
    """Each project in the new container: its layout and user, then its snapshot, then its
    live release started."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    nxt = clip["next"]
    folder = archive_dir(clip, ctx.job_id)
    for name, snap in sorted(clip.get("snapshots", {}).items()):
        ctl.call(nxt["minion_id"], "mc_project.init_project", name, timeout=300)
        _on_node(ctl, node, "{a}tar -C {r} -xpf - < {t}".format(
            a=_attach(node, nxt["container"]), r=PROJECTS_ROOT, t=shlex.quote("{}/{}.tar".format(folder, name))),
            "Restoring project {}".format(name))
        if snap.get("release"):
            ctl.call(nxt["minion_id"], "mc_project.start", name, timeout=300)
            ctx.log("{}: release {} restored and started".format(name, snap["release"]))
        else:
            ctx.log("{}: restored (nothing live)".format(name))


# --------------------------------------------------------------------------- verify

def verify(ctl, ctx):
    """Each restored project says its live release is the old one's; then the walk of the
    site's backend, against the new container directly (from its node, not through the
    proxy): each domain, as ``Host``, at the environment's health path (``health_path``,
    default ``/``) answers 2xx or 3xx, as a site walk counts it."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    nxt = clip["next"]
    live = [name for name, snap in clip.get("snapshots", {}).items() if snap.get("release")]
    for name in sorted(live):
        status = _status(ctl, nxt["minion_id"], name)
        if status.get("release") != clip["snapshots"][name]["release"]:
            raise CorpusError("Project {} runs release {} in the new container, not {}.".format(
                name, status.get("release"), clip["snapshots"][name]["release"]))
    if not live:
        ctx.log("no project is live: nothing to walk")
        return
    with db.session(ctl.url) as sess:
        path, port = app_health.health_path_and_port(sess, envs.environment(sess, clip["env_name"]))
    for domain in envs.domains(clip):
        url = "http://{}:{}{}".format(nxt["ip"], port, path)
        code = _on_node(ctl, node, "python3 -c {}".format(shlex.quote(_PROBE.format(url=url, host=domain))),
                        "Checking the new container over HTTP").strip()
        if not (code.isdigit() and 200 <= int(code) < 400):
            raise CorpusError("The new container did not answer {} for {} (HTTP status {}).".format(
                url, domain, code or "none"))
        ctx.log("{} answers {} at {}".format(domain, code, url))


# What the node runs to ask the new container: the status, or "none" with no answer.
_PROBE = ("import urllib.request as u, urllib.error as e\n"
          "try: print(u.urlopen(u.Request({url!r}, headers={{'Host': {host!r}}}), timeout=10).status)\n"
          "except e.HTTPError as x: print(x.code)\n"
          "except OSError: print('none')\n")


# --------------------------------------------------------------------------- switch

def switch(ctl, ctx):
    """Traffic, SSH, DNS, inventory and credentials move to the new container."""
    clip = ctx.clipboard
    nxt, prev = clip["next"], clip["previous"]
    ctx.undo_data["started"] = True
    # The proxy first: haproxy reloads with -sf, new connections go to the new container
    # while the old process finishes those it holds.
    proxy.add_routes(ctl, View(ctx, _next(clip), "proxy"))
    _move_ssh_port(ctl, clip, nxt["ip"], ctx)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        ctx.undo_data["image"] = env.image
        env.container, env.ip, env.minion_id = nxt["container"], nxt["ip"], nxt["minion_id"]
        env.image = nxt.get("image_ref") or env.image
        old_keys = [row.public_key for row in sess.scalars(select(SshKey).where(
            SshKey.environment_id == env.id, SshKey.name == "root"))]
        ctx.undo_data["root_keys"] = old_keys
        _delete_keys(sess, env)
        sess.add(SshKey(name="root", public_key=nxt["ssh_public_key"],
                        fingerprint=credentials.fingerprint(nxt["ssh_public_key"]), environment_id=env.id))
        for line in nxt.get("host_keys") or []:
            sess.add(SshKey(name=HOST_KEY + line.split()[0], public_key=line, fingerprint=credentials.fingerprint(line),
                            environment_id=env.id))
        sess.execute(delete(Secret).where(Secret.owner == previous_owner(clip)))
        sess.execute(update(Secret).where(Secret.owner == "env:{}".format(clip["env_uuid"]))
                     .values(owner=previous_owner(clip)))
        sess.execute(update(Secret).where(Secret.owner == next_owner(clip)).values(owner="env:{}".format(
            clip["env_uuid"])))
        sess.execute(delete(DnsRecord).where(DnsRecord.environment_id == env.id, DnsRecord.type == "SSHFP"))
    dns.add_dns_records(ctl, View(ctx, dict(clip, host_keys=nxt.get("host_keys")), "dns"))
    clip.update(ip=nxt["ip"], minion_id=nxt["minion_id"])
    ctx.log("{} now served by {} at {} (was {} at {})".format(clip["env_name"], nxt["container"], nxt["ip"],
                                                            prev["container"], prev["ip"]))


def _delete_keys(sess, env):
    """The environment's root key and host keys (before the other container's go in)."""
    sess.execute(delete(SshKey).where(SshKey.environment_id == env.id,
                                      or_(SshKey.name == "root", SshKey.name.like(HOST_KEY + "%"))))
    sess.flush()


def _move_ssh_port(ctl, clip, address, ctx):
    node = clip["node"]
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        ports = list(sess.scalars(select(PortMapping.external_port).where(
            PortMapping.environment_id == env.id, PortMapping.internal_port == 22)))
    for port in ports:
        ctl.call(node["minion_id"], "mc_lxc.unmap_port", external_port=port)
        ctl.call(node["minion_id"], "mc_lxc.map_port", external_port=port, address=address, internal_port=22)
        ctx.log("node port {} NATed to {}:22".format(port, address))


def switch_back(ctl, ctx):
    """Everything back on the old container (which still runs: nothing stops it before)."""
    clip = ctx.clipboard
    if not ctx.undo_data.get("started"):
        return
    prev = clip["previous"]
    old_view = dict(clip, container=prev["container"], ip=prev["ip"], minion_id=prev["minion_id"])
    proxy.add_routes(ctl, View(ctx, old_view, "proxy_back"))
    _move_ssh_port(ctl, clip, prev["ip"], ctx)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        env.container, env.ip, env.minion_id = prev["container"], prev["ip"], prev["minion_id"]
        if "image" in ctx.undo_data:
            env.image = ctx.undo_data["image"]
        _delete_keys(sess, env)
        for key in ctx.undo_data.get("root_keys") or []:
            sess.add(SshKey(name="root", public_key=key, fingerprint=credentials.fingerprint(key),
                            environment_id=env.id))
        if sess.scalar(select(Secret.id).where(Secret.owner == previous_owner(clip))):
            sess.execute(update(Secret).where(Secret.owner == "env:{}".format(clip["env_uuid"]))
                         .values(owner=next_owner(clip)))
            sess.execute(update(Secret).where(Secret.owner == previous_owner(clip))
                         .values(owner="env:{}".format(clip["env_uuid"])))
        sess.execute(delete(DnsRecord).where(DnsRecord.environment_id == env.id, DnsRecord.type == "SSHFP"))
    old_keys = ctl.call(clip["node"]["minion_id"], "mc_lxc.host_keys", name=prev["container"],
                        lxc_path=clip["node"]["lxc_path"])
    dns.add_dns_records(ctl, View(ctx, dict(clip, host_keys=old_keys), "dns_back"))
    clip.update(ip=prev["ip"], minion_id=prev["minion_id"])
    ctx.log("{} back on {} at {}".format(clip["env_name"], prev["container"], prev["ip"]))


# --------------------------------------------------------------------------- retire

def retire_old(ctl, ctx):
    """The old container's minion forgotten, its pillar and credentials dropped, the container
    stopped; destroyed now when ``corpus:redeploy_keep_hours`` is 0, else by
    ``operations.destroy_retired`` once that long has passed. Traffic has moved: what fails
    here is logged and left to ``destroy_retired``, the redeploy stands."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    prev = clip["previous"]
    clip["retired"] = {"container": prev["container"], "node": node["name"], "since": utcnow().isoformat()}
    view = View(ctx, dict(clip, container=prev["container"], minion_id=prev["minion_id"]), "retire")
    for what, action in (
            ("old minion removed", lambda: minion.remove_minion(ctl, view)),
            ("old pillar and credentials dropped", lambda: _drop_old_rows(ctl, clip)),
            ("old container {} stopped".format(prev["container"]),
             lambda: ctl.call(node["minion_id"], "mc_lxc.stop", name=prev["container"], lxc_path=node["lxc_path"],
                              timeout=120)),
            ("snapshots removed", lambda: remove_snapshots(ctl, ctx))):
        try:
            action()
            ctx.log(what)
        except CorpusError as exc:
            ctx.log("not done ({}): {}".format(what, exc))
    if not ctl.settings["redeploy_keep_hours"]:
        try:
            destroy_retired_container(ctl, node, clip["retired"])
            ctx.log("old container {} destroyed (corpus:redeploy_keep_hours is 0)".format(prev["container"]))
        except CorpusError as exc:
            ctx.log("old container {} not destroyed yet: {}".format(prev["container"], exc))


def _drop_old_rows(ctl, clip):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Pillar).where(Pillar.minion_id == clip["previous"]["minion_id"]))
        sess.execute(delete(Secret).where(Secret.owner == previous_owner(clip)))


def destroy_retired_container(ctl, node, retired):
    ctl.call(node["minion_id"], "mc_lxc.destroy", name=retired["container"], lxc_path=node["lxc_path"],
             timeout=300)
    retired["destroyed"] = utcnow().isoformat()


STEPS = {
    "redeploy:silence": (silence_checks, end_silence),
    "redeploy:snapshot": (snapshot_projects, remove_snapshots),
    "redeploy:reserve": (reserve_container, None),
    "redeploy:credentials": (generate_credentials, remove_credentials),
    "redeploy:pillar": (write_pillar, remove_pillar),
    "redeploy:clone": (clone_container, destroy_container),
    "redeploy:boot": (boot_container, remove_minion),
    "redeploy:highstate": (highstate, None),
    "redeploy:restore": (restore_projects, None),
    "redeploy:verify": (verify, None),
    "redeploy:switch": (switch, switch_back),
    "redeploy:unsilence": (end_silence, None),
    "redeploy:retire": (retire_old, None),
}
