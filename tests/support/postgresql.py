"""A real PostgreSQL for tests: a throwaway cluster under the pytest tmp dir.

PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres``
user of Debian's package; it listens on 127.0.0.1 on a free port and on a
socket inside its own directory, with a password for its superuser.

Fixtures (import them into a test module,
``from support.postgresql import postgresql_server, postgresql_url  # noqa: F401``):

* ``postgresql_server`` (session): the running cluster, stopped at the end.
* ``postgresql_url``: an SQLAlchemy URL (``postgresql+psycopg2://...``) of a
  new, empty database for one test.
"""

import contextlib
import os
import pwd
import secrets
import stat
import subprocess

import psycopg2
import pytest

from support import needs
from support.ports import LOOPBACK, free_port

PG_BIN = needs.PG_BIN
PG_USER = "postgres"  # the system account the server runs as
SUPERUSER = "corpus"  # the database role tests connect as
START_TIMEOUT = 60


def _let_through(path):
    """Let the server's account reach ``path``: pytest's tmp dirs are 0700 root."""
    path = os.path.abspath(path)
    while path not in ("/", "/var/tmp", "/tmp"):
        mode = os.stat(path).st_mode
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IXOTH)
        path = os.path.dirname(path)


class PostgreSQL:
    """One cluster: ``start()``, ``create_database(name)`` -> URL, ``stop()``."""

    def __init__(self, base_dir):
        self.base_dir = os.path.abspath(str(base_dir))
        self.data_dir = os.path.join(self.base_dir, "data")
        self.log_file = os.path.join(self.base_dir, "postgresql.log")
        self.password = secrets.token_urlsafe(16)
        self.port = None

    def _as_server_user(self, *command, check=True, **kwargs):
        result = subprocess.run(["runuser", "-u", PG_USER, "--", *command], check=False,
                                capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError("{} exited {}: {}{}".format(
                " ".join(command), result.returncode, result.stdout, result.stderr))
        return result

    def _pg_ctl(self, *args, check=True):
        return self._as_server_user(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data_dir,
                                    "-l", self.log_file, *args, check=check,
                                    timeout=START_TIMEOUT + 30)

    def start(self):
        account = pwd.getpwnam(PG_USER)
        os.makedirs(self.base_dir, exist_ok=True)
        _let_through(self.base_dir)
        os.chown(self.base_dir, account.pw_uid, account.pw_gid)
        password_file = os.path.join(self.base_dir, "password")
        with open(os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(self.password + "\n")
        os.chown(password_file, account.pw_uid, account.pw_gid)
        self._as_server_user(os.path.join(PG_BIN, "initdb"), "-D", self.data_dir,
                             "-U", SUPERUSER, "--pwfile", password_file,
                             "--auth-local", "peer", "--auth-host", "scram-sha-256",
                             "--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync",
                             timeout=120)
        os.unlink(password_file)
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            options = "-p {} -k {} -c listen_addresses={} -c fsync=off".format(
                self.port, self.base_dir, LOOPBACK)
            if self._pg_ctl("-o", options, "-w", "-t", str(START_TIMEOUT), "start",
                            check=False).returncode == 0:
                return self
        raise RuntimeError("PostgreSQL did not start; see {}".format(self.log_file))

    def stop(self):
        # pg_ctl status: 0 running, 3 not running (also when it never started).
        if self._pg_ctl("status", check=False).returncode == 0:
            self._pg_ctl("-m", "immediate", "-w", "stop")

    def url(self, database):
        return "postgresql+psycopg2://{}:{}@{}:{}/{}".format(
            SUPERUSER, self.password, LOOPBACK, self.port, database)

    def create_database(self, name):
        """A new empty database; returns its SQLAlchemy URL."""
        connection = psycopg2.connect(host=LOOPBACK, port=self.port, user=SUPERUSER,
                                      password=self.password, dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute('CREATE DATABASE "{}"'.format(name))
        finally:
            connection.close()
        return self.url(name)


@contextlib.contextmanager
def running_postgresql(base_dir):
    server = PostgreSQL(base_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory):
    # the cluster runs as the postgres user
    needs.require("root", "postgresql", group=__file__, what="a test PostgreSQL")
    with running_postgresql(tmp_path_factory.mktemp("postgresql")) as server:
        yield server


@pytest.fixture
def postgresql_url(postgresql_server):
    name = "test_{}".format(secrets.token_hex(6))
    return postgresql_server.create_database(name)
