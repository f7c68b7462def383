"""(p) a site's plan: a blueprint of 100 environments (each with two projects and a
pillar), 10 domains of 5 records and 20 checks, against an SQLite inventory holding
them (and 900 environments of no site), 10 of the environments resized and one
domain's records changed. The plan is made as ``POST /v1/plans`` makes it (read the
rows, compare, hash), goal < 1 s; the baseline is the same comparison reading the
inventory one query per object (an environment, its node, its projects, its pillar,
its owner...), measured in the same run.
"""

import json
import os
import shutil
import tempfile
import time

from harness import fmt_ratio, fmt_seconds, median, ratio, table
from sqlalchemy import select

from mc_project.controller import site_blueprint, site_plan  # noqa: E402  (harness put the repo on sys.path)
from mc_project.inventory import db  # noqa: E402
from mc_project.inventory.fleet_models import Host  # noqa: E402
from mc_project.inventory.health_models import Check  # noqa: E402
from mc_project.inventory.models import (ComputeNode, DnsRecord, Domain, Environment, Pillar,  # noqa: E402
                                         Project, Tenant)
from mc_project.inventory.site_models import SiteObject  # noqa: E402

ENVS = 100
OTHERS = 900
DOMAINS = 10
RECORDS = 5
CHECKS = 20
ROUNDS = 5


def blueprint_data():
    return {
        "site": "big",
        "environments": [{"name": "env{}".format(n), "type": "staging", "node": "node*",
                          "size": 2048 if n % 10 else 4096,
                          "projects": [{"name": "app{}".format(n), "pillar": {"workers": 2}},
                                       {"name": "worker{}".format(n)}]} for n in range(ENVS)],
        "domains": [{"name": "d{}.example".format(n), "nameservers": ["ns1.example.net"],
                     "records": [{"name": "r{}".format(r), "type": "A",
                                  "content": "192.0.2.{}".format(r + (50 if n == 0 else 1))}
                                 for r in range(RECORDS)]} for n in range(DOMAINS)],
        "checks": [{"name": "up{}".format(n), "kind": "tcp", "host": "env{}".format(n),
                    "params": {"port": 22}} for n in range(CHECKS)],
    }


def fill(url, blueprint):
    with db.session(url) as sess:
        tenant = Tenant(name="bench")
        sess.add(tenant)
        sess.flush()
        nodes = [ComputeNode(name="node{}".format(n), address="192.0.2.{}".format(100 + n), slots=1000,
                             minion_id="node{}".format(n), tenant_id=tenant.id) for n in range(4)]
        sess.add_all(nodes)
        sess.flush()
        for n in range(ENVS + OTHERS):
            name = "env{}".format(n) if n < ENVS else "other{}".format(n)
            env = Environment(name=name, env_type="staging", node_id=nodes[n % 4].id, disk_size_mb=2048,
                              status="active", minion_id=name + ".corpus.test", tenant_id=tenant.id,
                              project="app{}".format(n))
            env.projects = [Project(name="app{}".format(n)), Project(name="worker{}".format(n))]
            sess.add(env)
            sess.add(Pillar(minion_id=name + ".corpus.test", data={"makina-projects": {
                "app{}".format(n): {"env": "staging", "bind": "0.0.0.0", "port": 8000, "workers": 2},
                "worker{}".format(n): {"env": "staging", "bind": "0.0.0.0", "port": 8000}}}))
        for spec in blueprint.environments:
            sess.add(SiteObject(site="big", tenant_id=tenant.id, kind="environment", name=spec.name,
                                spec=spec.model_dump(mode="json")))
        for spec in blueprint.domains:
            sess.add(Domain(tenant_id=tenant.id, name=spec.name, nameservers=spec.nameservers))
            for r in range(RECORDS):
                sess.add(DnsRecord(zone=spec.name + ".", name="r{}.{}".format(r, spec.name), type="A",
                                   content="192.0.2.{}".format(r + 1), ttl=300))
            sess.add(SiteObject(site="big", tenant_id=tenant.id, kind="domain", name=spec.name,
                                spec=spec.model_dump(mode="json")))
        sess.flush()
        for spec in blueprint.checks:
            host_id = sess.scalar(select(Host.id).where(Host.name == spec.host))
            sess.add(Check(tenant_id=tenant.id, name=spec.name, kind="tcp", host_id=host_id, params={"port": 22},
                           interval=60, timeout=10, retries=0))
            sess.add(SiteObject(site="big", tenant_id=tenant.id, kind="check", name=spec.name,
                                spec=spec.model_dump(mode="json")))
        return tenant.id


def naive_view(sess, blueprint, tenant_id):
    """The same rows as ``site_plan.read_inventory``, one query per object."""
    owners, envs, domains, checks = {}, {}, {}, {}
    for kind, items in (("environment", blueprint.environments), ("domain", blueprint.domains),
                        ("check", blueprint.checks)):
        for spec in items:
            row = sess.scalar(select(SiteObject).where(SiteObject.kind == kind, SiteObject.name == spec.name))
            if row is not None:
                owners["{}:{}".format(kind, spec.name)] = {"site": row.site, "spec": row.spec}
    for spec in blueprint.environments:
        env = sess.scalar(select(Environment).where(Environment.name == spec.name))
        node = sess.scalar(select(ComputeNode.name).where(ComputeNode.id == env.node_id))
        projects = sorted(sess.scalars(select(Project.name).where(Project.environment_id == env.id)))
        data = sess.scalar(select(Pillar.data).where(Pillar.minion_id == env.minion_id)) or {}
        pillar = {project: {key: value for key, value in values.items() if key not in site_plan.OWN_PILLAR_KEYS}
                  for project, values in (data.get("makina-projects") or {}).items()}
        envs[spec.name] = {"type": env.env_type, "node": node, "size": env.disk_size_mb, "status": env.status,
                           "tenant_id": env.tenant_id, "project": env.project, "projects": projects,
                           "pillar": pillar}
    for spec in blueprint.domains:
        domain = sess.scalar(select(Domain).where(Domain.name == spec.name))
        records = sorted([row.name, row.type, row.content, row.ttl] for row in sess.scalars(
            select(DnsRecord).where(DnsRecord.zone == spec.name + ".", DnsRecord.environment_id.is_(None))))
        domains[spec.name] = {"nameservers": list(domain.nameservers), "tenant_id": domain.tenant_id,
                              "records": records}
    for spec in blueprint.checks:
        check = sess.scalar(select(Check).where(Check.tenant_id == tenant_id, Check.name == spec.name))
        host = sess.scalar(select(Host.name).where(Host.id == check.host_id))
        checks[spec.name] = {"kind": check.kind, "host": host, "params": check.params, "interval": check.interval,
                             "timeout": check.timeout, "retries": check.retries}
    return {"site": blueprint.site, "tenant_id": tenant_id, "owners": owners, "nodes": site_plan.read_nodes(sess),
            "environments": envs, "domains": domains, "checks": checks}


def bench_plans(section, out, notes, quick=False):
    section("p")
    root = tempfile.mkdtemp(prefix="corpus-bench-plan-")
    url = "sqlite:///" + os.path.join(root, "inventory.sqlite")
    text = json.dumps(blueprint_data())
    try:
        db.init(url)
        tenant_id = fill(url, site_blueprint.parse(text))
        rounds = 1 if quick else ROUNDS
        planned, naive, results = [], [], []
        for _ in range(rounds):
            started = time.monotonic()
            with db.session(url) as sess:
                blueprint = site_blueprint.parse(text)
                results.append(site_plan.make(sess, blueprint, tenant_id))
            planned.append(time.monotonic() - started)
            started = time.monotonic()
            with db.session(url) as sess:
                blueprint = site_blueprint.parse(text)
                view = naive_view(sess, blueprint, tenant_id)
                naive_actions = site_plan.diff(blueprint, view)
                naive_print = site_plan.fingerprint(view)
            naive.append(time.monotonic() - started)
        actions, fingerprint = results[-1]
        same = actions == naive_actions and fingerprint == naive_print
        plan_time, naive_time = median(planned), median(naive)
        table(["{} environments, {} domains, {} checks".format(ENVS, DOMAINS, CHECKS), "median", "vs naive"], [
            ["plan (bulk reads, as POST /v1/plans)", fmt_seconds(plan_time), fmt_ratio(ratio(naive_time, plan_time))],
            ["naive baseline (one query per object)", fmt_seconds(naive_time), "1.00x"],
        ], out=out)
        out("  {} ({}); goal < 1 s: {}; the naive plan is the same plan: {}".format(
            site_plan.summary_line(actions), len(actions), "met" if plan_time < 1 else "MISSED", same))
        if not same:
            notes.append("(p) the naive baseline's plan differs from the plan's")
    finally:
        db.dispose()
        shutil.rmtree(root, ignore_errors=True)
