"""The project's database, which rolls back with its code.

Every project's processes get ``DATABASE_URL``. By default (setting ``database`` empty
or ``sqlite``) it names an SQLite file under ``data/`` (``data/db.sqlite3``), which the
app creates as its own user; no server is needed. With ``database: postgresql`` corpus
creates a database and a role of the project's own on the PostgreSQL server that
``database_server`` names (an admin connection URL), with a generated password kept in
``supervisor/database.json`` (0600, in the 0700 ``supervisor/``), never logged.

Before each deploy the database is dumped beside the data snapshot, in
``snapshots/<id>/``: SQLite with the online backup API (a consistent copy while the
app keeps running), PostgreSQL with ``pg_dump -Fc``. Putting a snapshot back restores
both ``data/`` and the database (``restore``).
"""

import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
import urllib.parse

from mc_project.errors import CorpusError
from mc_project.project import files, releases

SQLITE_NAME = "db.sqlite3"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_DUMP = "database.sqlite3"
POSTGRESQL_DUMP = "database.pgdump"
CREDENTIALS = "database.json"
META = "snapshot.json"


def kind(cfg):
    return cfg.get("database") or "sqlite"


def sqlite_path(cfg):
    return os.path.join(cfg["paths"]["data"], SQLITE_NAME)


def data_files(cfg):
    """Names in ``data/`` a data snapshot leaves out: the SQLite database is dumped on its own."""
    if kind(cfg) != "sqlite":
        return ()
    return (SQLITE_NAME,) + tuple(SQLITE_NAME + side for side in SQLITE_SIDE_FILES)


def url(cfg):
    """``DATABASE_URL`` of the project (creating its PostgreSQL database on first use)."""
    if kind(cfg) == "postgresql":
        return _app_url(ensure_postgresql(cfg))
    return "sqlite:///" + sqlite_path(cfg)


# --------------------------------------------------------------------------- SQLite

def backup_sqlite(source, dest):
    """A consistent copy of the SQLite database ``source`` in ``dest`` (online backup API:
    the app may keep using it meanwhile). Returns the bytes written."""
    tmp = dest + ".partial"
    if os.path.exists(tmp):
        os.unlink(tmp)
    owner = os.stat(source)
    try:
        src = sqlite3.connect("file:{}?mode=ro".format(urllib.parse.quote(source)), uri=True,
                              timeout=60)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # one step: a snapshot of one instant, not restarted by writes
            finally:
                dst.close()
        finally:
            src.close()
            _give_side_files(source, owner)
        _fsync(tmp)
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        _remove(tmp)
        raise CorpusError("The SQLite database {} could not be backed up: {}.".format(source, exc)) from None
    except BaseException:
        _remove(tmp)
        raise
    return os.path.getsize(dest)


def restore_sqlite(backup, dest):
    """Make ``dest`` the database ``backup`` holds (side files of the old one removed).
    Returns the bytes written."""
    tmp = dest + ".restoring"
    _remove(tmp)
    try:
        src = sqlite3.connect("file:{}?mode=ro".format(urllib.parse.quote(backup)), uri=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(tmp)
        for side in SQLITE_SIDE_FILES:  # a stale WAL would be replayed onto the restored file
            _remove(dest + side)
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        _remove(tmp)
        raise CorpusError("The SQLite database {} could not be restored from {}: {}.".format(
            dest, backup, exc)) from None
    except BaseException:
        _remove(tmp)
        raise
    return os.path.getsize(dest)


def _give_side_files(source, owner):
    """Side files our connection made as root (WAL mode) belong to the app user again."""
    if os.geteuid() != 0:
        return
    for side in SQLITE_SIDE_FILES:
        try:
            st = os.lstat(source + side)
            if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
                os.lchown(source + side, owner.st_uid, owner.st_gid)
        except FileNotFoundError:
            continue


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- PostgreSQL

def pg_name(project):
    """The project's database and role name: ``corpus_<name>``, lower case, at most 63."""
    clean = re.sub(r"[^a-z0-9_]", "_", project.lower())
    name = "corpus_" + clean
    if len(name) > 63:
        import hashlib

        name = "{}_{}".format(name[:54], hashlib.sha256(project.encode()).hexdigest()[:8])
    return name


def credentials_path(cfg):
    return os.path.join(cfg["paths"]["supervisor"], CREDENTIALS)


def _libpq(url_text):
    """A libpq URI from an SQLAlchemy-style one (``postgresql+psycopg2://``)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url_text)


def _admin_url(cfg):
    server = cfg.get("database_server") or ""
    if not server:
        raise CorpusError("Setting database is postgresql but database_server is empty: set it to "
                          "the admin connection URL of the PostgreSQL server, such as "
                          "postgresql://admin:PASSWORD@127.0.0.1:5432/postgres.")
    return _libpq(server)


def _connect(url_text, what):
    import psycopg2

    try:
        conn = psycopg2.connect(url_text)
    except psycopg2.Error as exc:
        raise CorpusError("Cannot connect to PostgreSQL as {}: {}.".format(
            what, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)) from None
    conn.autocommit = True
    return conn


def _quote_ident(name):
    return '"{}"'.format(name.replace('"', '""'))


def ensure_postgresql(cfg):
    """The project's PostgreSQL database and role (made on first use): its credentials."""
    path = credentials_path(cfg)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        pass
    except ValueError:
        raise CorpusError("{} is not valid JSON: remove it to make a new password.".format(path)) from None
    admin = _admin_url(cfg)
    parts = urllib.parse.urlsplit(admin)
    name = pg_name(cfg["name"])
    password = secrets.token_urlsafe(24)
    conn = _connect(admin, "the admin of database_server")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # The server gets a SCRAM verifier made here, never the password itself: a
            # statement log or pg_stat_activity would show it.
            from psycopg2.extensions import encrypt_password

            verifier = encrypt_password(password, name, conn, "scram-sha-256")
            cur.execute("{} ROLE {} LOGIN PASSWORD %s".format(verb, _quote_ident(name)), (verifier,))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not cur.fetchone():
                cur.execute("CREATE DATABASE {0} OWNER {1}".format(_quote_ident(name), _quote_ident(name)))
            cur.execute("REVOKE CONNECT ON DATABASE {} FROM PUBLIC".format(_quote_ident(name)))
    finally:
        conn.close()
    creds = {"database": name, "role": name, "password": password,
             "host": parts.hostname or "", "port": parts.port or 5432}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_private(path, json.dumps(creds, indent=1))
    return creds


def _app_url(creds, database=None):
    host = creds["host"] or ""
    netloc = "{}:{}@{}".format(urllib.parse.quote(creds["role"], safe=""),
                               urllib.parse.quote(creds["password"], safe=""),
                               "{}:{}".format(host, creds["port"]) if host else "")
    return "postgresql://{}/{}".format(netloc, urllib.parse.quote(database or creds["database"]))


def _pg_env(creds):
    """The environment a pg_dump / pg_restore child gets: the password in PGPASSWORD,
    never on its command line."""
    env = dict(os.environ, PGPASSWORD=creds["password"], PGUSER=creds["role"],
               PGPORT=str(creds["port"]))
    if creds["host"]:
        env["PGHOST"] = creds["host"]
    return env


def _pg_tool(name):
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []
    for version in reversed(versions):
        path = os.path.join("/usr/lib/postgresql", version, "bin", name)
        if os.path.exists(path):
            return path
    raise CorpusError("{} is not installed (apt-get install postgresql-client).".format(name))


def _run_pg(cmd, creds, what):
    proc = subprocess.run(cmd, env=_pg_env(creds), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
        raise CorpusError("{} failed: {}".format(what, lines[-1] if lines else "exit {}".format(
            proc.returncode)))


def dump_postgresql(creds, dest):
    """``pg_dump -Fc`` of the project's database into ``dest``; returns its bytes."""
    tmp = dest + ".partial"
    _remove(tmp)
    try:
        _run_pg([_pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", tmp, "--dbname", creds["database"]],
                creds, "Dumping the PostgreSQL database {}".format(creds["database"]))
        _fsync(tmp)
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    return os.path.getsize(dest)


def restore_postgresql(cfg, creds, dump):
    """Make the project's database what ``dump`` holds: restored into a new database,
    which then takes the old one's name (the old one, and its connections, dropped)."""
    name, incoming = creds["database"], creds["database"] + "_restoring"
    conn = _connect(_admin_url(cfg), "the admin of database_server")
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)".format(_quote_ident(incoming)))
            cur.execute("CREATE DATABASE {} OWNER {}".format(_quote_ident(incoming), _quote_ident(creds["role"])))
        _run_pg([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", incoming, dump],
                creds, "Restoring the PostgreSQL database {}".format(name))
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)".format(_quote_ident(name)))
            cur.execute("ALTER DATABASE {} RENAME TO {}".format(_quote_ident(incoming), _quote_ident(name)))
            cur.execute("REVOKE CONNECT ON DATABASE {} FROM PUBLIC".format(_quote_ident(name)))
    finally:
        conn.close()


# --------------------------------------------------------------------------- snapshots

def dump(cfg, snapshot_dir):
    """Dump the project's database into ``snapshot_dir``; None when it has none yet."""
    if kind(cfg) == "postgresql":
        creds = ensure_postgresql(cfg)
        size = dump_postgresql(creds, os.path.join(snapshot_dir, POSTGRESQL_DUMP))
        return {"kind": "postgresql", "file": POSTGRESQL_DUMP, "bytes": size}
    source = sqlite_path(cfg)
    if not os.path.exists(source):
        return None
    size = backup_sqlite(source, os.path.join(snapshot_dir, SQLITE_DUMP))
    return {"kind": "sqlite", "file": SQLITE_DUMP, "bytes": size}


def write_meta(snapshot_dir, snapshot_id, database):
    files.write_private(os.path.join(snapshot_dir, META), json.dumps(
        {"id": snapshot_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "database": database}, indent=1))


def has_dump(snapshot_dir):
    return any(os.path.exists(os.path.join(snapshot_dir, name)) for name in (SQLITE_DUMP, POSTGRESQL_DUMP))


def restore(cfg, snapshot_dir):
    """``data/`` and the database as ``snapshot_dir`` holds them (an SQLite dump goes
    back into ``data/`` before it is swapped in)."""
    sqlite_dump = os.path.join(snapshot_dir, SQLITE_DUMP)

    def put_database(incoming):
        if os.path.exists(sqlite_dump):
            restore_sqlite(sqlite_dump, os.path.join(incoming, SQLITE_NAME))

    releases.restore_data(snapshot_dir, cfg["paths"]["data"], before_swap=put_database)
    pg_dump = os.path.join(snapshot_dir, POSTGRESQL_DUMP)
    if os.path.exists(pg_dump):
        restore_postgresql(cfg, ensure_postgresql(cfg), pg_dump)


def _tree_bytes(path):
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def describe(snapshot_dir):
    """One snapshot: id, time, and the sizes of its data and its database dump."""
    meta = {}
    try:
        with open(os.path.join(snapshot_dir, META), encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        pass
    database, db_bytes = None, None
    for name, what in ((SQLITE_DUMP, "sqlite"), (POSTGRESQL_DUMP, "postgresql")):
        path = os.path.join(snapshot_dir, name)
        if os.path.exists(path):
            database, db_bytes = what, os.path.getsize(path)
    taken = meta.get("time") or time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(snapshot_dir).st_mtime))
    return {"id": os.path.basename(snapshot_dir), "time": taken,
            "data_bytes": _tree_bytes(os.path.join(snapshot_dir, "data")),
            "database": database, "database_bytes": db_bytes}
