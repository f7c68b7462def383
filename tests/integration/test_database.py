"""A database that rolls back with the code: DATABASE_URL, dumps in snapshots, restores.

SQLite (the default): the ``dbapp`` test app writes rows into ``data/db.sqlite3``; a
push whose migration alters the database and fails gets the rows back when no request
came in since the snapshot, and keeps them (saying so) when requests came in; a
rollback with ``data=True`` restores the database; ``mc_project.snapshots`` lists the
sizes. PostgreSQL: a real server (tests/pg.py); corpus makes the project's database
and role, keeps the password 0600, dumps with pg_dump into the snapshot, and restores
the database when a migration fails. The system Python the app runs under has no
PostgreSQL driver, so the test reaches that database itself with psycopg2.
"""

import json
import os
import pwd
import sqlite3
import stat
import threading
import time

import psycopg2

from support.corpus import REPO_ROOT, sample_project
from support.web import get_json, http_get
from mc_project.project import database
from mc_project.project import settings as mc_settings
from support.postgresql import postgresql_server  # noqa: F401  (fixture)

DBAPP = sample_project("dbapp")

FAILING_SQLITE = '''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[2], timeout=30)
conn.execute("ALTER TABLE hits ADD COLUMN broken TEXT")
conn.execute("DELETE FROM hits")
conn.commit()
conn.close()
time.sleep(float(open("SLEEP").read()) if __import__("os").path.exists("SLEEP") else 0)
sys.exit("migration failed on purpose")
'''

FAILING_POSTGRESQL = '''
import json, os, subprocess, sys
creds = json.load(open(sys.argv[3]))
env = dict(os.environ, PGPASSWORD=creds["password"], PGUSER=creds["role"], PGHOST=creds["host"],
           PGPORT=str(creds["port"]), PGDATABASE=creds["database"])
subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-c",
                "ALTER TABLE hits ADD COLUMN broken TEXT; DELETE FROM hits; CREATE TABLE junk (x int)"],
               env=env, check=True)
sys.exit("migration failed on purpose")
'''


def columns(path):
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(hits)")]
    finally:
        conn.close()


def notes(corpus, name):
    return corpus.history(name)[-1].get("rollback") or []


def test_sqlite_rolls_back_with_the_code(corpus):
    name = "dbapp-sqlite"
    paths = corpus.init(name, env="staging")
    port = mc_settings.default_port(name)
    src = corpus.source(DBAPP, name=name)
    assert corpus.push(src, name).returncode == 0
    db_file = os.path.join(paths["data"], "db.sqlite3")

    # DATABASE_URL: a file under data/, made and owned by the app user
    first = get_json(port)
    assert first["url"] == "sqlite:///" + db_file
    for _ in range(3):
        get_json(port, "/write")
    assert get_json(port)["count"] == 3
    if os.geteuid() == 0:
        assert pwd.getpwuid(os.stat(db_file).st_uid).pw_name == "app-" + name

    # 1. a migration alters the database and fails; no request came in since the
    # snapshot: the rows and the table are back
    corpus.commit(src, {"migrate.py": FAILING_SQLITE, "VERSION": "2\n"})
    push = corpus.push(src, name)
    assert push.returncode != 0
    assert "data/ and the database restored from their snapshot" in notes(corpus, name)
    assert get_json(port) == dict(first, count=3)
    assert columns(db_file) == ["n", "at"]

    # 2. the same failure while the live app takes writes: kept as it is, one sentence
    corpus.commit(src, {"SLEEP": "4\n", "VERSION": "3\n"})
    done = threading.Event()
    written = []

    def write_meanwhile():
        while not done.is_set():
            status, _text = http_get(port, "/write")
            written.append(status)
            time.sleep(0.2)

    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    try:
        push = corpus.push(src, name)
    finally:
        done.set()
        writer.join()
    assert push.returncode != 0 and set(written) == {200}
    kept = [n for n in notes(corpus, name) if "kept as they are" in n]
    assert len(kept) == 1 and "no acknowledged write is discarded" in kept[0], notes(corpus, name)
    assert "broken" in columns(db_file)  # the failed migration's change stands with the writes
    assert kept[0] in push.stderr

    # 3. a good deploy, then a rollback with data=True puts the database back as it was
    corpus.commit(src, {"migrate.py": open(os.path.join(REPO_ROOT, "tests", "projects", "dbapp",
                                                        "migrate.py")).read(),
                        "SLEEP": None, "VERSION": "4\n"})
    before = get_json(port)["count"]
    assert corpus.push(src, name).returncode == 0
    get_json(port, "/write")
    get_json(port, "/write")
    assert get_json(port)["count"] == before + 2
    rolled = corpus.salt("mc_project.rollback", name, "data=True", check=True)
    assert rolled.local["status"] == "success"
    answer = get_json(port)
    assert answer["version"] == "1"
    assert answer["count"] == before

    # 4. snapshots: id, time, sizes of data and database
    listed = corpus.salt("mc_project.snapshots", name, check=True).local
    assert listed[0]["database"] is None  # the first deploy: the app had made no database yet
    assert len(listed) > 1 and all(snap["database"] == "sqlite" and snap["database_bytes"] > 0
                                   for snap in listed[1:])
    assert {"id", "time", "data_bytes", "database", "database_bytes"} <= set(listed[-1])
    assert os.path.isfile(os.path.join(paths["snapshots"], listed[-1]["id"], "database.sqlite3"))


def test_postgresql_database_of_its_own_dumped_and_restored(corpus, postgresql_server):  # noqa: F811
    name = "dbapp-pg"
    admin = postgresql_server.url("postgres")
    # The server logs every statement: the role's password must not be in any.
    conn = psycopg2.connect(admin.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER SYSTEM SET log_statement = 'all'")
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    paths = corpus.init(name, env="staging", database="postgresql", database_server=admin)
    port = mc_settings.default_port(name)
    src = corpus.source(DBAPP, name=name)
    push = corpus.push(src, name)
    assert push.returncode == 0, push.stderr
    assert get_json(port)["scheme"] == "postgresql"

    # its own role and database; the password 0600, and in no log or output
    creds_file = os.path.join(paths["supervisor"], "database.json")
    assert stat.S_IMODE(os.stat(creds_file).st_mode) == 0o600
    creds = json.load(open(creds_file))
    assert creds["database"] == creds["role"] == database.pg_name(name)
    assert creds["password"] not in push.stderr + push.stdout
    server_log = open(postgresql_server.log_file, errors="replace").read()
    assert 'ROLE "{}" LOGIN PASSWORD'.format(creds["role"]) in server_log
    assert creds["password"] not in server_log
    for dirpath, _dirs, files in os.walk(paths["logs"]):
        for log_name in files:
            assert creds["password"] not in open(os.path.join(dirpath, log_name), errors="replace").read()
    conn = psycopg2.connect(host=creds["host"], port=creds["port"], user=creds["role"],
                            password=creds["password"], dbname=creds["database"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE hits (n serial PRIMARY KEY, at text)")
        cur.execute("INSERT INTO hits (at) SELECT 'row' FROM generate_series(1, 5)")
    conn.close()

    # a good deploy dumps the database into its snapshot
    corpus.commit(src, {"VERSION": "2\n"})
    assert corpus.push(src, name).returncode == 0
    rid = corpus.history(name)[-1]["id"]
    dump = os.path.join(paths["snapshots"], rid, "database.pgdump")
    assert os.path.getsize(dump) > 0
    with open(dump, "rb") as fh:
        assert fh.read(5) == b"PGDMP"  # pg_dump's custom format

    # a failed migration: the database is put back (no request came in)
    corpus.commit(src, {"migrate.py": FAILING_POSTGRESQL, "VERSION": "3\n"})
    push = corpus.push(src, name)
    assert push.returncode != 0
    assert "data/ and the database restored from their snapshot" in notes(corpus, name)
    conn = psycopg2.connect(host=creds["host"], port=creds["port"], user=creds["role"],
                            password=creds["password"], dbname=creds["database"])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM hits")
        assert cur.fetchone()[0] == 5
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'hits' "
                    "ORDER BY ordinal_position")
        assert [row[0] for row in cur.fetchall()] == ["n", "at"]
        cur.execute("SELECT to_regclass('junk')")
        assert cur.fetchone()[0] is None
    conn.close()
    assert get_json(port)["version"] == "2"
    listed = corpus.salt("mc_project.snapshots", name, check=True).local
    assert listed[-1]["database"] == "postgresql" and listed[-1]["database_bytes"] > 0
