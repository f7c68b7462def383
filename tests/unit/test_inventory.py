"""The inventory database: migrations, constraints, secrets kept out of sight."""

import logging
import os
import shutil

import alembic.command
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import (
    Base,
    ComputeNode,
    DnsRecord,
    Environment,
    Job,
    JobStep,
    Pillar,
    PortMapping,
    Project,
    Secret,
    SshKey,
    Tenant,
)

TABLES = {"tenants", "regions", "compute_nodes", "environments", "projects", "ssh_keys",
          "dns_records", "port_mappings", "secrets", "jobs", "job_steps", "pillars"}


@pytest.fixture
def url(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    yield url
    db.dispose()


@pytest.fixture
def node(url):
    with db.session(url) as sess:
        sess.add(ComputeNode(name="node1", address="192.0.2.10", dns_name="node1.example.net",
                             slots=4, subnet="10.5.0.0/24"))
    with db.session(url) as sess:
        return sess.scalars(select(ComputeNode).where(ComputeNode.name == "node1")).one()


def add(url, *rows):
    with db.session(url) as sess:
        sess.add_all(rows)


def test_init_creates_every_table_at_the_newest_revision(tmp_path):
    path = tmp_path / "sub" / "dir" / "inventory.sqlite"
    url = "sqlite:///{}".format(path)
    assert db.init(url) == db.head_revision()
    assert path.is_file()  # its directory was made
    assert TABLES <= set(inspect(db.engine(url)).get_table_names())


def test_a_second_init_changes_nothing(url):
    add(url, Tenant(name="acme"))
    before = os.stat(db.engine(url).url.database).st_mtime_ns
    assert db.init(url) == db.head_revision()
    assert os.stat(db.engine(url).url.database).st_mtime_ns == before
    with db.session(url) as sess:
        assert [tenant.name for tenant in sess.scalars(select(Tenant))] == ["acme"]


def test_a_plain_path_is_an_sqlite_file(tmp_path):
    path = tmp_path / "plain.sqlite"
    db.init(str(path))
    assert path.is_file()


def test_migrations_build_exactly_the_models(url):
    with db.engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_a_newer_corpus_migrates_an_existing_database(url, tmp_path):
    add(url, Tenant(name="acme"))
    newer = tmp_path / "newer-migrations"
    shutil.copytree(db.MIGRATIONS_DIR, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / "9999_tenant_contact.py").write_text(
        '"""Tenants get a contact address."""\n'
        "from alembic import op\n"
        "import sqlalchemy as sa\n\n"
        "revision = '9999'\n"
        "down_revision = {!r}\n\n\n".format(db.head_revision()) +
        "def upgrade():\n"
        "    with op.batch_alter_table('tenants') as batch:\n"
        "        batch.add_column(sa.Column('contact', sa.String(255), nullable=True))\n\n\n"
        "def downgrade():\n"
        "    with op.batch_alter_table('tenants') as batch:\n"
        "        batch.drop_column('contact')\n")
    assert db.init(url, script_location=str(newer)) == "9999"
    columns = {column["name"] for column in inspect(db.engine(url)).get_columns("tenants")}
    assert "contact" in columns
    with db.engine(url).connect() as connection:
        assert connection.execute(text("SELECT name FROM tenants")).scalars().all() == ["acme"]


def upgrade_to(url, revision):
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def downgrade_to(url, revision):
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.downgrade(config, revision)


# Rows an inventory made by the first corpus may hold, each referring to a node
# or an environment: rebuilding those tables must keep every one of them.
FIRST_REVISION_ROWS = [
    "INSERT INTO compute_nodes (id, name, address, ssh_port, slots, guest_type, status)"
    " VALUES (1, 'node1', '192.0.2.10', 22, 4, 'lxc', 'active')",
    "INSERT INTO environments (id, uuid, name, node_id, env_type, domains, status)"
    " VALUES (1, '00000000-0000-0000-0000-000000000001', 'web', 1, 'staging', '[]', 'active')",
    "INSERT INTO projects (id, name, environment_id) VALUES (1, 'app', 1)",
    "INSERT INTO ssh_keys (id, name, public_key, environment_id, node_id)"
    " VALUES (1, 'root', 'ssh-ed25519 AAAA', 1, 1)",
    "INSERT INTO dns_records (id, zone, name, type, content, ttl, environment_id)"
    " VALUES (1, 'example.net', 'web.example.net', 'A', '10.5.0.2', 300, 1)",
    "INSERT INTO port_mappings (id, node_id, external_port, environment_id, internal_port, protocol)"
    " VALUES (1, 1, 40000, 1, 22, 'tcp')",
]


def test_the_controller_revision_keeps_existing_rows_and_fills_new_columns(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "old.sqlite")
    upgrade_to(url, "0001")
    with db.engine(url).begin() as connection:
        for statement in FIRST_REVISION_ROWS:
            connection.execute(text(statement))
    db.dispose()  # a new corpus starts in a new process
    assert db.init(url) == db.head_revision()
    with db.session(url) as sess:
        node = sess.get(ComputeNode, 1)
        assert (node.minion_id, node.ssh_user, node.http_port, node.nat_port_min, node.nat_port_max,
                node.bridge, node.lxc_path, node.prefix) == (
            "node1", "root", 80, 40000, 40999, "corpusbr0", "/var/lib/lxc", "/srv/corpus")
        env = sess.get(Environment, 1)
        assert env.created is not None and env.container is None and env.node.name == "node1"
        for model in (Project, SshKey, DnsRecord, PortMapping):
            assert len(sess.scalars(select(model)).all()) == 1, model
    # Foreign keys are enforced again on the connections opened after the migration.
    with pytest.raises(IntegrityError):
        add(url, Project(name="orphan", environment_id=999))


def test_the_controller_revision_downgrades_without_losing_rows(url, node):
    env = Environment(name="web", node_id=node.id, container="web", minion_id="web.corpus.test")
    add(url, env)
    add(url, Project(name="app", environment_id=env.id), Pillar(minion_id="web.corpus.test"))
    downgrade_to(url, "0001")
    assert "pillars" not in inspect(db.engine(url)).get_table_names()
    with db.engine(url).connect() as connection:
        assert connection.execute(text("SELECT name FROM projects")).scalars().all() == ["app"]
    assert db.init(url) == db.head_revision()


def test_a_node_minion_id_defaults_to_its_name_and_is_unique(url, node):
    assert node.minion_id == "node1" and node.prefix == "/srv/corpus" and node.http_port == 80
    add(url, ComputeNode(name="node2", address="192.0.2.11", minion_id="node2.example.net"))
    with db.session(url) as sess:
        assert sess.scalars(select(ComputeNode.minion_id).order_by(ComputeNode.name)).all() == [
            "node1", "node2.example.net"]
    with pytest.raises(IntegrityError):
        add(url, ComputeNode(name="node3", address="192.0.2.12", minion_id="node1"))


def test_a_container_name_is_unique_per_node_and_a_pillar_per_minion(url, node):
    add(url, Environment(name="a", node_id=node.id, container="c1", minion_id="a.corpus.test"))
    with pytest.raises(IntegrityError):
        add(url, Environment(name="b", node_id=node.id, container="c1"))
    with pytest.raises(IntegrityError):
        add(url, Environment(name="b", minion_id="a.corpus.test"))
    add(url, Pillar(minion_id="a.corpus.test", data={"corpus": {"env": "a"}}))
    with pytest.raises(IntegrityError):
        add(url, Pillar(minion_id="a.corpus.test"))
    with db.session(url) as sess:
        pillar = sess.scalars(select(Pillar)).one()
        assert pillar.data == {"corpus": {"env": "a"}} and pillar.updated is not None


def test_a_bad_url_is_one_sentence(tmp_path):
    with pytest.raises(CorpusError, match="Cannot open the inventory database"):
        db.engine("nosuchdriver://user:pw@host/db")
    with pytest.raises(CorpusError, match="No inventory database URL"):
        db.engine("")


def test_a_failed_session_leaves_nothing(url):
    with pytest.raises(RuntimeError):
        with db.session(url) as sess:
            sess.add(Tenant(name="half-made"))
            sess.flush()
            raise RuntimeError("boom")
    with db.session(url) as sess:
        assert sess.scalars(select(Tenant)).all() == []


@pytest.mark.parametrize("make_duplicate", [
    pytest.param(lambda node: [ComputeNode(name="node1", address="192.0.2.11")], id="node-name"),
    pytest.param(lambda node: [Environment(name="web", node_id=node.id, ip="10.5.0.3")], id="env-name"),
    pytest.param(lambda node: [Environment(name="other", node_id=node.id, ip="10.5.0.2")],
                 id="ip-per-node"),
    pytest.param(lambda node: [PortMapping(node_id=node.id, external_port=2222, environment_id=1,
                                           internal_port=22)], id="port-per-node"),
    pytest.param(lambda node: [Secret(owner="env:web", name="root", value="x")], id="secret"),
    pytest.param(lambda node: [DnsRecord(zone="example.net", name="web.example.net", type="A",
                                         content="192.0.2.10")], id="dns-record"),
    pytest.param(lambda node: [Project(name="app", environment_id=1)], id="project-per-env"),
])
def test_duplicates_a_user_would_not_expect_are_refused(url, node, make_duplicate):
    env = Environment(name="web", node_id=node.id, env_type="staging", ip="10.5.0.2",
                      ssh_nat_port=2222, domains=["web.example.net"])
    add(url, env)
    add(url, PortMapping(node_id=node.id, external_port=2222, environment_id=env.id, internal_port=22),
        Secret(owner="env:web", name="root", value="x"),
        DnsRecord(zone="example.net", name="web.example.net", type="A", content="192.0.2.10",
                  environment_id=env.id),
        Project(name="app", environment_id=env.id))
    with pytest.raises(IntegrityError):
        add(url, *make_duplicate(node))


def test_the_same_ip_or_port_on_another_node_is_fine(url, node):
    other = ComputeNode(name="node2", address="192.0.2.11")
    add(url, other)
    first = Environment(name="a", node_id=node.id, ip="10.5.0.2")
    second = Environment(name="b", node_id=other.id, ip="10.5.0.2")
    add(url, first, second)
    add(url, PortMapping(node_id=node.id, external_port=2222, environment_id=first.id, internal_port=22),
        PortMapping(node_id=other.id, external_port=2222, environment_id=second.id, internal_port=22),
        PortMapping(node_id=node.id, external_port=2222, environment_id=first.id, internal_port=22,
                    protocol="udp"))


def test_env_type_job_and_step_status_are_checked(url):
    with pytest.raises(IntegrityError):
        add(url, Environment(name="web", env_type="qa"))
    with pytest.raises(IntegrityError):
        add(url, Job(kind="init_env", target="web", status="sleeping"))


def test_foreign_keys_are_enforced(url):
    with pytest.raises(IntegrityError):
        add(url, Project(name="app", environment_id=999))


def test_an_environment_has_defaults_and_its_children_go_with_it(url, node):
    env = Environment(name="web", node_id=node.id)
    add(url, env)
    add(url, Project(name="app", environment_id=env.id),
        SshKey(name="root", public_key="ssh-ed25519 AAAA", environment_id=env.id),
        DnsRecord(zone="example.net", name="web.example.net", type="A", content="10.5.0.2",
                  environment_id=env.id),
        PortMapping(node_id=node.id, external_port=2222, environment_id=env.id, internal_port=22))
    with db.session(url) as sess:
        loaded = sess.get(Environment, env.id)
        assert len(loaded.uuid) == 36 and loaded.env_type == "dev" and loaded.domains == []
        assert loaded.node.name == "node1"
        sess.delete(loaded)
    with db.session(url) as sess:
        for model in (Project, SshKey, DnsRecord, PortMapping):
            assert sess.scalars(select(model)).all() == [], model


def test_job_steps_are_ordered_and_keep_json(url):
    add(url, Job(kind="init_env", target="web", clipboard={"ip": "10.5.0.2", "ports": [2222]},
                 steps=[JobStep(index=2, name="ip:allocate"), JobStep(index=1, name="node:pick")]))
    with db.session(url) as sess:
        job = sess.scalars(select(Job)).one()
        assert [step.name for step in job.steps] == ["node:pick", "ip:allocate"]
        assert job.clipboard == {"ip": "10.5.0.2", "ports": [2222]}
        assert job.status == "pending" and job.created is not None


def test_a_secret_value_never_shows(url, caplog):
    value = "s3cr3t-Value-42"
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    db.engine(url).echo = True  # every statement logged, as when debugging
    try:
        add(url, Secret(owner="env:web", name="root-password", value=value))
        with db.session(url) as sess:
            secret = sess.scalars(select(Secret)).one()
            assert secret.value == value  # stored
            assert value not in repr(secret) and value not in str(secret)
            assert "root-password" in repr(secret)
        with pytest.raises(IntegrityError) as failure:  # an error shows the statement, not the value
            add(url, Secret(owner="env:web", name="root-password", value=value))
        assert value not in str(failure.value)
    finally:
        db.engine(url).echo = False
    assert "INSERT INTO secrets" in caplog.text
    assert value not in caplog.text
