"""(k) the fleet inventory: 10,000 hosts in 20 regions x 5 cells, 50 groups (10 holding
4 each), variables on 4 levels (region, cell, group, host; 20 keys each), on SQLite
and on PostgreSQL. Measured in this process, each call in a session of its own as
the API opens one:

* the Ansible export of every host, encoded as the API sends it (goal < 1 s);
* one host's resolved variables with their sources (goal p99 < 20 ms);
* a search by a resolved variable, ``hardware.disk:ssd`` (goal p99 < 100 ms);
* the ext_pillar's inventory part for one host, a secret decrypted (goal p99 < 20 ms);

each next to a naive baseline measured in the same run: one query per level per host
(the host, then each of its region, cell, groups and own variables), the export and
the search resolving host after host that way (timed on 500 hosts, scaled to all).

PostgreSQL is a throwaway cluster (tests/support/postgresql.py; needs root and
Debian's postgresql); without it that half is skipped with a note.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

from harness import BenchError, fmt_ratio, fmt_seconds, ratio, table
from sqlalchemy import insert, select

from mc_project.inventory import (  # noqa: E402  (harness put the repo on sys.path)
    ansible_export,
    db,
    fleet,
    host_pillar,
    host_rows,
    resolve,
    search,
    secrets_crypto,
)
from mc_project.inventory.fleet_models import (  # noqa: E402
    Cell,
    GroupChild,
    GroupMember,
    Host,
    HostGroup,
    HostLabel,
    VariableSet,
)
from mc_project.inventory.models import Region, Tenant, utcnow  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

HOSTS = 10_000
REGIONS = 20
CELLS_PER_REGION = 5
TOP_GROUPS = 10
CHILDREN_PER_GROUP = 4
KEYS = 20
ROUNDS = 200
NAIVE_SAMPLE = 500


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def level_vars(level, number):
    """20 keys; ``hardware`` on every level so the nearest one decides."""
    found = {"{}_key{:02d}".format(level, key): "{}-{}-{}".format(level, number, key) for key in range(KEYS - 2)}
    found["hardware"] = {"disk": "ssd" if level == "host" and number % 10 == 0 else "hdd", "level": level}
    found["shared"] = [level, number]
    return found


def fill(url, hosts, keyring):
    """The inventory of the module docstring; returns the tenant id and one host id."""
    with db.session(url) as sess:
        tenant = Tenant(name="bench")
        sess.add(tenant)
        sess.flush()
        regions = [Region(tenant_id=tenant.id, name="region{:02d}".format(n)) for n in range(REGIONS)]
        sess.add_all(regions)
        sess.flush()
        cells = [Cell(region_id=region.id, name="cell{}".format(n)) for region in regions
                 for n in range(CELLS_PER_REGION)]
        sess.add_all(cells)
        groups = [HostGroup(tenant_id=tenant.id, name="group{:02d}".format(n))
                  for n in range(TOP_GROUPS * (1 + CHILDREN_PER_GROUP))]
        sess.add_all(groups)
        sess.flush()
        for top in range(TOP_GROUPS):
            for child in range(CHILDREN_PER_GROUP):
                sess.add(GroupChild(parent_id=groups[top].id,
                                    child_id=groups[TOP_GROUPS + top * CHILDREN_PER_GROUP + child].id))
        tenant_id = tenant.id
        cell_rows = [(cell.id, cell.region_id) for cell in cells]
        group_ids = [group.id for group in groups]
        region_ids = [region.id for region in regions]
    engine = db.engine(url)
    with engine.begin() as connection:
        connection.execute(insert(Host.__table__), [
            {"name": "host{:05d}".format(n), "kind": "machine", "tenant_id": tenant_id,
             "address": "10.{}.{}.{}".format(n // 65536, n // 256 % 256, n % 256), "ssh_port": 22,
             "region_id": cell_rows[n % len(cell_rows)][1], "cell_id": cell_rows[n % len(cell_rows)][0],
             "created": utcnow()} for n in range(hosts)])
        host_ids = [row.id for row in connection.execute(select(Host.id).where(Host.tenant_id == tenant_id)
                                                         .order_by(Host.name))]
        children = group_ids[TOP_GROUPS:]
        connection.execute(insert(GroupMember.__table__), [
            {"group_id": children[n % len(children)], "host_id": host_id} for n, host_id in enumerate(host_ids)]
            + [{"group_id": children[(n + 7) % len(children)], "host_id": host_id}
               for n, host_id in enumerate(host_ids) if children[(n + 7) % len(children)] != children[
                   n % len(children)]])
        connection.execute(insert(HostLabel.__table__), [
            {"host_id": host_id, "label": "rack{}".format(n % 40)} for n, host_id in enumerate(host_ids)])
        varsets = [{"tenant_id": tenant_id, "level": "region", "object_id": rid, "data": level_vars("region", n),
                    "secret_keys": []} for n, rid in enumerate(region_ids)]
        varsets += [{"tenant_id": tenant_id, "level": "cell", "object_id": cid, "data": level_vars("cell", n),
                     "secret_keys": []} for n, (cid, _rid) in enumerate(cell_rows)]
        varsets += [{"tenant_id": tenant_id, "level": "group", "object_id": gid, "data": level_vars("group", n),
                     "secret_keys": []} for n, gid in enumerate(group_ids)]
        varsets += [{"tenant_id": tenant_id, "level": "host", "object_id": hid, "data": level_vars("host", n),
                     "secret_keys": []} for n, hid in enumerate(host_ids)]
        connection.execute(insert(VariableSet.__table__), varsets)
    # One secret on the first host's first group, as the pillar decrypts it.
    with db.session(url) as sess:
        first_group = sess.scalar(select(GroupMember.group_id).where(GroupMember.host_id == host_ids[0]).limit(1))
        fleet.set_variables(sess, keyring, "bench", tenant_id, "group", first_group, "g", secrets={"db_password": "x"})
        sess.execute(Host.__table__.update().where(Host.id == host_ids[0]).values(minion_id="host00000.minion"))
    return tenant_id, host_ids


# --------------------------------------------------------------------------- naive: one query per level per host

def naive_host_variables(sess, host_id):
    """What an ORM walk does: the host, then each level's variables, one query each."""
    host = host_rows.one(sess, host_id)
    layers = [("tenant", host["tenant_id"])]
    if host["region_id"]:
        layers.append(("region", host["region_id"]))
    if host["cell_id"]:
        layers.append(("cell", host["cell_id"]))
    direct = sess.scalars(select(GroupMember.group_id).where(GroupMember.host_id == host_id)).all()
    groups, todo = [], list(direct)
    while todo:
        group_id = todo.pop()
        if group_id in groups:
            continue
        groups.append(group_id)
        todo.extend(sess.scalars(select(GroupChild.parent_id).where(GroupChild.child_id == group_id)))
    names = {gid: sess.scalar(select(HostGroup.name).where(HostGroup.id == gid)) for gid in groups}
    layers += [("group", gid) for gid in sorted(groups, key=names.get)]
    layers.append(("host", host_id))
    values = {}
    for level, object_id in layers:
        data = sess.scalar(select(VariableSet.data).where(VariableSet.level == level,
                                                          VariableSet.object_id == object_id))
        values.update(data or {})
    return values


def timed(function, rounds):
    function(rounds)  # warm up: connections, statement caches
    times = []
    for number in range(rounds):
        started = time.perf_counter()
        function(number)
        times.append(time.perf_counter() - started)
    return times


def measure(url, tenant_id, host_ids, keyring, quick):
    rounds = 20 if quick else ROUNDS
    sample = host_ids[:: max(1, len(host_ids) // (50 if quick else NAIVE_SAMPLE))]
    results = {}

    def export(_n):
        with db.session(url) as sess:
            found = ansible_export.ansible_inventory(sess, [tenant_id])
        ansible_export.to_json(found)  # what the API sends
        if len(found["_meta"]["hostvars"]) != len(host_ids):
            raise BenchError("the export holds {} hosts, not {}".format(len(found["_meta"]["hostvars"]),
                                                                        len(host_ids)))

    def naive_export(_n):
        with db.session(url) as sess:
            for host_id in sample:
                naive_host_variables(sess, host_id)

    results["export"] = (timed(export, 3 if quick else 5),
                         [value * len(host_ids) / len(sample) for value in timed(naive_export, 1)])

    def one_host(n):
        with db.session(url) as sess:
            resolve.host_variables(sess, host_rows.one(sess, host_ids[(n * 7919) % len(host_ids)]))

    def naive_one_host(n):
        with db.session(url) as sess:
            naive_host_variables(sess, host_ids[(n * 7919) % len(host_ids)])

    results["host"] = (timed(one_host, rounds), timed(naive_one_host, rounds))

    def find(_n):
        with db.session(url) as sess:
            found, total = search.find(sess, [tenant_id], 50, 0, var_filters=["hardware.disk:ssd"])
        if total != len(host_ids) // 10:
            raise BenchError("the search found {} hosts, not {}".format(total, len(host_ids) // 10))

    def naive_find(_n):
        with db.session(url) as sess:
            [host_id for host_id in sample if naive_host_variables(sess, host_id)["hardware"]["disk"] == "ssd"]

    results["search"] = (timed(find, rounds // 4), [value * len(host_ids) / len(sample)
                                                    for value in timed(naive_find, 1)])

    def pillar(_n):
        with db.session(url) as sess:
            found = host_pillar.host_pillar(sess, "host00000.minion", lambda: keyring)
        if found["inventory"].get("db_password") != "x":
            raise BenchError("the pillar lacks the host's secret")

    def naive_pillar(_n):
        with db.session(url) as sess:
            host_id = sess.scalar(select(Host.id).where(Host.minion_id == "host00000.minion"))
            naive_host_variables(sess, host_id)

    results["pillar"] = (timed(pillar, rounds), timed(naive_pillar, rounds))
    return results


def report(label, results, hosts, out):
    rows = []
    goals = {"export": ("Ansible export, all {} hosts".format(hosts), 1.0, "max"),
             "host": ("one host's resolved variables", 0.020, "p99"),
             "search": ("search hardware.disk:ssd", 0.100, "p99"),
             "pillar": ("ext_pillar of one host (+ secret)", 0.020, "p99")}
    for key, (what, goal, stat) in goals.items():
        mine, naive = results[key]
        worst = max(mine) if stat == "max" else percentile(mine, 0.99)
        naive_worst = max(naive) if stat == "max" else percentile(naive, 0.99)
        rows.append([what, len(mine), fmt_seconds(statistics.median(mine)), "{} {}".format(stat, fmt_seconds(worst)),
                     "< {}: {}".format(fmt_seconds(goal), "met" if worst < goal else "NOT met"),
                     fmt_seconds(statistics.median(naive)), fmt_seconds(naive_worst),
                     fmt_ratio(ratio(statistics.median(naive), statistics.median(mine)))])
    out("{}:".format(label))
    table(["measure", "n", "p50", "worst", "goal", "naive p50", "naive worst", "naive / corpus"], rows, out=out)


def bench_inventory(section, out, notes, quick=False):
    section("k")
    hosts = 1000 if quick else HOSTS
    root = tempfile.mkdtemp(prefix="corpus-bench-inventory-", dir="/var/tmp")
    keyring = secrets_crypto.load(os.path.join(root, "secrets.key"), create=True)
    backends = [("SQLite", lambda: "sqlite:///" + os.path.join(root, "inventory.sqlite"))]
    cluster = None
    try:
        from support import needs
        from support.postgresql import PostgreSQL

        if needs.missing("root", "postgresql"):
            notes.append("(k) PostgreSQL skipped: needs {}".format(", ".join(needs.missing("root", "postgresql"))))
        else:
            cluster = PostgreSQL(os.path.join(root, "postgresql"))
            cluster.start()
            backends.append(("PostgreSQL", lambda: cluster.create_database("bench_inventory")))
        for label, make_url in backends:
            url = make_url()
            db.init(url)
            started = time.monotonic()
            tenant_id, host_ids = fill(url, hosts, keyring)
            notes.append("(k) {}: {} hosts and their variables written in {}".format(
                label, hosts, fmt_seconds(time.monotonic() - started)))
            report("{}, {} hosts, {} regions x {} cells, {} groups, 4 levels x {} keys".format(
                label, hosts, REGIONS, CELLS_PER_REGION, TOP_GROUPS * (1 + CHILDREN_PER_GROUP), KEYS),
                measure(url, tenant_id, host_ids, keyring, quick), hosts, out)
            out("naive: one query per level per host; export and search timed on a sample and scaled to all hosts")
            out()
            db.dispose()
    finally:
        db.dispose()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    notes = []
    bench_inventory(lambda key: print("(k) the fleet inventory"), print, notes, quick="--quick" in sys.argv)
    for note in notes:
        print("note:", note)
