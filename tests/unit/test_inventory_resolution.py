"""The fleet inventory's variables resolved down to a host: nearest level wins, whole
values (no deep merge, lists replaced), groups ordered as Ansible orders them, and
each key's source named."""

import pytest
from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.inventory import db, fleet, host_rows, resolve, search, secrets_crypto
from mc_project.inventory.fleet_models import Host, HostGroup
from mc_project.inventory.models import ComputeNode, Environment, Region, Tenant


@pytest.fixture
def url(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    with db.session(url) as sess:
        sess.add_all([Tenant(name="acme"), Tenant(name="other")])
    yield url
    db.dispose()


@pytest.fixture
def keyring(tmp_path):
    return secrets_crypto.load(str(tmp_path / "secrets.key"), create=True)


def tenant(sess, name="acme"):
    return sess.scalar(select(Tenant.id).where(Tenant.name == name))


def build(sess, keyring):
    """acme: region eu (cell r1), groups all > web > frontend, host web1 in frontend."""
    acme = tenant(sess)
    fleet.create_region(sess, "ada", acme, "eu")
    region = fleet.region_by_name(sess, acme, "eu")
    fleet.create_cell(sess, "ada", region, "r1")
    fleet.create_group(sess, "ada", acme, "frontend")
    fleet.create_group(sess, "ada", acme, "web", children=["frontend"])
    fleet.create_group(sess, "ada", acme, "all-hosts", children=["web"])
    fleet.create_group(sess, "ada", acme, "zz-other")
    host = fleet.create_host(sess, "ada", acme, {"name": "web1", "address": "192.0.2.5", "ssh_port": 2222,
                                                 "region": "eu", "cell": "r1", "labels": ["ssd", "prod"],
                                                 "groups": ["frontend", "zz-other"]})
    cell = fleet.cell_by_name(sess, region, "r1")

    def put(level, object_id, name, **values):
        fleet.set_variables(sess, keyring, "ada", acme, level, object_id, name, variables=values)

    put("tenant", acme, "acme", ntp="pool.ntp.org", dns=["1.1.1.1"], hardware={"disk": "hdd", "cpus": 2},
        owner="tenant")
    put("region", region.id, "eu", dns=["10.0.0.1", "10.0.0.2"], owner="region")
    put("cell", cell.id, "r1", owner="cell", rack=7)
    groups = dict(sess.execute(select(HostGroup.name, HostGroup.id)).all())
    put("group", groups["all-hosts"], "all-hosts", owner="all-hosts", tier="any")
    put("group", groups["web"], "web", owner="web", tier="web")
    put("group", groups["frontend"], "frontend", owner="frontend")
    put("group", groups["zz-other"], "zz-other", owner="zz-other")
    put("host", host["id"], "web1", hardware={"disk": "ssd"})
    return host


def test_the_nearest_level_wins_whole_values_and_each_key_names_its_source(url, keyring):
    with db.session(url) as sess:
        host = build(sess, keyring)
        values, provenance = resolve.host_variables(sess, host_rows.one(sess, host["id"]))
    # No deep merge: the host's hardware replaces the tenant's whole mapping (cpus is gone).
    assert values["hardware"] == {"disk": "ssd"}
    assert provenance["hardware"] == {"level": "host", "name": "web1"}
    # Lists are replaced, not concatenated.
    assert values["dns"] == ["10.0.0.1", "10.0.0.2"] and provenance["dns"] == {"level": "region", "name": "eu"}
    assert values["ntp"] == "pool.ntp.org" and provenance["ntp"] == {"level": "tenant", "name": "acme"}
    assert values["rack"] == 7 and provenance["rack"]["level"] == "cell"
    # Groups: a child group beats the group it is in; frontend and zz-other are both
    # depth-2/depth-0 direct groups: the deeper one wins over the shallower.
    assert values["tier"] == "web" and provenance["tier"] == {"level": "group", "name": "web"}
    assert values["owner"] == "frontend" and provenance["owner"] == {"level": "group", "name": "frontend"}


def test_groups_at_the_same_depth_the_later_name_wins(url, keyring):
    with db.session(url) as sess:
        acme = tenant(sess)
        for name in ("alpha", "beta"):
            fleet.create_group(sess, "ada", acme, name)
        host = fleet.create_host(sess, "ada", acme, {"name": "db1", "groups": ["beta", "alpha"]})
        groups = dict(sess.execute(select(HostGroup.name, HostGroup.id)).all())
        for name in ("alpha", "beta"):
            fleet.set_variables(sess, keyring, "ada", acme, "group", groups[name], name,
                                variables={"role": name, name: True})
        values, provenance = resolve.host_variables(sess, host_rows.one(sess, host["id"]))
    assert values == {"role": "beta", "alpha": True, "beta": True}
    assert provenance["role"] == {"level": "group", "name": "beta"}


def test_a_secret_takes_part_masked_and_is_revealed_only_on_demand(url, keyring):
    from mc_project.inventory import secret_vars

    with db.session(url) as sess:
        host = build(sess, keyring)
        acme = tenant(sess)
        fleet.set_variables(sess, keyring, "ada", acme, "tenant", acme, "acme", secrets={"db_password": "hunter2"})
        values, provenance = resolve.host_variables(sess, host_rows.one(sess, host["id"]))
        assert isinstance(values["db_password"], resolve.SecretRef)
        assert secret_vars.masked(values)["db_password"] == resolve.MASK
        assert secret_vars.reveal(sess, keyring, values)["db_password"] == "hunter2"
        assert provenance["db_password"] == {"level": "tenant", "name": "acme"}
        # A plain value nearer the host hides the secret.
        fleet.set_variables(sess, keyring, "ada", acme, "host", host["id"], "web1",
                            variables={"db_password": "not-secret"})
        values, _ = resolve.host_variables(sess, host_rows.one(sess, host["id"]))
        assert values["db_password"] == "not-secret"


def test_every_node_and_environment_is_a_host_and_goes_with_it(url):
    with db.session(url) as sess:
        acme = tenant(sess)
        node = ComputeNode(name="node1", address="192.0.2.1", tenant_id=acme, minion_id="node1.example")
        sess.add(node)
        sess.flush()
        sess.add(Environment(name="web", node_id=node.id, ssh_nat_port=40001, minion_id="web.corpus.test",
                             tenant_id=acme))
    with db.session(url) as sess:
        found = {row["name"]: row for row in host_rows.rows(sess, host_rows.in_tenant(tenant(sess)))}
        assert found["node1"]["kind"] == "node" and found["node1"]["minion_id"] == "node1.example"
        assert (found["web"]["kind"], found["web"]["address"], found["web"]["ssh_port"], found["web"]["ssh_user"]) \
            == ("environment", "192.0.2.1", 40001, "root")
        sess.delete(sess.scalar(select(Environment).where(Environment.name == "web")))
    with db.session(url) as sess:
        assert sess.scalars(select(Host.name)).all() == ["node1"]


def test_search_by_a_resolved_variable_label_group_and_region(url, keyring):
    with db.session(url) as sess:
        build(sess, keyring)
        acme = tenant(sess)
        fleet.create_host(sess, "ada", acme, {"name": "web2", "region": "eu", "groups": ["web"]})
        names = lambda rows: [row["name"] for row in rows[0]]  # noqa: E731
        assert names(search.find(sess, [acme], 50, 0, var_filters=["hardware.disk:ssd"])) == ["web1"]
        assert names(search.find(sess, [acme], 50, 0, var_filters=["hardware.disk:hdd"])) == ["web2"]
        assert names(search.find(sess, [acme], 50, 0, var_filters=["hardware.cpus:2"])) == ["web2"]
        assert names(search.find(sess, [acme], 50, 0, var_filters=["tier:web"])) == ["web1", "web2"]
        assert names(search.find(sess, [acme], 50, 0, label="ssd")) == ["web1"]
        assert names(search.find(sess, [acme], 50, 0, group="all-hosts")) == ["web1", "web2"]
        assert names(search.find(sess, [acme], 50, 0, region="eu", var_filters=["rack:7"])) == ["web1"]
        assert search.find(sess, [tenant(sess, "other")], 50, 0, var_filters=["tier:web"]) == ([], 0)
        with pytest.raises(CorpusError, match="KEY"):
            search.find(sess, [acme], 50, 0, var_filters=["nocolon"])


def test_cycles_in_groups_and_parents_are_refused_and_change_nothing(url, keyring):
    with db.session(url) as sess:
        build(sess, keyring)
        acme = tenant(sess)
        frontend = fleet.group_by_name(sess, acme, "frontend")
        with pytest.raises(CorpusError, match=r"cycle \(frontend > all-hosts > web > frontend\)"):
            fleet.update_group(sess, "ada", frontend, children=["all-hosts"])
    with db.session(url) as sess:
        acme = tenant(sess)
        assert fleet.group_record(sess, fleet.group_by_name(sess, acme, "frontend"))["children"] == []
        fleet.create_host(sess, "ada", acme, {"name": "rack1"})
        fleet.create_host(sess, "ada", acme, {"name": "blade1", "parent": "rack1"})
        rack = fleet.host_by_name(sess, acme, "rack1")
        with pytest.raises(CorpusError, match="cycle"):
            fleet.update_host(sess, "ada", rack["id"], acme, {"parent": "blade1"})


def test_unknown_levels_and_bad_names_are_one_sentence(url, keyring):
    with db.session(url) as sess:
        acme = tenant(sess)
        with pytest.raises(CorpusError, match="Unknown level 'rack'"):
            fleet.set_variables(sess, keyring, "ada", acme, "rack", 1, "x", variables={"a": 1})
        with pytest.raises(CorpusError, match="Variable name '1bad'"):
            fleet.set_variables(sess, keyring, "ada", acme, "tenant", acme, "acme", variables={"1bad": 1})
        with pytest.raises(CorpusError, match="Region name"):
            fleet.create_region(sess, "ada", acme, "eu west")
        assert sess.scalars(select(Region)).all() == []


def test_search_decides_a_host_by_its_own_value_of_any_type_and_never_by_a_secret(url, keyring):
    with db.session(url) as sess:
        acme = tenant(sess)
        fleet.set_variables(sess, keyring, "ada", acme, "tenant", acme, "acme",
                            variables={"cpus": 2, "ha": False, "disk": "hdd", "tags": ["a"]})
        made = {}
        for name, own, secret in (("h1", {"cpus": 8, "ha": True}, {}), ("h2", {"disk": None}, {}),
                                  ("h3", {"tags": ["a", "b"]}, {"disk": "ssd"}), ("h4", {}, {})):
            made[name] = fleet.create_host(sess, "ada", acme, {"name": name})
            fleet.set_variables(sess, keyring, "ada", acme, "host", made[name]["id"], name, variables=own,
                                secrets=secret)

        def names(*filters):
            return [row["name"] for row in search.find(sess, [acme], 50, 0, var_filters=filters)[0]]

        assert names("cpus:8") == ["h1"] and names("cpus:2") == ["h2", "h3", "h4"]
        assert names("ha:true") == ["h1"] and names("ha:false") == ["h2", "h3", "h4"]
        # An explicit null at the host hides the tenant's value; a secret never matches.
        assert names("disk:hdd") == ["h1", "h4"] and names("disk:null") == ["h2"] and names("disk:ssd") == []
        assert names("tags.1:b") == ["h3"] and names('tags:["a"]') == ["h1", "h2", "h4"]
        assert names("disk:hdd", "cpus:2") == ["h4"]
        page, total = search.find(sess, [acme], 1, 1, var_filters=["cpus:2"])
        assert [row["name"] for row in page] == ["h3"] and total == 3
