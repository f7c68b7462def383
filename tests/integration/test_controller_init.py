"""``corpus-controller init`` on a real machine: a salt-master that answers,
runs corpus's runners, serves the inventory's pillar to a real minion, is not
started twice, refuses bad input without changing anything, and stops."""

import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest
import yaml
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url

from support import lxc_cache
from support.ports import free_ports
from support.postgresql import postgresql_server, postgresql_url  # noqa: F401  (fixtures)

from mc_project import __version__, resources
from mc_project.controller import cli, wheelhouse
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import Pillar, Secret

BIN = os.path.dirname(sys.executable)
LOOPBACK = "127.0.0.1"
MINION_ID = "web.corpus.test"
ROW = {"corpus": {"env": "web", "ip": "10.5.0.2", "domains": ["web.corpus.test"]}}


def run(*command, timeout=300):
    return subprocess.run([os.path.join(BIN, command[0]), *command[1:]], capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


class Controller:
    def __init__(self, root):
        self.root = str(root)
        self.publish_port, self.ret_port = free_ports(2)
        self.config_dir = os.path.join(self.root, "etc", "salt")

    def init(self, *extra):
        return run("corpus-controller", "init", "--root", self.root, "--interface", LOOPBACK,
                   "--publish-port", str(self.publish_port), "--ret-port", str(self.ret_port),
                   "--wheelhouse", lxc_cache.wheelhouse_dir(), *extra)

    def options(self):
        with open(os.path.join(self.config_dir, "master"), encoding="utf-8") as fh:
            return yaml.safe_load(fh)

    def pid(self):
        process = cli.master_process(self.root)
        return process and process.pid


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    # A short root: the master's unix sockets live under it.
    ctl = Controller(tmp_path_factory.mktemp("ctl"))
    started = time.monotonic()
    result = ctl.init()
    ctl.init_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    yield ctl
    run("corpus-controller", "stop", "--root", ctl.root)
    db.dispose()


class Minion:
    """A salt-minion daemon whose key the master accepted in advance."""

    def __init__(self, root, controller, minion_id):
        self.root = str(root)
        self.id = minion_id
        self.config_dir = os.path.join(self.root, "etc", "salt")
        os.makedirs(self.config_dir)
        with open(os.path.join(self.config_dir, "minion"), "w", encoding="utf-8") as fh:
            yaml.safe_dump({"id": minion_id, "root_dir": self.root, "master": LOOPBACK,
                            "master_port": controller.ret_port,
                            "publish_port": controller.publish_port,
                            # Back quickly when the master restarts.
                            "acceptance_wait_time": 1, "random_reauth_delay": 0,
                            "recon_default": 200, "recon_max": 1000, "recon_randomize": False,
                            "log_level_logfile": "info"}, fh)
        pki = os.path.join(self.root, "etc", "salt", "pki", "minion")
        os.makedirs(pki)
        keys = run("salt-key", "--gen-keys=minion", "--gen-keys-dir=" + pki,
                   "--log-file=" + os.path.join(self.root, "salt-key.log"))  # not /var/log/salt
        assert keys.returncode == 0, keys.stderr
        accepted = os.path.join(controller.root, "etc", "salt", "pki", "master", "minions")
        os.makedirs(accepted, exist_ok=True)
        shutil.copy(os.path.join(pki, "minion.pub"), os.path.join(accepted, minion_id))
        started = run("salt-minion", "-c", self.config_dir, "-d")
        assert started.returncode == 0, started.stderr

    def stop(self):
        try:
            with open(os.path.join(self.root, "var", "run", "salt-minion.pid"), encoding="utf-8") as fh:
                process = psutil.Process(int(fh.read().strip()))
        except (OSError, ValueError, psutil.NoSuchProcess):
            return
        children = process.children(recursive=True)
        process.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([process] + children, timeout=30)
        for leftover in alive:
            leftover.kill()


@pytest.fixture(scope="module")
def minion(controller, tmp_path_factory):
    minion = Minion(tmp_path_factory.mktemp("min"), controller, MINION_ID)
    try:
        minion_pillar(controller, minion)  # connected and answering
        yield minion
    finally:
        minion.stop()


def processes_of(controller):
    """The processes started with the controller's configuration (salt-master and its workers)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "salt-master" in command and controller.config_dir in command:
            found.append(process)
    return found


def salt(controller, *args):
    return run("salt", "-c", controller.config_dir, "--out=json", "--static", "-t", "30", *args)


def minion_pillar(controller, minion):
    deadline = time.monotonic() + 90
    while True:
        result = salt(controller, minion.id, "pillar.items", "unmask=True")
        try:
            return json.loads(result.stdout)[minion.id]
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                pytest.fail("{} never answered: {}{}".format(minion.id, result.stdout, result.stderr))
            time.sleep(1)


def test_init_writes_the_config_and_starts_a_master_that_runs_corpus_runners(controller):
    options = controller.options()
    assert options["root_dir"] == controller.root
    assert options["ext_pillar"] == [{"corpus_inventory": {}}] and options["pillar_opts"] is False
    assert resources.salt_tree() in options["file_roots"]["base"]
    assert options["corpus"]["db_url"] == "sqlite:///{}/var/lib/corpus/inventory.sqlite".format(
        controller.root)
    assert oct(os.stat(os.path.join(controller.config_dir, "master")).st_mode & 0o777) == "0o600"
    assert db.current_revision(options["corpus"]["db_url"]) == db.head_revision()
    assert wheelhouse.read_stamp(lxc_cache.wheelhouse_dir())["version"]
    assert controller.pid()
    result = run("salt-run", "-c", controller.config_dir, "mc_jobs.status", "1")
    assert result.returncode == 1
    assert "No job 1 in the inventory." in result.stdout
    print("corpus-controller init (shared wheelhouse): {:.1f}s".format(controller.init_seconds))


def test_a_second_init_changes_nothing_and_starts_no_second_master(controller):
    before = controller.options(), controller.pid()
    mtime = os.stat(os.path.join(controller.config_dir, "master")).st_mtime_ns
    result = controller.init()
    assert result.returncode == 0, result.stderr
    assert "(unchanged)" in result.stdout and "already running" in result.stdout
    assert (controller.options(), controller.pid()) == before
    assert os.stat(os.path.join(controller.config_dir, "master")).st_mtime_ns == mtime
    assert [process.pid for process in processes_of(controller) if process.ppid() == 1] == [before[1]]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def raw_secrets(url):
    with db.engine(url).connect() as connection:
        return dict(connection.execute(text("SELECT name, value FROM secrets WHERE owner = 'env:t'")).all())


def test_init_keeps_secrets_private(controller):
    options = controller.options()
    # runner returns (mc_cloud.credentials) are not stored in the job cache
    assert options["runner_returns"] is False
    cachedir = os.path.join(controller.root, "var", "cache", "salt", "master")
    assert mode(cachedir) == 0o700 and mode(os.path.join(cachedir, "jobs")) == 0o700
    database = make_url(options["corpus"]["db_url"]).database
    assert mode(database) == 0o600 and mode(os.path.dirname(database)) == 0o700
    key = os.path.join(controller.root, "etc", "corpus", "secrets.key")
    assert mode(key) == 0o600 and mode(os.path.dirname(key)) == 0o700
    assert len(secrets_crypto.read_keys(key)) == 1


def test_init_encrypts_leftovers_and_rotate_key_reencrypts_every_secret(controller):
    url = controller.options()["corpus"]["db_url"]
    key = os.path.join(controller.root, "etc", "corpus", "secrets.key")
    with secrets_crypto.writing(key) as keyring, db.session(url) as sess:
        secrets_crypto.put(sess, keyring, "env:t", "root_password", "Passw0rdOfT")
    with db.engine(url).begin() as connection:  # as an older corpus left it
        connection.execute(text("INSERT INTO secrets (owner, name, value) VALUES ('env:t', 'old', 'Pl41nOld')"))
    result = controller.init()
    assert result.returncode == 0, result.stderr
    assert "secrets key: {} (kept, 1 secret(s) encrypted)".format(key) in result.stdout
    before = raw_secrets(url)
    assert all(value.startswith("fernet:") for value in before.values())
    keys = secrets_crypto.read_keys(key)
    result = run("corpus-controller", "rotate-key", "--root", controller.root)
    assert result.returncode == 0, result.stderr
    assert "2 secret(s) re-encrypted" in result.stdout
    after = raw_secrets(url)
    assert all(after[name] != before[name] for name in before)
    assert len(secrets_crypto.read_keys(key)) == 1 and secrets_crypto.read_keys(key) != keys
    assert mode(key) == 0o600
    with db.session(url) as sess:
        assert secrets_crypto.values(sess, secrets_crypto.load(key), "env:t") == {
            "root_password": "Passw0rdOfT", "old": "Pl41nOld"}
        sess.execute(delete(Secret).where(Secret.owner == "env:t"))
    result = run("corpus-controller", "rotate-key", "--root", os.path.join(controller.root, "nothing"))
    assert result.returncode == 2 and "No controller in" in result.stderr


@pytest.mark.parametrize("extra, message", [
    (["--ret-port", "0"], "Argument --ret-port: 0 is not a port (1-65535)."),
    (["--smtp", ":25"], "Argument --smtp: :25 is not HOST:PORT."),
    (["--domain", "not a domain"], "The controller setting corpus:domain must be a DNS domain name."),
    (["--spare", "40"], "The controller setting corpus:lxc:spare must be a number from 0 to 32."),
    (["--db", "nosuchdriver://db/corpus"], "Cannot open the inventory database nosuchdriver://db/corpus"),
    (["--wheelhouse", os.path.dirname(__file__)], "{} is not empty and is not a corpus wheelhouse".format(
        os.path.dirname(__file__))),
])
def test_bad_input_is_one_sentence_and_changes_nothing(controller, extra, message):
    before = controller.options(), controller.pid()
    result = controller.init(*extra)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert (controller.options(), controller.pid()) == before


def test_a_changed_option_rewrites_the_config_and_restarts_the_master(controller):
    before = controller.pid()
    result = controller.init("--domain", "example.test", "--spare", "4")
    assert result.returncode == 0, result.stderr
    assert "restarted" in result.stdout
    assert controller.options()["corpus"]["domain"] == "example.test"
    assert controller.options()["corpus"]["lxc"]["spare"] == 4
    assert controller.pid() not in (None, before)
    result = run("salt-run", "-c", controller.config_dir, "mc_jobs.status", "1")
    assert "No job 1 in the inventory." in result.stdout


def test_the_ext_pillar_serves_a_minion_its_row_and_nothing_else(controller, minion):
    url = controller.options()["corpus"]["db_url"]
    with db.session(url) as sess:
        sess.add(Pillar(minion_id=MINION_ID, data=ROW))
        sess.add(Pillar(minion_id="other.corpus.test", data={"corpus": {"env": "other"}}))
    try:
        assert minion_pillar(controller, minion)["corpus"] == ROW["corpus"]
        with db.session(url) as sess:
            sess.execute(delete(Pillar).where(Pillar.minion_id == MINION_ID))
        assert "corpus" not in minion_pillar(controller, minion)
    finally:
        with db.session(url) as sess:
            sess.execute(delete(Pillar))


def test_init_with_a_postgresql_inventory_migrates_it_and_serves_its_pillar(
        controller, minion, postgresql_url):  # noqa: F811
    password = make_url(postgresql_url).password
    result = controller.init("--db", postgresql_url)
    assert result.returncode == 0, result.stderr
    assert "restarted" in result.stdout and "(revision {})".format(db.head_revision()) in result.stdout
    assert password not in result.stdout + result.stderr
    assert db.current_revision(postgresql_url) == db.head_revision()
    with db.session(postgresql_url) as sess:
        sess.add(Pillar(minion_id=MINION_ID, data={"corpus": {"env": "web", "inventory": "postgresql"}}))
    assert minion_pillar(controller, minion)["corpus"] == {"env": "web", "inventory": "postgresql"}
    result = run("salt-run", "-c", controller.config_dir, "mc_jobs.status", "1")
    assert "No job 1 in the inventory." in result.stdout
    result = run("corpus-controller", "status", "--root", controller.root)
    assert "revision {}".format(db.head_revision()) in result.stdout and password not in result.stdout


@pytest.mark.needs("root", "postgresql")  # the inventory the test above moved to PostgreSQL
def test_secrets_in_a_postgresql_inventory_are_encrypted_and_rotated(controller):
    url = controller.options()["corpus"]["db_url"]
    assert make_url(url).get_backend_name() == "postgresql"
    key = os.path.join(controller.root, "etc", "corpus", "secrets.key")
    with secrets_crypto.writing(key) as keyring, db.session(url) as sess:
        secrets_crypto.put(sess, keyring, "env:t", "root_password", "PgPassw0rd")
    before = raw_secrets(url)
    assert before["root_password"].startswith("fernet:") and "PgPassw0rd" not in before["root_password"]
    result = run("corpus-controller", "rotate-key", "--root", controller.root)
    assert result.returncode == 0, result.stderr
    after = raw_secrets(url)
    assert after["root_password"] != before["root_password"]
    with db.session(url) as sess:
        assert secrets_crypto.values(sess, secrets_crypto.load(key), "env:t") == {"root_password": "PgPassw0rd"}


def test_status_and_stop(controller):
    result = run("corpus-controller", "status", "--root", controller.root)
    assert result.returncode == 0 and "salt-master: running (pid {}".format(controller.pid()) in result.stdout
    result = run("corpus-controller", "stop", "--root", controller.root)
    assert result.returncode == 0 and "salt-master: stopped" in result.stdout
    assert controller.pid() is None
    assert processes_of(controller) == []
    result = run("corpus-controller", "status", "--root", controller.root)
    assert result.returncode == 1 and "salt-master: stopped" in result.stdout
    result = run("corpus-controller", "stop", "--root", controller.root)
    assert result.returncode == 0 and "not running" in result.stdout


def test_status_of_a_root_without_a_controller_is_one_sentence(tmp_path):
    result = run("corpus-controller", "status", "--root", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "No controller in {0}: run corpus-controller init --root {0} first.".format(
        tmp_path)


# --------------------------------------------------------------------------- the ext_pillar alone

def load_ext_pillar(opts):
    spec = importlib.util.spec_from_file_location(
        "corpus_inventory_under_test", os.path.join(resources.resource_path("_pillar"),
                                                    "corpus_inventory.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = opts
    # Only to the test's capture: Salt's import-time stderr handler may hold
    # the stream of a test that has ended.
    module.log.propagate = False
    return module


def test_salt_finds_the_ext_pillar_through_the_entry_point(tmp_path):
    import salt.config
    import salt.loader

    opts = salt.config.master_config(None)
    opts.update(cachedir=str(tmp_path), extension_modules=str(tmp_path / "extmods"))
    pillars = salt.loader.pillars(opts, {})
    assert "corpus_inventory" in pillars


def test_an_unreachable_inventory_serves_nothing_and_logs_one_line(caplog):
    port = free_ports(1)[0]
    for opts, logged in (
            ({"corpus": {"db_url": "postgresql+psycopg2://corpus:pw-s3cr3t@{}:{}/corpus".format(
                LOOPBACK, port)}}, "cannot read the pillar of {}".format(MINION_ID)),
            ({"corpus": {"db_url": 5}}, "corpus:db_url must be a string")):
        module = load_ext_pillar(opts)
        module.log.addHandler(caplog.handler)
        assert module.ext_pillar(MINION_ID, {}) == {}
        assert logged in caplog.text
    assert "pw-s3cr3t" not in caplog.text
    assert len(caplog.records) == 2 and all(record.levelname == "ERROR" for record in caplog.records)


# --------------------------------------------------------------------------- the wheelhouse

def test_the_wheelhouse_installs_corpus_and_salt_with_no_index(tmp_path):
    wheels = lxc_cache.wheelhouse()
    corpus_wheels = [name for name in os.listdir(wheels) if name.startswith("corpus-")]
    assert len(corpus_wheels) == 1
    built = os.stat(os.path.join(wheels, corpus_wheels[0])).st_mtime_ns
    assert wheelhouse.ensure_wheelhouse(wheels) == wheels  # current: nothing rebuilt
    assert os.stat(os.path.join(wheels, corpus_wheels[0])).st_mtime_ns == built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--find-links", wheels, "corpus"],
        capture_output=True, text=True, timeout=600, check=False)
    assert install.returncode == 0, install.stderr
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import mc_project, salt.version, sqlalchemy, psycopg2, paramiko; "
         "from mc_project import resources; import os; "
         "print(mc_project.__version__, salt.version.__version__, "
         "os.path.isfile(os.path.join(resources.resource_path('_pillar'), 'corpus_inventory.py')))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert probe.stdout.split() == [__version__, "3008.3", "True"], probe.stderr
