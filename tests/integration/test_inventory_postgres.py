"""The inventory and its jobs on a real PostgreSQL (the rest of the suite uses SQLite)."""

import alembic.command
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from support.postgresql import postgresql_server, postgresql_url  # noqa: F401  (fixtures)

from mc_project import jobs
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import Base, ComputeNode, Environment, Pillar, Project, Secret


@pytest.fixture
def url(postgresql_url):  # noqa: F811
    yield postgresql_url
    db.dispose()


def test_init_builds_exactly_the_models_and_a_second_init_changes_nothing(url):
    assert db.current_revision(url) is None
    assert db.init(url) == db.head_revision()
    with db.engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert db.init(url) == db.head_revision()
    assert "pillars" in inspect(db.engine(url)).get_table_names()


def test_migrating_from_the_first_revision_keeps_rows_and_fills_new_columns(url):
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0001")
    assert db.current_revision(url) == "0001"
    with db.engine(url).begin() as connection:
        connection.execute(text(
            "INSERT INTO compute_nodes (name, address, ssh_port, slots, guest_type, status)"
            " VALUES ('node1', '192.0.2.10', 22, 4, 'lxc', 'active')"))
        connection.execute(text(
            "INSERT INTO environments (uuid, name, node_id, env_type, domains, status) SELECT"
            " '00000000-0000-0000-0000-000000000001', 'web', id, 'dev', '[]', 'active'"
            " FROM compute_nodes"))
        connection.execute(text(
            "INSERT INTO projects (name, environment_id) SELECT 'app', id FROM environments"))
    assert db.init(url) == db.head_revision()
    with db.session(url) as sess:
        node = sess.scalars(select(ComputeNode)).one()
        assert (node.minion_id, node.bridge, node.nat_port_min, node.prefix) == (
            "node1", "corpusbr0", 40000, "/srv/corpus")
        env = sess.scalars(select(Environment)).one()
        assert env.created is not None and [project.name for project in env.projects] == ["app"]
    with db.engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with db.engine(url).begin() as connection:  # and back, keeping the rows
        config.attributes["connection"] = connection
        alembic.command.downgrade(config, "0001")
    assert "pillars" not in inspect(db.engine(url)).get_table_names()
    with db.engine(url).connect() as connection:
        assert connection.execute(text("SELECT name FROM projects")).scalars().all() == ["app"]
    assert db.init(url) == db.head_revision()


def test_constraints_hold_on_postgresql(url):
    db.init(url)
    with db.session(url) as sess:
        sess.add_all([ComputeNode(name="node1", address="192.0.2.10"),
                      Pillar(minion_id="web.corpus.test", data={"corpus": {"ip": "10.5.0.2"}})])
    for duplicate in (ComputeNode(name="node2", address="192.0.2.11", minion_id="node1"),
                      Pillar(minion_id="web.corpus.test"),
                      Environment(name="bad", env_type="qa"),
                      Project(name="orphan", environment_id=999)):
        with pytest.raises(IntegrityError):
            with db.session(url) as sess:
                sess.add(duplicate)
    with db.session(url) as sess:
        assert sess.scalars(select(Pillar.data)).one() == {"corpus": {"ip": "10.5.0.2"}}


def test_a_secret_stays_out_of_a_failed_statement(url):
    db.init(url)
    value = "pg-s3cr3t-value"
    with db.session(url) as sess:
        sess.add(Secret(owner="env:web", name="root-password", value=value))
    with pytest.raises(IntegrityError) as failure:
        with db.session(url) as sess:
            sess.add(Secret(owner="env:web", name="root-password", value=value))
    assert "uq_secrets_owner_name" in str(failure.value)
    assert value not in str(failure.value)


def test_a_job_runs_fails_undoes_and_reports_on_postgresql(url):
    db.init(url)
    events = []
    made = []

    def make(name):
        def do(ctx):
            if name == "pdns:add_records" and ctx.clipboard.get("fail"):
                raise CorpusError("the DNS server refused the zone")
            made.append(name)
            ctx.clipboard.setdefault("done", []).append(name)
            ctx.undo_data["made"] = name
            ctx.log("made " + name)

        def undo(ctx):
            made.remove(ctx.undo_data["made"])

        return do, undo

    registry = {}
    steps = ["node:pick", "ip:allocate", "pdns:add_records"]
    for name in steps:
        jobs.register(name, *make(name), registry=registry)
    manager = jobs.Jobs(url, registry, fire=lambda tag, data: events.append(tag))

    done = manager.submit("init_env", "web", steps)
    assert done["status"] == "success", done["message"]
    assert done["clipboard"]["done"] == steps
    assert [step["log"].strip() for step in done["steps"]] == ["made " + name for name in steps]
    assert "corpus/job/{}/success".format(done["id"]) in events

    failed = manager.submit("init_env", "web2", steps, clipboard={"fail": True})
    assert failed["status"] == "failed"
    assert failed["current_step"] == {"index": 3, "name": "pdns:add_records", "status": "failed"}
    assert "the DNS server refused the zone" in failed["message"]
    assert sorted(made) == sorted(steps)  # the failed job's two steps were undone; the first job's stay

    assert [state["id"] for state in manager.status_for_target("web")] == [done["id"]]
    assert manager.undo(done["id"])["status"] == "undone"
    assert made == []
    with pytest.raises(CorpusError, match="No job 999 in the inventory."):
        manager.status(999)


def test_secrets_are_encrypted_migrated_and_rotated_on_postgresql(url, tmp_path):
    key = str(tmp_path / "corpus" / "secrets.key")
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0002")
        connection.execute(text("INSERT INTO secrets (owner, name, value) VALUES ('env:web', 'old', 'Pl41nOld')"))
    assert db.init(url, secrets_key=key) == db.head_revision()  # migration 0003 encrypts what was plain
    with secrets_crypto.writing(key) as keyring, db.session(url) as sess:
        secrets_crypto.put(sess, keyring, "env:web", "root_password", "PgPassw0rd")

    def raw():
        with db.engine(url).connect() as connection:
            return dict(connection.execute(text("SELECT name, value FROM secrets")).all())

    before = raw()
    assert all(value.startswith("fernet:") for value in before.values())
    assert "Pl41nOld" not in before["old"] and "PgPassw0rd" not in before["root_password"]
    assert secrets_crypto.rotate(url, key) == 2
    after = raw()
    assert all(after[name] != before[name] for name in before)
    with db.session(url) as sess:
        assert secrets_crypto.values(sess, secrets_crypto.load(key), "env:web") == {
            "old": "Pl41nOld", "root_password": "PgPassw0rd"}
