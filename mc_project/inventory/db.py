"""Open, create and migrate the inventory database.

``url`` is an SQLAlchemy URL (``sqlite:////var/cache/salt/master/corpus/inventory.sqlite``,
``postgresql+psycopg2://corpus@db/corpus``) or a plain file path, read as SQLite.

``init(url)`` brings the schema to the newest Alembic revision: it creates a
new database, migrates one made by an older corpus, and does nothing to one
that is current. ``session(url)`` is a transaction: committed when the block
ends, rolled back if it raises.
"""

import contextlib
import os
import re
import sqlite3

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mc_project.errors import CorpusError

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# Each migration's revision is the number its file name starts with (tests/unit/test_db_head.py).
MIGRATION_FILE_RE = re.compile(r"(\d{4})_\w+\.py")

# Engines are per process: a connection pool must not cross a fork.
_ENGINES = {}


def normalize_url(url):
    """An SQLAlchemy URL string from ``url`` (a URL, or a path for SQLite)."""
    if not url:
        raise CorpusError("No inventory database URL was given.")
    url = str(url)
    if "://" not in url:
        url = "sqlite:///" + os.path.abspath(url)
    return url


def default_url(cachedir):
    """The default inventory: an SQLite file under the master's cache directory."""
    return "sqlite:///" + os.path.join(os.path.abspath(cachedir), "corpus", "inventory.sqlite")


def _on_sqlite_connect(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # SQLite enforces foreign keys only when asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # Readers and a writer at the same time: many jobs record their steps while the API, the
    # master's pillar and the job streams read. With the default rollback journal each
    # waited for the others (a third of 8 jobs' time went to waiting on the file's lock).
    # The mode stays with the file; its -wal and -shm files take the file's mode.
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # switched by another connection meanwhile, or a read-only file
        pass
    cursor.close()


def private_sqlite_file(database):
    """Make the SQLite file 0600 (it holds secrets, encrypted or not) in a new 0700 directory.

    Its journals take its mode. A directory that already exists is left as it is:
    it may be shared (``/var/tmp``); ``corpus-controller init`` tightens its own.
    """
    database = os.path.abspath(database)
    os.makedirs(os.path.dirname(database), mode=0o700, exist_ok=True)
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if os.stat(database).st_mode & 0o077:
            os.chmod(database, 0o600)


def engine(url):
    """The process's engine for ``url``.

    Bound parameters are hidden from SQL logs and error messages, so a secret
    never reaches a log even with ``echo`` on or a failed statement.
    """
    url = normalize_url(url)
    key = (os.getpid(), url)
    if key not in _ENGINES:
        parsed = make_url(url)
        kwargs = {"hide_parameters": True}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                private_sqlite_file(database)
            # Wait for another process's write instead of failing at once.
            kwargs["connect_args"] = {"timeout": 30}
        try:
            eng = create_engine(url, **kwargs)
        except Exception as exc:  # bad URL, missing driver
            raise CorpusError("Cannot open the inventory database {}: {}.".format(
                parsed.render_as_string(hide_password=True), exc)) from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(eng, "connect", _on_sqlite_connect)
        _ENGINES[key] = eng
    return _ENGINES[key]


def alembic_config(url, script_location=None):
    import alembic.config  # only to migrate: every process opening the inventory need not load it

    config = alembic.config.Config()
    config.set_main_option("script_location", script_location or MIGRATIONS_DIR)
    # Percent signs (URL-encoded passwords) would be read as interpolation.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def head_revision(script_location=None):
    from alembic.script import ScriptDirectory

    config = alembic_config("sqlite://", script_location)
    return ScriptDirectory.from_config(config).get_current_head()


def shipped_head():
    """The newest revision of this package's migrations, from their file names alone."""
    numbers = [match.group(1) for match in map(MIGRATION_FILE_RE.fullmatch, os.listdir(
        os.path.join(MIGRATIONS_DIR, "versions"))) if match]
    return max(numbers) if numbers else None


def current_revision(url):
    """The revision the database is at, or None for an empty one."""
    with engine(url).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def init(url, script_location=None, secrets_key=None):
    """Create or migrate the inventory at ``url`` to the newest schema; return its revision.

    ``script_location`` points at another migrations directory (tests use it to
    play a newer corpus). ``secrets_key`` is the key file the migration that
    encrypts secrets uses (see ``secrets_crypto``); without it, that migration
    leaves plain-text secrets for ``corpus-controller init`` to encrypt.
    """
    if script_location is None:
        # Every process that opens the inventory calls this: one query when it is current.
        current = current_revision(url)
        if current is not None and current == shipped_head():
            return current
    import alembic.command

    config = alembic_config(url, script_location)
    config.attributes["secrets_key"] = secrets_key
    with engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "head")
    return current_revision(url)


@contextlib.contextmanager
def session(url):
    """A session in one transaction: commit at the end, roll back on error."""
    with Session(engine(url), expire_on_commit=False) as sess:
        with sess.begin():
            yield sess


def dispose():
    """Close this process's connections (tests, or before a fork)."""
    for key in [key for key in _ENGINES if key[0] == os.getpid()]:
        _ENGINES.pop(key).dispose()
