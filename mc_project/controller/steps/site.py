"""``site:*``: one action of a site's plan each (``site_plan``), run by ``site_apply``.

A site's apply is one job whose steps are its plan's actions, in order: step N does
``clipboard["actions"][N-1]``. Each calls what the controller already does -- an
environment is made by ``operations.init_env`` (its own job, the same steps as
``corpus init_env``), resized, given projects and destroyed by the other operations;
domains and records go through ``inventory.domains`` (the inventory and PowerDNS
together); checks through ``health.definitions`` -- then records what the site now
owns (``SiteObject``). A step that fails takes back its own part (an environment made
before its second project failed is destroyed). Undos (``corpus undo`` of the apply's
job) take back what they can: a created object is destroyed, a change is changed back;
a destroy or a replacement cannot be taken back.
"""

import copy
import logging

from sqlalchemy import delete, select

from mc_project.controller import envs, operations
from mc_project.controller.site_blueprint import CheckSpec, EnvironmentSpec
from mc_project.errors import CorpusError
from mc_project.health import definitions
from mc_project.inventory import db, domains
from mc_project.inventory.health_models import Check
from mc_project.inventory.models import ComputeNode, DnsRecord, Domain, Pillar
from mc_project.inventory.site_models import SiteObject

log = logging.getLogger(__name__)


def refresh_pillars(ctl, minions):
    """Ask ``minions`` to read their pillar again (a project's pillar, a check changed); a
    minion that is down reads it when it starts."""
    minions = sorted(minion for minion in minions if minion)
    if not minions:
        return
    try:
        ctl.client.cmd_async(minions, "saltutil.refresh_pillar", tgt_type="list")
    except Exception as exc:  # a refresh is a courtesy: the job's work is done
        log.warning("site: could not ask %d minions to refresh their pillar: %s", len(minions), exc)


def _action(ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    ctx.log("{} {} {}".format(action["op"], action["kind"], action["name"]))
    return action


def own(ctl, clip, kind, name, spec):
    """Record that the site owns ``kind`` ``name``, as ``spec`` says it is."""
    with db.session(ctl.url) as sess:
        row = sess.scalar(select(SiteObject).where(SiteObject.kind == kind, SiteObject.name == name))
        if row is None:
            sess.add(SiteObject(site=clip["site"], tenant_id=clip["tenant_id"], kind=kind, name=name, spec=spec))
        else:
            row.spec, row.site = spec, clip["site"]


def disown(ctl, kind, name):
    with db.session(ctl.url) as sess:
        sess.execute(delete(SiteObject).where(SiteObject.kind == kind, SiteObject.name == name))


def _owned_spec(ctl, kind, name):
    with db.session(ctl.url) as sess:
        row = sess.scalar(select(SiteObject).where(SiteObject.kind == kind, SiteObject.name == name))
        return copy.deepcopy(row.spec) if row is not None else None


def _restore_owner(ctl, ctx, kind, name):
    if ctx.undo_data.get("owned_before") is not None:
        own(ctl, ctx.clipboard, kind, name, ctx.undo_data["owned_before"])
    else:
        disown(ctl, kind, name)


def _done(result, what):
    if not result["result"]:
        raise CorpusError("{}: {}".format(what, (result.get("comment") or "its job failed").rstrip(".")))
    return result


def _exists(ctl, name):
    with db.session(ctl.url) as sess:
        return envs.find_environment(sess, name) is not None


# --------------------------------------------------------------------------- environments

def _pick_node(ctl, spec):
    """A node for ``spec``: the one it names, or the first matching its pattern with a free slot."""
    if spec.node is None or not spec.node_is_pattern:
        return spec.node
    with db.session(ctl.url) as sess:
        for node in sorted(name for name in sess.scalars(select(ComputeNode.name)) if spec.node_matches(name)):
            try:
                envs.node_with_room(sess, node)
                return node
            except CorpusError:
                continue
    raise CorpusError("No compute node matching {} has a free slot.".format(spec.node))


def set_project_pillar(ctl, name, wanted):
    """The blueprint's pillar of each project (``{project: {key: value}}``) in the
    environment's pillar, beside what the controller writes there itself."""
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        row = sess.scalar(select(Pillar).where(Pillar.minion_id == env.minion_id))
        if row is None:
            return
        data = copy.deepcopy(row.data)
        projects = data.setdefault("makina-projects", {})
        for project, values in wanted.items():
            own_keys = {key: value for key, value in (projects.get(project) or {}).items()
                        if key in ("env", "bind", "port")}
            projects[project] = dict(values, **own_keys)
        row.data = data
        minion = env.minion_id
    refresh_pillars(ctl, [minion])


def _make_env(ctl, ctx, action):
    spec = EnvironmentSpec.model_validate(action["spec"])
    projects = spec.project_names
    result = _done(operations.init_env(ctl, spec.name, spec.type, project=projects[0], host=_pick_node(ctl, spec),
                                       disk_size_mb=spec.size, image=spec.image), "creating environment " + spec.name)
    ctx.log("environment {} made by job {}".format(spec.name, result["job"]))
    with db.session(ctl.url) as sess:
        envs.environment(sess, spec.name).tenant_id = ctx.clipboard["tenant_id"]
    for project in projects[1:]:
        _done(operations.add_project(ctl, spec.name, project), "adding project {} to {}".format(project, spec.name))
    set_project_pillar(ctl, spec.name, {project.name: project.pillar for project in spec.projects if project.pillar})
    own(ctl, ctx.clipboard, "environment", spec.name, action["spec"])


def create_env(ctl, ctx):
    action = _action(ctx)
    ctx.undo_data["owned_before"] = _owned_spec(ctl, "environment", action["name"])
    _make_env(ctl, ctx, action)


def uncreate_env(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    if _exists(ctl, action["name"]):
        _done(operations.destroy_env(ctl, action["name"]), "destroying environment " + action["name"])
    _restore_owner(ctl, ctx, "environment", action["name"])


def change_env(ctl, ctx):
    action = _action(ctx)
    name, changes, before = action["name"], action["changes"], action["before"]
    spec = EnvironmentSpec.model_validate(action["spec"])
    ctx.undo_data["owned_before"] = _owned_spec(ctl, "environment", name)
    if "size" in changes:
        old, new = changes["size"]
        _done(operations.resize_env(ctl, name, new, grow=old is None or new > old), "resizing " + name)
        ctx.undo_data["size"] = old
    if "projects" in changes:
        now, wanted = changes["projects"]
        for project in [project for project in spec.project_names if project not in now]:
            _done(operations.add_project(ctl, name, project), "adding project {} to {}".format(project, name))
            ctx.undo_data.setdefault("added", []).append(project)
        for project in [project for project in now if project not in wanted]:
            _done(operations.destroy_project(ctl, name, project), "removing project {} of {}".format(project, name))
    ctx.undo_data["pillar"] = {project.name: before["pillar"].get(project.name, {}) for project in spec.projects}
    set_project_pillar(ctl, name, {project.name: project.pillar for project in spec.projects})
    own(ctl, ctx.clipboard, "environment", name, action["spec"])


def unchange_env(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    name = action["name"]
    if not _exists(ctl, name):
        return
    if ctx.undo_data.get("pillar"):
        set_project_pillar(ctl, name, ctx.undo_data["pillar"])
    for project in ctx.undo_data.get("added", []):
        _done(operations.destroy_project(ctl, name, project), "removing project {} of {}".format(project, name))
    if ctx.undo_data.get("size"):
        with db.session(ctl.url) as sess:
            now = envs.environment(sess, name).disk_size_mb
        old = ctx.undo_data["size"]
        if now != old:
            _done(operations.resize_env(ctl, name, old, grow=old > (now or 0)), "resizing {} back".format(name))
    _restore_owner(ctl, ctx, "environment", name)


def replace_env(ctl, ctx):
    action = _action(ctx)
    if _exists(ctl, action["name"]):
        _done(operations.destroy_env(ctl, action["name"]), "destroying environment " + action["name"])
        ctx.log("environment {} destroyed; making it again".format(action["name"]))
    _make_env(ctl, ctx, action)


def destroy_env(ctl, ctx):
    action = _action(ctx)
    if _exists(ctl, action["name"]):
        _done(operations.destroy_env(ctl, action["name"]), "destroying environment " + action["name"])
    disown(ctl, "environment", action["name"])


# --------------------------------------------------------------------------- domains

def _actor(ctx):
    return ctx.clipboard.get("who") or "site:" + ctx.clipboard["site"]


def sync_domain(ctl, actor, name, nameservers, rows):
    """Domain ``name``'s NS set and hand-made records made exactly ``nameservers`` and
    ``rows`` (``[name, type, content, ttl]``)."""
    api = domains.powerdns(ctl.settings["dns"])
    wanted = {tuple(row) for row in rows}
    with db.session(ctl.url) as sess:
        domain = sess.scalar(select(Domain).where(Domain.name == name))
        if domain is None:
            raise CorpusError("No domain named {}.".format(name))
        if list(domain.nameservers) != list(nameservers):
            domains.change_nameservers(sess, api, actor, domain, nameservers)
        for row in sess.scalars(select(DnsRecord).where(DnsRecord.zone == domains.zone_of(domain),
                                                        DnsRecord.environment_id.is_(None))).all():
            if (row.name, row.type, row.content, row.ttl) not in wanted:
                domains.delete_record(sess, api, actor, domain, row)
        present = {(row.name, row.type, row.content, row.ttl) for row in sess.scalars(
            select(DnsRecord).where(DnsRecord.zone == domains.zone_of(domain), DnsRecord.environment_id.is_(None)))}
        for record_name, rtype, content, ttl in sorted(wanted - present):
            domains.add_record(sess, api, actor, domain, record_name, rtype, content, ttl)


def create_domain(ctl, ctx):
    action = _action(ctx)
    spec = action["spec"]
    api = domains.powerdns(ctl.settings["dns"])
    with db.session(ctl.url) as sess:
        domains.create_domain(sess, api, _actor(ctx), ctx.clipboard["tenant_id"], spec["name"], spec["nameservers"])
    ctx.undo_data["created"] = True
    sync_domain(ctl, _actor(ctx), spec["name"], spec["nameservers"],
                [[r["name"], r["type"], r["content"], r["ttl"]] for r in spec["records"]])
    own(ctl, ctx.clipboard, "domain", spec["name"], spec)


def _delete_domain(ctl, actor, name):
    api = domains.powerdns(ctl.settings["dns"])
    with db.session(ctl.url) as sess:
        domain = sess.scalar(select(Domain).where(Domain.name == name))
        if domain is not None:
            domains.delete_domain(sess, api, actor, domain)


def uncreate_domain(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    if ctx.undo_data.get("created"):
        _delete_domain(ctl, _actor(ctx), action["name"])
    disown(ctl, "domain", action["name"])


def change_domain(ctl, ctx):
    action = _action(ctx)
    spec = action["spec"]
    ctx.undo_data["owned_before"] = _owned_spec(ctl, "domain", action["name"])
    ctx.undo_data["before"] = action["before"]
    sync_domain(ctl, _actor(ctx), spec["name"], spec["nameservers"],
                [[r["name"], r["type"], r["content"], r["ttl"]] for r in spec["records"]])
    own(ctl, ctx.clipboard, "domain", spec["name"], spec)


def unchange_domain(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    before = ctx.undo_data.get("before")
    if before:
        sync_domain(ctl, _actor(ctx), action["name"], before["nameservers"], before["records"])
    _restore_owner(ctl, ctx, "domain", action["name"])


def destroy_domain(ctl, ctx):
    action = _action(ctx)
    _delete_domain(ctl, _actor(ctx), action["name"])
    disown(ctl, "domain", action["name"])


# --------------------------------------------------------------------------- checks

def _make_check(ctl, clip, spec):
    with db.session(ctl.url) as sess:
        check = definitions.create_check(sess, clip["tenant_id"], spec.name, spec.kind, host=spec.host,
                                         params=spec.params, interval=spec.interval, timeout=spec.timeout,
                                         retries=spec.retries)
        minions = definitions.minions_of(sess, check)
    refresh_pillars(ctl, minions)


def _drop_check(ctl, clip, name):
    with db.session(ctl.url) as sess:
        check = sess.scalar(select(Check).where(Check.tenant_id == clip["tenant_id"], Check.name == name))
        minions = definitions.minions_of(sess, check) if check is not None else []
        sess.execute(delete(Check).where(Check.tenant_id == clip["tenant_id"], Check.name == name))
    refresh_pillars(ctl, minions)


def create_check(ctl, ctx):
    action = _action(ctx)
    _make_check(ctl, ctx.clipboard, CheckSpec.model_validate(action["spec"]))
    own(ctl, ctx.clipboard, "check", action["name"], action["spec"])


def uncreate_check(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    _drop_check(ctl, ctx.clipboard, action["name"])
    disown(ctl, "check", action["name"])


def _set_check(ctl, clip, name, values):
    with db.session(ctl.url) as sess:
        check = sess.scalar(select(Check).where(Check.tenant_id == clip["tenant_id"], Check.name == name))
        if check is None:
            raise CorpusError("No check named {}.".format(name))
        check.params = definitions.check_params(check.kind, values["params"])
        check.interval, check.timeout, check.retries = values["interval"], values["timeout"], values["retries"]
        minions = definitions.minions_of(sess, check)
    refresh_pillars(ctl, minions)


def change_check(ctl, ctx):
    action = _action(ctx)
    ctx.undo_data["owned_before"] = _owned_spec(ctl, "check", action["name"])
    ctx.undo_data["before"] = action["before"]
    _set_check(ctl, ctx.clipboard, action["name"], action["spec"])
    own(ctl, ctx.clipboard, "check", action["name"], action["spec"])


def unchange_check(ctl, ctx):
    action = ctx.clipboard["actions"][ctx.index - 1]
    if ctx.undo_data.get("before"):
        _set_check(ctl, ctx.clipboard, action["name"], ctx.undo_data["before"])
    _restore_owner(ctl, ctx, "check", action["name"])


def replace_check(ctl, ctx):
    action = _action(ctx)
    _drop_check(ctl, ctx.clipboard, action["name"])
    _make_check(ctl, ctx.clipboard, CheckSpec.model_validate(action["spec"]))
    own(ctl, ctx.clipboard, "check", action["name"], action["spec"])


def destroy_check(ctl, ctx):
    action = _action(ctx)
    _drop_check(ctl, ctx.clipboard, action["name"])
    disown(ctl, "check", action["name"])


STEPS = {
    "site:create_env": (create_env, uncreate_env),
    "site:change_env": (change_env, unchange_env),
    "site:replace_env": (replace_env, None),
    "site:destroy_env": (destroy_env, None),
    "site:create_domain": (create_domain, uncreate_domain),
    "site:change_domain": (change_domain, unchange_domain),
    "site:destroy_domain": (destroy_domain, None),
    "site:create_check": (create_check, uncreate_check),
    "site:change_check": (change_check, unchange_check),
    "site:replace_check": (replace_check, None),
    "site:destroy_check": (destroy_check, None),
}

