"""The project's database: DATABASE_URL, SQLite backup and restore, snapshots with a dump."""

import os
import sqlite3
import stat

import pytest

from mc_project.errors import CorpusError
from mc_project.project import database, files, releases, schema


def cfg_for(tmp_path, **settings):
    paths = {"data": str(tmp_path / "data"), "supervisor": str(tmp_path / "supervisor")}
    os.makedirs(paths["data"], exist_ok=True)
    return dict({"name": "shop", "database": "", "database_server": ""}, paths=paths, **settings)


def make_db(path, rows, wal=False):
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER, blob TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 100) for i in range(rows)])
    conn.commit()
    return conn


def count(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()


def test_database_url_is_sqlite_under_data_by_default(tmp_path):
    cfg = cfg_for(tmp_path)
    assert database.url(cfg) == "sqlite:///" + str(tmp_path / "data" / "db.sqlite3")
    assert database.url(dict(cfg, database="sqlite")) == database.url(cfg)


def test_postgresql_without_a_server_says_what_to_set(tmp_path):
    with pytest.raises(CorpusError, match="database_server is empty"):
        database.url(cfg_for(tmp_path, database="postgresql"))


def test_postgresql_url_from_kept_credentials_quotes_the_password(tmp_path):
    cfg = cfg_for(tmp_path, database="postgresql")
    os.makedirs(cfg["paths"]["supervisor"])
    files.write_private(database.credentials_path(cfg), '{"database": "corpus_shop", '
                            '"role": "corpus_shop", "password": "a/b@c", "host": "127.0.0.1", "port": 5433}')
    assert database.url(cfg) == "postgresql://corpus_shop:a%2Fb%40c@127.0.0.1:5433/corpus_shop"


def test_pg_name_is_a_safe_identifier():
    assert database.pg_name("My-App.v2") == "corpus_my_app_v2"
    long = database.pg_name("x" * 64)
    assert len(long) <= 63 and long.startswith("corpus_x")
    assert long != database.pg_name("x" * 63)


def test_schema_knows_the_database_settings():
    defaults = schema.defaults()
    assert defaults["database"] == "" and defaults["keep_snapshots"] == 0
    schema.validate({"database": "postgresql", "database_server": "postgresql://a@b/postgres"})
    with pytest.raises(CorpusError, match="Setting database must be one of sqlite, postgresql"):
        schema.validate({"database": "mysql"})
    with pytest.raises(CorpusError, match="keep_snapshots"):
        schema.validate({"keep_snapshots": -1})


@pytest.mark.parametrize("wal", [False, True])
def test_backup_is_consistent_while_a_connection_stays_open(tmp_path, wal):
    src = str(tmp_path / "db.sqlite3")
    live = make_db(src, 500, wal=wal)
    live.execute("INSERT INTO t VALUES (-1, 'uncommitted')")  # an open write transaction
    dest = str(tmp_path / "dump.sqlite3")
    size = database.backup_sqlite(src, dest)
    assert size == os.path.getsize(dest) and count(dest) == 500
    live.commit()
    live.close()
    assert count(src) == 501 and count(dest) == 500
    assert not os.path.exists(dest + ".partial")


def test_restore_replaces_the_file_and_drops_a_stale_wal(tmp_path):
    src = str(tmp_path / "db.sqlite3")
    make_db(src, 10, wal=True).close()
    dump = str(tmp_path / "dump.sqlite3")
    database.backup_sqlite(src, dump)
    conn = make_db(src, 90, wal=True)  # kept open: its -wal file stays beside the db
    assert os.path.exists(src + "-wal")
    database.restore_sqlite(dump, src)
    conn.close()
    assert not os.path.exists(src + "-wal") or count(src) == 10
    assert count(src) == 10


def test_backup_of_a_file_that_is_not_sqlite_is_one_sentence(tmp_path):
    src = tmp_path / "db.sqlite3"
    src.write_text("not a database at all" * 100)
    with pytest.raises(CorpusError, match="could not be backed up"):
        database.backup_sqlite(str(src), str(tmp_path / "dump.sqlite3"))
    assert not os.path.exists(str(tmp_path / "dump.sqlite3.partial"))


def test_snapshot_leaves_the_database_to_its_dump_and_restore_puts_both_back(tmp_path):
    cfg = cfg_for(tmp_path)
    data = cfg["paths"]["data"]
    (tmp_path / "data" / "uploads").mkdir()
    (tmp_path / "data" / "uploads" / "a.txt").write_text("one")
    make_db(database.sqlite_path(cfg), 5).close()
    snap = str(tmp_path / "snapshots" / "r1")
    releases.snapshot_data(data, snap, exclude=database.data_files(cfg))
    dumped = database.dump(cfg, snap)
    database.write_meta(snap, "r1", dumped)
    assert dumped["kind"] == "sqlite" and dumped["bytes"] > 0
    assert sorted(os.listdir(os.path.join(snap, "data"))) == ["uploads"]
    assert stat.S_IMODE(os.stat(os.path.join(snap, "snapshot.json")).st_mode) == 0o600

    # a migration alters the database and data/, then both go back
    conn = sqlite3.connect(database.sqlite_path(cfg))
    conn.execute("ALTER TABLE t ADD COLUMN broken TEXT")
    conn.execute("DELETE FROM t")
    conn.commit()
    conn.close()
    (tmp_path / "data" / "uploads" / "a.txt").write_text("two")
    database.restore(cfg, snap)
    assert count(database.sqlite_path(cfg)) == 5
    assert (tmp_path / "data" / "uploads" / "a.txt").read_text() == "one"
    columns = [row[1] for row in sqlite3.connect(database.sqlite_path(cfg)).execute("PRAGMA table_info(t)")]
    assert columns == ["n", "blob"]

    described = database.describe(snap)
    assert described["id"] == "r1" and described["database"] == "sqlite"
    assert described["database_bytes"] == dumped["bytes"] and described["data_bytes"] == 3


def test_no_database_yet_is_no_dump_and_restore_removes_one_made_since(tmp_path):
    cfg = cfg_for(tmp_path)
    snap = str(tmp_path / "snapshots" / "r1")
    releases.snapshot_data(cfg["paths"]["data"], snap, exclude=database.data_files(cfg))
    assert database.dump(cfg, snap) is None
    make_db(database.sqlite_path(cfg), 3).close()
    database.restore(cfg, snap)
    assert not os.path.exists(database.sqlite_path(cfg))
    assert database.describe(snap)["database"] is None


def test_prune_keeps_the_newest_snapshots_by_time_taken(tmp_path):
    from mc_project.project import engine

    snaps = tmp_path / "snapshots"
    for sid, taken in (("rollback-1", "2026-01-01T00:00:03Z"), ("20260101T000001-a", "2026-01-01T00:00:01Z"),
                       ("20260101T000002-b", "2026-01-01T00:00:02Z")):
        (snaps / sid / "data").mkdir(parents=True)
        (snaps / sid / "snapshot.json").write_text('{"time": "%s"}' % taken)
    assert engine._newest_snapshots(str(snaps), 2) == ["20260101T000002-b", "rollback-1"]
    assert engine._newest_snapshots(str(snaps), 0) == []


def test_with_postgresql_a_file_named_like_the_sqlite_database_is_plain_data(tmp_path):
    assert database.data_files(cfg_for(tmp_path, database="postgresql")) == ()
    assert "db.sqlite3-wal" in database.data_files(cfg_for(tmp_path))
