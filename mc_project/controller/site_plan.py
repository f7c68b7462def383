"""A site's plan: its blueprint compared with the inventory, as ordered actions.

Each action is ``+`` (create), ``~`` (change in place), ``-/+`` (replace: destroy, then
create) or ``-`` (destroy), on an environment, a domain or a check, with the
attributes that differ (``changes: {attr: [now, wanted]}``) and the job step that does
it (``site_apply`` runs them). What changes in place and what replaces:

=============  ====================================  ==============================
object         in place ``~``                        replaced ``-/+``
=============  ====================================  ==============================
environment    size (a resize), projects, a          type, node (no longer matching
               project's pillar or git source        the selector), image
domain         nameservers, records                  --
check          params, interval, timeout, retries    kind, host
=============  ====================================  ==============================

The plan reads the inventory in a few queries whatever the site's size
(``read_inventory``) and keeps the fingerprint of what it read: ``apply`` reads
again and refuses when the fingerprint differs. Destroys come first (they free
slots), then replacements, creations and changes; checks go after the
environments they watch and are removed before them.
"""

import hashlib
import json

from sqlalchemy import or_, select

from mc_project.controller import site_blueprint
from mc_project.errors import CorpusError
from mc_project.inventory import host_rows
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.fleet_rules import Conflict
from mc_project.inventory.health_models import Check
from mc_project.inventory.models import ComputeNode, DnsRecord, Domain, Environment, Pillar, Project
from mc_project.inventory.site_models import SiteObject

CREATE, CHANGE, REPLACE, DESTROY = "+", "~", "-/+", "-"
STEPS = {
    ("environment", CREATE): "site:create_env", ("environment", CHANGE): "site:change_env",
    ("environment", REPLACE): "site:replace_env", ("environment", DESTROY): "site:destroy_env",
    ("domain", CREATE): "site:create_domain", ("domain", CHANGE): "site:change_domain",
    ("domain", DESTROY): "site:destroy_domain",
    ("check", CREATE): "site:create_check", ("check", CHANGE): "site:change_check",
    ("check", REPLACE): "site:replace_check", ("check", DESTROY): "site:destroy_check",
}
# The order actions run in: (kind, op) -> rank.
ORDER = {("check", DESTROY): 0, ("check", REPLACE): 0, ("environment", DESTROY): 1, ("domain", DESTROY): 2,
         ("environment", REPLACE): 3, ("environment", CREATE): 4, ("environment", CHANGE): 5,
         ("domain", CREATE): 6, ("domain", CHANGE): 7, ("check", CREATE): 8, ("check", CHANGE): 9}
# The pillar keys the controller writes for every project (the rest is the blueprint's).
OWN_PILLAR_KEYS = ("env", "bind", "port")
KINDS = ("environment", "domain", "check")


# --------------------------------------------------------------------------- reading

def read_inventory(sess, blueprint, tenant_id):
    """The inventory rows the plan of ``blueprint`` depends on, as plain data: the
    environments, domains and checks it names or the site owns, who owns those, and the
    nodes. A fixed number of queries, whatever the number of objects."""
    wanted = {"environment": {env.name for env in blueprint.environments},
              "domain": {domain.name for domain in blueprint.domains},
              "check": {check.name for check in blueprint.checks}}
    owners = {}
    names = set().union(*wanted.values())
    for row in sess.scalars(select(SiteObject).where(or_(
            SiteObject.site == blueprint.site, SiteObject.name.in_(names) if names else False))):
        owners["{}:{}".format(row.kind, row.name)] = {"site": row.site, "spec": row.spec}
        if row.site == blueprint.site:
            wanted[row.kind].add(row.name)
    return {"site": blueprint.site, "tenant_id": tenant_id, "owners": owners,
            "nodes": read_nodes(sess),
            "environments": read_environments(sess, wanted["environment"]),
            "domains": read_domains(sess, wanted["domain"]),
            "checks": read_checks(sess, tenant_id, wanted["check"])}


def read_nodes(sess):
    return {name: {"status": status, "slots": slots} for name, status, slots in sess.execute(
        select(ComputeNode.name, ComputeNode.status, ComputeNode.slots))}


def read_environments(sess, names):
    if not names:
        return {}
    found, by_id = {}, {}
    for env, node in sess.execute(select(Environment, ComputeNode.name)
                                  .outerjoin(ComputeNode, ComputeNode.id == Environment.node_id)
                                  .where(Environment.name.in_(sorted(names)))):
        found[env.name] = {"type": env.env_type, "node": node, "size": env.disk_size_mb, "status": env.status,
                           "tenant_id": env.tenant_id, "project": env.project, "projects": [], "pillar": {}}
        by_id[env.id] = (env.name, env.minion_id)
    for env_id, project in sess.execute(select(Project.environment_id, Project.name)
                                        .where(Project.environment_id.in_(list(by_id)))):
        found[by_id[env_id][0]]["projects"].append(project)
    minions = {minion: name for name, minion in by_id.values() if minion}
    for minion, data in sess.execute(select(Pillar.minion_id, Pillar.data).where(Pillar.minion_id.in_(list(minions)))):
        projects = (data or {}).get("makina-projects") or {}
        found[minions[minion]]["pillar"] = {
            project: {key: value for key, value in (values or {}).items() if key not in OWN_PILLAR_KEYS}
            for project, values in projects.items()}
    for env in found.values():
        env["projects"].sort()
    return found


def read_domains(sess, names):
    if not names:
        return {}
    found = {domain.name: {"nameservers": list(domain.nameservers), "tenant_id": domain.tenant_id, "records": []}
             for domain in sess.scalars(select(Domain).where(Domain.name.in_(sorted(names))))}
    if found:
        zones = {name + ".": name for name in found}
        for zone, name, rtype, content, ttl in sess.execute(
                select(DnsRecord.zone, DnsRecord.name, DnsRecord.type, DnsRecord.content, DnsRecord.ttl)
                .where(DnsRecord.zone.in_(list(zones)), DnsRecord.environment_id.is_(None))):
            found[zones[zone]]["records"].append([name, rtype, content, ttl])
    for domain in found.values():
        domain["records"].sort()
    return found


def read_checks(sess, tenant_id, names):
    if not names:
        return {}
    rows = sess.scalars(select(Check).where(Check.tenant_id == tenant_id, Check.name.in_(sorted(names)))).all()
    hosts = {host["id"]: host["name"] for host in host_rows.rows(
        sess, Host.id.in_({row.host_id for row in rows if row.host_id}))} if rows else {}
    return {row.name: {"kind": row.kind, "host": hosts.get(row.host_id), "params": row.params,
                       "interval": row.interval, "timeout": row.timeout, "retries": row.retries} for row in rows}


def fingerprint(view):
    """The hash of what a plan read: a plan applies only while it is unchanged."""
    return hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- comparing

def _refuse_foreign(view, kind, name, site):
    owner = view["owners"].get("{}:{}".format(kind, name))
    if owner is not None and owner["site"] != site:
        raise Conflict("The {} {} belongs to site {}, not to {}.".format(kind, name, owner["site"], site))
    return owner


def env_changes(spec, now, owned_spec):
    """``(op, changes)`` for an environment the blueprint wants as ``spec`` that is ``now``."""
    replace, change = {}, {}
    if spec.type != now["type"]:
        replace["type"] = [now["type"], spec.type]
    if not spec.node_matches(now["node"]):
        replace["node"] = [now["node"], spec.node]
    recorded_image = (owned_spec or {}).get("image")
    if owned_spec is not None and spec.image != recorded_image:
        replace["image"] = [recorded_image, spec.image]
    if spec.size is not None and spec.size != now["size"]:
        change["size"] = [now["size"], spec.size]
    if sorted(spec.project_names) != now["projects"]:
        change["projects"] = [now["projects"], sorted(spec.project_names)]
    recorded = {project["name"]: project for project in (owned_spec or {}).get("projects", [])}
    for project in spec.projects:
        if project.name in now["projects"] and project.pillar != now["pillar"].get(project.name, {}):
            change["pillar:" + project.name] = [now["pillar"].get(project.name, {}), project.pillar]
        if project.name in recorded and project.git != recorded[project.name].get("git"):
            change["git:" + project.name] = [recorded[project.name].get("git"), project.git]
    if replace:
        return REPLACE, dict(replace, **change)
    return (CHANGE, change) if change else (None, {})


def domain_changes(spec, now):
    change = {}
    if spec.nameservers != now["nameservers"]:
        change["nameservers"] = [now["nameservers"], spec.nameservers]
    wanted = spec.record_rows()
    if wanted != now["records"]:
        change["records"] = [now["records"], wanted]
    return (CHANGE, change) if change else (None, {})


def check_changes(spec, now):
    replace = {key: [now[key], getattr(spec, key)] for key in ("kind", "host") if now[key] != getattr(spec, key)}
    change = {key: [now[key], getattr(spec, key)] for key in ("params", "interval", "timeout", "retries")
              if now[key] != getattr(spec, key)}
    if replace:
        return REPLACE, dict(replace, **change)
    return (CHANGE, change) if change else (None, {})


def _action(op, kind, name, changes=None, spec=None, before=None):
    return {"op": op, "kind": kind, "name": name, "step": STEPS[(kind, op)], "changes": changes or {},
            "spec": spec, "before": before}


def diff(blueprint, view):
    """The ordered actions that make the inventory (``view``) what ``blueprint`` says."""
    site = blueprint.site
    actions = []
    specs = {"environment": blueprint.environments, "domain": blueprint.domains, "check": blueprint.checks}
    tables = {"environment": view["environments"], "domain": view["domains"], "check": view["checks"]}
    compare = {"environment": lambda spec, now, owned: env_changes(spec, now, owned),
               "domain": lambda spec, now, owned: domain_changes(spec, now),
               "check": lambda spec, now, owned: check_changes(spec, now)}
    for kind in KINDS:
        for spec in specs[kind]:
            owner = _refuse_foreign(view, kind, spec.name, site)
            now = tables[kind].get(spec.name)
            dumped = spec.model_dump(mode="json")
            if now is None:
                actions.append(_action(CREATE, kind, spec.name, spec=dumped))
                continue
            if owner is None:
                raise Conflict("The {} {} exists and is not site {}'s: rename it in the blueprint, or remove "
                               "it first.".format(kind, spec.name, site))
            if now.get("tenant_id") not in (None, view["tenant_id"]):
                raise Conflict("The {} {} belongs to another tenant.".format(kind, spec.name))
            op, changes = compare[kind](spec, now, owner["spec"])
            if op is not None:
                actions.append(_action(op, kind, spec.name, changes, spec=dumped, before=now))
        wanted = {spec.name for spec in specs[kind]}
        for key, owner in sorted(view["owners"].items()):
            owned_kind, name = key.split(":", 1)
            if owned_kind == kind and owner["site"] == site and name not in wanted:
                actions.append(_action(DESTROY, kind, name, before=tables[kind].get(name),
                                       spec=None))
    _refuse_no_node(blueprint, view, actions)
    actions.sort(key=lambda action: ORDER[(action["kind"], action["op"])])
    return actions


def _refuse_no_node(blueprint, view, actions):
    """An environment to create whose node selector matches no node is refused now, not
    half-way through the apply."""
    wanted = {env.name: env for env in blueprint.environments}
    for action in actions:
        if action["kind"] == "environment" and action["op"] in (CREATE, REPLACE):
            spec = wanted[action["name"]]
            if spec.node is not None and not any(spec.node_matches(node) for node in view["nodes"]):
                raise CorpusError("Environment {}'s node {} matches no compute node (nodes: {}).".format(
                    spec.name, spec.node, ", ".join(sorted(view["nodes"])) or "none"))


def summary(actions):
    """``{"add", "change", "destroy"}`` as Terraform counts them (a replacement adds and destroys)."""
    count = {"add": 0, "change": 0, "destroy": 0}
    for action in actions:
        if action["op"] in (CREATE, REPLACE):
            count["add"] += 1
        if action["op"] in (DESTROY, REPLACE):
            count["destroy"] += 1
        if action["op"] == CHANGE:
            count["change"] += 1
    return count


def summary_line(actions):
    count = summary(actions)
    if not actions:
        return "No changes. The site matches its blueprint."
    return "Plan: {add} to add, {change} to change, {destroy} to destroy.".format(**count)


def make(sess, blueprint, tenant_id):
    """``(actions, fingerprint)`` of ``blueprint`` against the inventory in ``sess``."""
    view = read_inventory(sess, blueprint, tenant_id)
    return diff(blueprint, view), fingerprint(view)


def drift(sess, site, tenant_id):
    """The actions that would bring what ``site`` owns back to what was last applied."""
    specs = {kind: [] for kind in KINDS}
    for row in sess.scalars(select(SiteObject).where(SiteObject.site == site).order_by(SiteObject.name)):
        specs[row.kind].append(row.spec)
    blueprint = site_blueprint.Blueprint(site=site, environments=specs["environment"], domains=specs["domain"],
                                         checks=specs["check"])
    actions, _print = make(sess, blueprint, tenant_id)
    return actions, sum(len(items) for items in specs.values())


def owned(sess, site):
    """What ``site`` owns: ``[{kind, name}]``."""
    return [{"kind": kind, "name": name} for kind, name in sess.execute(
        select(SiteObject.kind, SiteObject.name).where(SiteObject.site == site)
        .order_by(SiteObject.kind, SiteObject.name))]

