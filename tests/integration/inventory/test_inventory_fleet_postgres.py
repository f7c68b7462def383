"""The fleet inventory on a real PostgreSQL: migration 0005 builds exactly the models
and goes back down; resolution, search by a resolved value (the JSON extraction is
the database's), secrets, the cascade that removes an environment's host, and the
Ansible export -- the same answers as on SQLite."""

import alembic.command
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from support.postgresql import postgresql_server, postgresql_url  # noqa: F401  (fixtures)

from mc_project.errors import CorpusError
from mc_project.inventory import ansible_export, db, fleet, host_rows, resolve, search, secret_vars, secrets_crypto
from mc_project.inventory.fleet_models import Host, HostGroup
from mc_project.inventory.models import Base, ComputeNode, Environment, Region, Secret, Tenant

pytestmark = pytest.mark.needs("root", "postgresql")


@pytest.fixture
def url(postgresql_url):  # noqa: F811
    yield postgresql_url
    db.dispose()


def test_migration_0005_on_postgresql_keeps_regions_and_adopts_nodes(url):
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0004")
    with db.engine(url).begin() as connection:
        connection.execute(text("INSERT INTO regions (name) VALUES ('eu')"))
        connection.execute(text("INSERT INTO compute_nodes (name, address, ssh_port, slots, guest_type, status,"
                                " minion_id, ssh_user, http_port, nat_port_min, nat_port_max, bridge, lxc_path,"
                                " prefix) VALUES ('node1', '192.0.2.1', 22, 4, 'lxc', 'active', 'node1', 'root',"
                                " 80, 40000, 40999, 'corpusbr0', '/var/lib/lxc', '/srv/corpus')"))
    assert db.init(url) == db.head_revision()
    with db.engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with db.session(url) as sess:
        region = sess.scalars(select(Region)).one()
        assert sess.get(Tenant, region.tenant_id).name == "default"
        assert [(host.name, host.kind) for host in sess.scalars(select(Host))] == [("node1", "node")]
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.downgrade(config, "0004")
    assert "hosts" not in inspect(db.engine(url)).get_table_names()
    assert db.init(url) == db.head_revision()


def test_resolution_search_secrets_and_export_on_postgresql(url, tmp_path):
    db.init(url)
    keyring = secrets_crypto.load(str(tmp_path / "secrets.key"), create=True)
    with db.session(url) as sess:
        acme = Tenant(name="acme")
        sess.add(acme)
        sess.flush()
        node = ComputeNode(name="node1", address="192.0.2.1", tenant_id=acme.id)
        sess.add(node)
        sess.flush()
        sess.add(Environment(name="web", node_id=node.id, ssh_nat_port=40001, minion_id="web.corpus.test",
                             tenant_id=acme.id))
        fleet.create_region(sess, "ada", acme.id, "eu")
        fleet.create_cell(sess, "ada", fleet.region_by_name(sess, acme.id, "eu"), "r1")
        fleet.create_group(sess, "ada", acme.id, "db")
        fleet.create_group(sess, "ada", acme.id, "all-db", children=["db"])
        for name, disk in (("db1", "ssd"), ("db2", "hdd")):
            host = fleet.create_host(sess, "ada", acme.id, {"name": name, "region": "eu", "cell": "r1",
                                                            "groups": ["db"]})
            fleet.set_variables(sess, keyring, "ada", acme.id, "host", host["id"], name,
                                variables={"hardware": {"disk": disk}})
        groups = dict(sess.execute(select(HostGroup.name, HostGroup.id)).all())
        fleet.set_variables(sess, keyring, "ada", acme.id, "group", groups["all-db"], "all-db",
                            variables={"port": 5432, "tier": "all"})
        fleet.set_variables(sess, keyring, "ada", acme.id, "group", groups["db"], "db",
                            variables={"tier": "db"}, secrets={"password": "pg-secret"})
        fleet.set_variables(sess, keyring, "ada", acme.id, "tenant", acme.id, "acme",
                            variables={"hardware": {"disk": "none"}})
        tenant_id = acme.id
    with db.session(url) as sess:
        db1 = fleet.host_by_name(sess, tenant_id, "db1")
        values, provenance = resolve.host_variables(sess, db1)
        assert secret_vars.reveal(sess, keyring, values) == {"hardware": {"disk": "ssd"}, "port": 5432,
                                                             "tier": "db", "password": "pg-secret"}
        assert provenance["port"] == {"level": "group", "name": "all-db"}
        assert provenance["tier"] == {"level": "group", "name": "db"}
        names = [row["name"] for row in search.find(sess, [tenant_id], 50, 0, var_filters=["hardware.disk:ssd"])[0]]
        assert names == ["db1"]
        names = [row["name"] for row in search.find(sess, [tenant_id], 50, 0, var_filters=["hardware.disk:none"])[0]]
        assert names == ["node1", "web"]
        assert search.find(sess, [tenant_id], 50, 0, var_filters=["password:pg-secret"]) == ([], 0)
        stored = sess.scalars(select(Secret.value).where(Secret.name == "password")).one()
        assert stored.startswith("fernet:") and "pg-secret" not in stored
        inventory = ansible_export.ansible_inventory(sess, [tenant_id])
        assert inventory["cell_eu_r1"] == {"hosts": ["db1", "db2"]}
        assert inventory["all_db"] == {"children": ["db"]}  # Ansible's group names: '-' is '_'
        assert "password" not in inventory["_meta"]["hostvars"]["db1"]
        assert inventory["_meta"]["hostvars"]["web"]["ansible_port"] == 40001
        with pytest.raises(CorpusError, match="cycle"):
            fleet.update_group(sess, "ada", fleet.group_by_name(sess, tenant_id, "db"), children=["all-db"])
    # The environment's host goes with it (the foreign key's cascade), on PostgreSQL too.
    with db.session(url) as sess:
        sess.delete(sess.scalars(select(Environment)).one())
    with db.session(url) as sess:
        assert sorted(row["name"] for row in host_rows.rows(sess, host_rows.in_tenant(tenant_id))) == [
            "db1", "db2", "node1"]
    # rotate-key re-encrypts the inventory's secrets with the others.
    assert secrets_crypto.rotate(url, str(tmp_path / "secrets.key")) == 1
    with db.session(url) as sess:
        fresh = secrets_crypto.load(str(tmp_path / "secrets.key"))
        values, _ = resolve.host_variables(sess, fleet.host_by_name(sess, tenant_id, "db2"))
        assert secret_vars.reveal(sess, fresh, values)["password"] == "pg-secret"
