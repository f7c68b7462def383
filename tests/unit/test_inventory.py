"""The inventory database: migrations, constraints, secrets kept out of sight."""

import logging
import os
import shutil

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
    PortMapping,
    Project,
    Secret,
    SshKey,
    Tenant,
)

TABLES = {"tenants", "regions", "compute_nodes", "environments", "projects", "ssh_keys",
          "dns_records", "port_mappings", "secrets", "jobs", "job_steps"}


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
    (newer / "versions" / "0002_tenant_contact.py").write_text(
        '"""Tenants get a contact address."""\n'
        "from alembic import op\n"
        "import sqlalchemy as sa\n\n"
        "revision = '0002'\n"
        "down_revision = '0001'\n\n\n"
        "def upgrade():\n"
        "    with op.batch_alter_table('tenants') as batch:\n"
        "        batch.add_column(sa.Column('contact', sa.String(255), nullable=True))\n\n\n"
        "def downgrade():\n"
        "    with op.batch_alter_table('tenants') as batch:\n"
        "        batch.drop_column('contact')\n")
    assert db.init(url, script_location=str(newer)) == "0002"
    columns = {column["name"] for column in inspect(db.engine(url)).get_columns("tenants")}
    assert "contact" in columns
    with db.engine(url).connect() as connection:
        assert connection.execute(text("SELECT name FROM tenants")).scalars().all() == ["acme"]


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
