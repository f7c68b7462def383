"""``corpus-controller``: set up, inspect and stop a controller (a salt-master).

``corpus-controller init --root DIR`` writes ``DIR/etc/salt/master`` (every
path of the master under DIR: Salt prefixes ``root_dir`` to its own paths),
creates or migrates the inventory, builds the wheelhouse nodes are installed
from, and starts the master. Running it again is harmless: options not given
keep their earlier values, the configuration is written only when it changes
(and a running master is then restarted), a running master is not started
twice. Bad input is one sentence, exit status 2, and changes nothing; so is
a path this user cannot write (the root, the configuration, the master's
log, cache, sockets and keys, the secrets key, the inventory file, a
wheelhouse that needs building), checked before anything is written. A
failure while applying it (database, wheelhouse, master) is exit status 1.
No error is ever a traceback.

``init`` also writes the REST API's settings (the master option ``corpus_api``:
bind address, port, TLS, LDAP, token lifetime) and starts ``corpus-api`` beside
the master; with no LDAP and no user yet it creates tenant ``default``'s
``admin``, whose generated password it prints once (and keeps 0600 in
``<root>/admin-password``). ``corpus-controller user add NAME --tenant T --role R``
adds a local user (password from stdin or a prompt).
"""

import argparse
import errno
import getpass
import importlib.util
import ipaddress
import os
import shutil
import secrets
import signal
import socket
import subprocess
import sys
import time

import alembic.util.exc
import psutil
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mc_project import resources
from mc_project.api import process as api_process
from mc_project.common.ports import port_in_use
from mc_project.common.processes import running_process
from mc_project.api import settings as api_settings
from mc_project.controller import wheelhouse
from mc_project.controller.config import ROOT_DB, controller_settings
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# An OSError with one of these is this user's lack of rights: exit status 2.
NOT_PERMITTED = (errno.EACCES, errno.EPERM, errno.EROFS)

CONFIG = os.path.join("etc", "salt", "master")
PIDFILE = os.path.join("var", "run", "salt-master.pid")
LOG_FILE = os.path.join("var", "log", "salt", "master")
SOCK_DIR = os.path.join("var", "run", "salt", "master")
CACHEDIR = os.path.join("var", "cache", "salt", "master")
PKI_DIR = os.path.join("etc", "salt", "pki", "master")
# The master's unix sockets live in SOCK_DIR; their paths are limited to
# 107 bytes and the longest name Salt gives one is about 24.
LONGEST_SOCKET_NAME = 24
UNIX_PATH_MAX = 107

DEFAULT_INTERFACE = "0.0.0.0"
DEFAULT_PUBLISH_PORT = 4505
DEFAULT_RET_PORT = 4506
# Where an API key can come from instead of the command line (seen by ps).
DNS_KEY_ENV = "CORPUS_DNS_KEY"
LDAP_PASSWORD_ENV = "CORPUS_LDAP_BIND_PASSWORD"
ADMIN_PASSWORD_FILE = "admin-password"
# What the REST API needs beyond the controller (setup.py's extra "api").
API_MODULES = ("fastapi", "uvicorn", "ldap3", "argon2")

START_TIMEOUT = 60
STOP_TIMEOUT = 30


class BadInput(CorpusError):
    """Input refused before anything changed."""


# --------------------------------------------------------------------------- configuration

def master_config(root, corpus, interface=DEFAULT_INTERFACE, publish_port=DEFAULT_PUBLISH_PORT,
                  ret_port=DEFAULT_RET_PORT):
    """The salt-master options of a controller rooted at ``root``.

    ``corpus`` is the ``corpus:`` mapping (see ``config.controller_settings``).
    The state tree is the root's ``srv/salt`` (the operator's states, top
    file) then corpus's own.
    """
    return {
        "root_dir": root,
        "interface": interface,
        "publish_port": publish_port,
        "ret_port": ret_port,
        "file_roots": {"base": [os.path.join(root, "srv", "salt"), resources.salt_tree()]},
        "pillar_roots": {"base": [os.path.join(root, "srv", "pillar")]},
        "ext_pillar": [{"corpus_inventory": {}}],
        # Never the master's options (the DNS API key among them) in a minion's pillar.
        "pillar_opts": False,
        # Runner returns (mc_cloud.credentials answers a password and a private key)
        # stay out of the job cache (salt.client.mixins reads <class>_returns).
        "runner_returns": False,
        "corpus": dict(corpus, root=root),
    }


def config_path(root):
    return os.path.join(root, CONFIG)


def read_master_config(root):
    """The options in ``root``'s master configuration, or None when there is none."""
    path = config_path(root)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            options = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput("Cannot read the controller configuration {}: {}.".format(
            path, type(exc).__name__)) from exc
    if not isinstance(options, dict):
        raise BadInput("The controller configuration {} is not a mapping.".format(path))
    return options


def render(options):
    return "# Written by corpus-controller init; rerun it to change this file.\n" + yaml.safe_dump(
        options, default_flow_style=False, sort_keys=True)


def write_if_changed(path, text):
    """Write ``text`` to ``path`` (mode 0600: it holds the DNS API key); say if it changed."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".new"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as fh:
        fh.write(text)
    os.replace(temporary, path)
    return True


# --------------------------------------------------------------------------- input

def _port(value):
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("{} is not a port (1-65535)".format(value))
    return port


def _address(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise argparse.ArgumentTypeError("{} is not an IP address".format(value)) from None


def _smtp(value):
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "25")
    host = host.strip("[]")
    if not host:
        raise argparse.ArgumentTypeError("{} is not HOST:PORT".format(value))
    return {"host": host, "port": _port(port)}


def _safe_url(url):
    try:
        return make_url(db.normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # pylint: disable=broad-except
        return "(unreadable URL)"


def _first_line(exc):
    """The driver's own first line: statements and their parameters stay out."""
    reason = getattr(exc, "orig", None) or exc
    return (str(reason).strip().splitlines() or [type(reason).__name__])[0].rstrip(".")


def written_paths(root, settings):
    """``(what, path)`` of every path ``init`` writes, or the salt-master it starts does."""
    paths = [("controller root", root),
             ("master configuration", config_path(root)),
             ("master log", os.path.join(root, LOG_FILE)),
             ("master pid file", os.path.join(root, PIDFILE)),
             ("master sockets directory", os.path.join(root, SOCK_DIR)),
             ("master cache", os.path.join(root, CACHEDIR)),
             ("master keys directory", os.path.join(root, PKI_DIR)),
             ("state tree", os.path.join(root, "srv", "salt")),
             ("pillar tree", os.path.join(root, "srv", "pillar")),
             ("secrets key", settings["secrets_key"])]
    url = make_url(settings["db_url"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        paths.append(("inventory", os.path.abspath(url.database)))
    return paths


def check_writable(root, settings):
    """Refuse, in one sentence, a path ``init`` would write that this user cannot."""
    for what, path in written_paths(root, settings):
        blocked = wheelhouse.unwritable(path)
        if blocked:
            if os.path.commonpath([root, path]) == root:
                advice = "choose another --root or run corpus-controller as a user who can write it"
            elif what == "inventory":
                advice = "choose another --db or run corpus-controller as a user who can write it"
            else:
                advice = "run corpus-controller as a user who can write it"
            raise BadInput("Cannot write the {} {}: {}; {}.".format(what, path, blocked, advice))
    try:
        wheelhouse.check_writable(settings["wheelhouse"])
    except wheelhouse.NotWritable as exc:
        raise BadInput(str(exc)) from exc


def _sock_dir_fits(root):
    return len(os.path.join(root, SOCK_DIR)) + 1 + LONGEST_SOCKET_NAME <= UNIX_PATH_MAX


def plan(args):
    """The master options ``init`` should write, from ``args`` over what is there.

    Checks everything; changes nothing.
    """
    root = os.path.abspath(args.root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise BadInput("The controller root {} is not a directory.".format(root))
    if not _sock_dir_fits(root):
        raise BadInput("The controller root {} is too long for the master's unix sockets; "
                       "use a path of at most {} characters.".format(
                           root, UNIX_PATH_MAX - LONGEST_SOCKET_NAME - len(SOCK_DIR) - 2))
    current = read_master_config(root) or {}
    corpus = dict(current.get("corpus") or {})
    corpus.pop("root", None)
    if args.db is not None:
        try:
            corpus["db_url"] = db.normalize_url(args.db)
        except CorpusError as exc:
            raise BadInput(str(exc)) from exc
    for key, value in (("domain", args.domain), ("master_address", args.master_address),
                       ("wheelhouse", args.wheelhouse and os.path.abspath(args.wheelhouse))):
        if value is not None:
            corpus[key] = value
    dns_key = args.dns_key if args.dns_key is not None else os.environ.get(DNS_KEY_ENV)
    if args.dns_api is not None or dns_key is not None:
        corpus["dns"] = dict(corpus.get("dns") or {})
        if args.dns_api is not None:
            corpus["dns"]["api_url"] = args.dns_api
        if dns_key is not None:
            corpus["dns"]["api_key"] = dns_key
    if args.smtp is not None:
        corpus["smtp"] = dict(corpus.get("smtp") or {}, **args.smtp)
    if args.spare is not None:
        corpus["lxc"] = dict(corpus.get("lxc") or {}, spare=args.spare)
    options = master_config(
        root, corpus,
        interface=args.interface or current.get("interface", DEFAULT_INTERFACE),
        publish_port=args.publish_port or current.get("publish_port", DEFAULT_PUBLISH_PORT),
        ret_port=args.ret_port or current.get("ret_port", DEFAULT_RET_PORT))
    if options["publish_port"] == options["ret_port"]:
        raise BadInput("The publish port and the return port must differ.")
    options[api_settings.OPTION] = plan_api(args, current.get(api_settings.OPTION))
    try:
        settings = controller_settings({"corpus": options["corpus"],
                                        "cachedir": os.path.join(root, CACHEDIR)})
        if make_url(settings["db_url"]).get_backend_name() != "sqlite":
            db.engine(settings["db_url"])  # a known driver (SQLite's engine makes directories)
        wheelhouse.check_destination(settings["wheelhouse"])
    except CorpusError as exc:
        raise BadInput(str(exc)) from exc
    check_writable(root, settings)
    # Written out, so that any reader of the master's options finds the same ones.
    options["corpus"].update(db_url=settings["db_url"], wheelhouse=settings["wheelhouse"])
    return options, settings


def _group_grant(value):
    group, _, grant = value.partition("=")
    tenant, _, role = grant.partition(":")
    if not group or not tenant or not role:
        raise argparse.ArgumentTypeError("{} is not GROUP=TENANT:ROLE".format(value))
    return group, {"tenant": tenant, "role": role}


def plan_api(args, current):
    """The ``corpus_api`` settings ``init`` writes: ``args`` over what is there, checked."""
    given = dict(current or {})
    for key, value in (("port", args.api_port), ("bind", args.api_bind), ("token_hours", args.token_hours),
                       ("tls_cert", args.api_cert and os.path.abspath(args.api_cert)),
                       ("tls_key", args.api_key and os.path.abspath(args.api_key))):
        if value is not None:
            given[key] = value
    ldap_args = {"url": args.ldap_url, "user_dn": args.ldap_user_dn, "search_base": args.ldap_search_base,
                 "search_filter": args.ldap_search_filter, "bind_dn": args.ldap_bind_dn,
                 "group_base": args.ldap_group_base, "bind_password": os.environ.get(LDAP_PASSWORD_ENV)}
    if args.ldap_group:
        ldap_args["groups"] = dict(args.ldap_group)
    if any(value is not None for value in ldap_args.values()):
        given["ldap"] = dict(given.get("ldap") or {}, **{k: v for k, v in ldap_args.items() if v is not None})
    try:
        api_settings.api_settings({api_settings.OPTION: given})
    except CorpusError as exc:
        raise BadInput(str(exc)) from exc
    for what in ("tls_cert", "tls_key"):
        if given.get(what) and not os.path.isfile(given[what]):
            raise BadInput("The API's TLS {} {} is not a file.".format(what[4:], given[what]))
    return given


def api_available():
    """Whether the REST API's packages are installed (``pip install corpus[api]``)."""
    return all(importlib.util.find_spec(name) is not None for name in API_MODULES)


# --------------------------------------------------------------------------- the master

def _salt_script(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if not found:
        raise CorpusError("{} is not installed beside corpus.".format(name))
    return found


def master_process(root):
    """The running salt-master of ``root`` (a ``psutil.Process``), or None."""
    return running_process(os.path.join(root, PIDFILE), "salt-master")


def _connect_address(interface):
    address = ipaddress.ip_address(interface)
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "::1"
    return str(address)


def _answers(address, port):
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def start_master(root, options):
    """Start ``root``'s salt-master and wait until its ports answer."""
    daemon = subprocess.run(
        [_salt_script("salt-master"), "-c", os.path.dirname(config_path(root)), "-d"],
        check=False, capture_output=True, text=True, timeout=START_TIMEOUT)
    if daemon.returncode != 0:
        reason = (daemon.stderr.strip().splitlines() or ["exit status {}".format(daemon.returncode)])[-1]
        raise CorpusError("The salt-master did not start: {}.".format(reason.rstrip(".")))
    address = _connect_address(options["interface"])
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        process = master_process(root)
        if process and _answers(address, options["ret_port"]) and _answers(
                address, options["publish_port"]):
            return process.pid
        time.sleep(0.2)
    stop_master(root)
    raise CorpusError("The salt-master did not start; see {}.".format(os.path.join(root, LOG_FILE)))


def stop_master(root):
    """Stop ``root``'s salt-master and its workers; say whether one was running."""
    process = master_process(root)
    if process is None:
        return False
    try:
        workers = process.children(recursive=True)
        process.terminate()
    except psutil.AccessDenied as exc:
        raise BadInput("The salt-master of {} (pid {}) belongs to another user; stop it as that "
                       "user.".format(root, process.pid)) from exc
    _, alive = psutil.wait_procs([process], timeout=STOP_TIMEOUT)
    for leftover in alive + [worker for worker in workers if worker.is_running()]:
        try:
            leftover.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(workers, timeout=STOP_TIMEOUT)
    return True


# --------------------------------------------------------------------------- file modes

def _private_directory(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def private_directories(root, settings):
    """0700 for what holds secrets: the master's cache (its job cache: every job's load and
    return) and the inventory's own directory; 0600 for the SQLite file."""
    cachedir = os.path.join(root, CACHEDIR)
    _private_directory(cachedir)
    _private_directory(os.path.join(cachedir, "jobs"))
    url = make_url(settings["db_url"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = os.path.abspath(url.database)
        db.private_sqlite_file(database)
        # Only a directory corpus chose: a --db path may sit in a shared one.
        if database in (os.path.join(root, ROOT_DB), db.default_url(cachedir)[len("sqlite:///"):]):
            _private_directory(os.path.dirname(database))


# --------------------------------------------------------------------------- commands

def init(args, out):
    options, settings = plan(args)
    root = options["root_dir"]
    running = master_process(root)
    if running is None:
        for port in (options["publish_port"], options["ret_port"]):
            if port_in_use(options["interface"], port):
                raise BadInput("Port {} on {} is already in use.".format(port, options["interface"]))
    api = api_settings.api_settings(options)
    api_running = api_process.running(root)
    if api_running is None and args.api_port is not None and api_process.port_taken(api):
        raise BadInput("Port {} on {} is already in use; choose another with --api-port.".format(
            api["port"], api["bind"]))
    try:
        key_created = secrets_crypto.ensure_key(settings["secrets_key"])
        revision = db.init(settings["db_url"], secrets_key=settings["secrets_key"])
        encrypted = secrets_crypto.encrypt_leftovers(settings["db_url"], settings["secrets_key"])
    except OSError as exc:
        error = BadInput if exc.errno in NOT_PERMITTED else CorpusError
        what = exc.filename if exc.filename and not str(exc.filename).startswith(
            settings["secrets_key"]) else "the secrets key " + settings["secrets_key"]
        raise error("Cannot write {}: {}.".format(what, exc.strerror or type(exc).__name__)) from exc
    except SQLAlchemyError as exc:
        raise CorpusError("Cannot reach the inventory database {}: {}.".format(
            _safe_url(settings["db_url"]), _first_line(exc))) from exc
    except alembic.util.exc.CommandError as exc:  # e.g. a revision made by a newer corpus
        raise CorpusError("Cannot migrate the inventory database {}: {}.".format(
            _safe_url(settings["db_url"]), _first_line(exc))) from exc
    for directory in ("srv/salt", "srv/pillar"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    private_directories(root, settings)
    changed = write_if_changed(config_path(root), render(options))
    started = time.monotonic()
    wheels = wheelhouse.ensure_wheelhouse(settings["wheelhouse"])
    wheel_seconds = time.monotonic() - started
    if running is not None and changed:
        stop_master(root)
        running = None
        action = "restarted"
    else:
        action = "started"
    if running is None:
        pid = start_master(root, options)
    else:
        pid, action = running.pid, "already running"
    out("config: {} ({})".format(config_path(root), "written" if changed else "unchanged"))
    out("inventory: {} (revision {})".format(_safe_url(settings["db_url"]), revision))
    out("secrets key: {} ({}{})".format(settings["secrets_key"], "created" if key_created else "kept",
                                        ", {} secret(s) encrypted".format(encrypted) if encrypted else ""))
    out("wheelhouse: {} ({:.1f}s)".format(wheels, wheel_seconds))
    out("salt-master: {} (pid {}, {} ports {} and {})".format(
        action, pid, options["interface"], options["publish_port"], options["ret_port"]))
    if api_available():
        init_logins(root, settings, api, out)
        out("api: {}".format(ensure_api(root, api, api_running, changed)))
    else:
        out("api: not started (the REST API needs pip install 'corpus[api]')")
    return 0


def init_logins(root, settings, api, out):
    """Tenant ``default``; without LDAP and without any user, an ``admin`` whose password
    is printed once and kept 0600 in ``<root>/admin-password``."""
    from mc_project.api import users

    users.ensure_default(settings["db_url"])
    if api["ldap"] or users.any_user(settings["db_url"]):
        return
    password = secrets.token_urlsafe(18)
    path = os.path.join(root, ADMIN_PASSWORD_FILE)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    users.add_local_user(settings["db_url"], "admin", password, "default", "admin")
    out("admin: user admin of tenant default, password {} (also in {}; shown once)".format(password, path))


def ensure_api(root, api, running, config_changed):
    """Start (or restart, when the configuration changed) ``corpus-api``; what was done."""
    url = api_process.base_url(api)
    if running is not None and not config_changed:
        return "already running (pid {}, {})".format(running.pid, url)
    action = "started"
    if running is not None:
        api_process.stop(root)
        action = "restarted"
    if api_process.port_taken(api):
        return "not started: port {} on {} is already in use; choose another with --api-port".format(
            api["port"], api["bind"])
    pid = api_process.start(root, config_path(root), api)
    return "{} (pid {}, {}; log {})".format(action, pid, url, api_process.log_file(root))


def _existing_root(args):
    root = os.path.abspath(args.root)
    options = read_master_config(root)
    if options is None:
        raise BadInput("No controller in {}: run corpus-controller init --root {} first.".format(
            root, root))
    return root, options


def status(args, out):
    root, options = _existing_root(args)
    settings = controller_settings({"corpus": options.get("corpus"),
                                    "cachedir": os.path.join(root, CACHEDIR)})
    process = master_process(root)
    try:
        revision = db.current_revision(settings["db_url"])
    except SQLAlchemyError as exc:
        revision = "unreachable: {}".format(_first_line(exc))
    stamp = wheelhouse.read_stamp(settings["wheelhouse"])
    out("config: {}".format(config_path(root)))
    out("inventory: {} (revision {}, newest {})".format(
        _safe_url(settings["db_url"]), revision, db.head_revision()))
    out("wheelhouse: {} ({})".format(
        settings["wheelhouse"], "corpus {}".format(stamp["version"]) if stamp else "not built"))
    out("master address: {}".format(settings["master_address"]))
    api = api_process.running(root)
    try:
        url = api_process.base_url(api_settings.api_settings(options))
    except CorpusError:
        url = "settings not valid"
    out("api: {}".format("running (pid {}, {})".format(api.pid, url) if api else "stopped"))
    if process is None:
        out("salt-master: stopped")
        return EXIT_FAILED
    out("salt-master: running (pid {}, {} ports {} and {})".format(
        process.pid, options.get("interface"), options.get("publish_port"), options.get("ret_port")))
    return 0


def rotate_key(args, out):
    root, options = _existing_root(args)
    settings = controller_settings({"corpus": options.get("corpus"),
                                    "cachedir": os.path.join(root, CACHEDIR)})
    try:
        count = secrets_crypto.rotate(settings["db_url"], settings["secrets_key"])
    except SQLAlchemyError as exc:
        raise CorpusError("Cannot reach the inventory database {}: {}.".format(
            _safe_url(settings["db_url"]), _first_line(exc))) from exc
    out("secrets key: {} (new key; {} secret(s) re-encrypted, the old key dropped)".format(
        settings["secrets_key"], count))
    return 0


def stop(args, out):
    root, _ = _existing_root(args)
    out("api: {}".format("stopped" if api_process.stop(root) else "not running"))
    out("salt-master: {}".format("stopped" if stop_master(root) else "not running"))
    return 0


def _read_password(prompt_in):
    if not prompt_in.isatty():
        password = prompt_in.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise BadInput("The two passwords differ.")
    if not password:
        raise BadInput("The password must not be empty.")
    return password


def user_add(args, out, prompt_in=None):
    root, options = _existing_root(args)
    if not api_available():
        raise CorpusError("Local users are the REST API's: install corpus[api] first.")
    from mc_project.api import users

    settings = controller_settings({"corpus": options.get("corpus"),
                                    "cachedir": os.path.join(root, CACHEDIR)})
    password = _read_password(prompt_in or sys.stdin)
    try:
        created = users.add_local_user(settings["db_url"], args.name, password, args.tenant, args.role)
    except SQLAlchemyError as exc:
        raise CorpusError("Cannot reach the inventory database {}: {}.".format(
            _safe_url(settings["db_url"]), _first_line(exc))) from exc
    out("user {}: {} ({} of tenant {})".format(args.name, "created" if created else "updated", args.role,
                                               args.tenant))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one sentence and exit status 2."""

    def error(self, message):
        raise BadInput(message[0].upper() + message[1:].rstrip(".") + ".")


def parser():
    main_parser = _Parser(prog="corpus-controller",
                          description="Set up, inspect and stop a corpus controller (a salt-master).")
    commands = main_parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    init_parser = commands.add_parser("init", help="write the master config, create the inventory, "
                                                   "build the wheelhouse, start the master")
    init_parser.add_argument("--root", required=True, help="directory holding everything the controller keeps")
    init_parser.add_argument("--db", help="inventory URL (SQLAlchemy) or SQLite file path")
    init_parser.add_argument("--domain", help="environments are named <env>.<domain>")
    init_parser.add_argument("--dns-api", help="PowerDNS HTTP API URL")
    init_parser.add_argument("--dns-key", help="PowerDNS API key (or set {})".format(DNS_KEY_ENV))
    init_parser.add_argument("--smtp", type=_smtp, help="mail relay, HOST:PORT")
    init_parser.add_argument("--interface", type=_address, help="address the master listens on")
    init_parser.add_argument("--publish-port", type=_port)
    init_parser.add_argument("--ret-port", type=_port)
    init_parser.add_argument("--master-address", help="address minions reach the master at")
    init_parser.add_argument("--spare", type=int, metavar="N",
                             help="containers each node keeps ready for the next environments (default 1)")
    init_parser.add_argument("--wheelhouse", help="directory of the wheels shipped to nodes")
    init_parser.add_argument("--api-port", type=_port, help="the REST API's port (default {})".format(
        api_settings.DEFAULT_PORT))
    init_parser.add_argument("--api-bind", type=_address, help="the REST API's address (default {})".format(
        api_settings.DEFAULT_BIND))
    init_parser.add_argument("--api-cert", help="TLS certificate (PEM) of the REST API")
    init_parser.add_argument("--api-key", help="TLS private key (PEM) of the REST API")
    init_parser.add_argument("--token-hours", type=float, help="lifetime of a login's token (default 12)")
    init_parser.add_argument("--ldap-url", help="LDAP directory for logins, ldap://HOST[:PORT]")
    init_parser.add_argument("--ldap-user-dn", help="DN template of a user, e.g. uid={username},ou=people,dc=x")
    init_parser.add_argument("--ldap-search-base", help="where to search users (instead of a DN template)")
    init_parser.add_argument("--ldap-search-filter", help="search filter, default (uid={username})")
    init_parser.add_argument("--ldap-bind-dn", help="DN the search binds as (password in {})".format(
        LDAP_PASSWORD_ENV))
    init_parser.add_argument("--ldap-group-base", help="where the users' groups are")
    init_parser.add_argument("--ldap-group", action="append", type=_group_grant, metavar="GROUP=TENANT:ROLE",
                             help="members of GROUP (cn or DN) get ROLE (viewer, deployer, admin) in TENANT")
    for name, text in (("status", "say whether the master runs and what it uses"),
                       ("stop", "stop the master"),
                       ("rotate-key", "encrypt every secret with a new key and drop the old one")):
        commands.add_parser(name, help=text).add_argument("--root", required=True)
    user_parser = commands.add_parser("user", help="local users of the REST API")
    user_commands = user_parser.add_subparsers(dest="user_command", required=True, parser_class=_Parser)
    add_parser = user_commands.add_parser("add", help="add or update a local user (password from stdin "
                                                      "or a prompt)")
    add_parser.add_argument("name")
    add_parser.add_argument("--root", required=True)
    add_parser.add_argument("--tenant", default="default")
    add_parser.add_argument("--role", default="viewer", choices=("viewer", "deployer", "admin"))
    return main_parser


COMMANDS = {"init": init, "status": status, "stop": stop, "rotate-key": rotate_key, "user": user_add}


def main(argv=None):
    """Run ``corpus-controller``; return its exit status."""
    out = print
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command](args, out)
    except (BadInput, wheelhouse.NotWritable) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CorpusError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a path that changed under us since plan() checked it
        print(_os_error(exc), file=sys.stderr)
        return EXIT_BAD_INPUT if exc.errno in NOT_PERMITTED else EXIT_FAILED


def _os_error(exc):
    where = " ({})".format(exc.filename) if exc.filename else ""
    return "corpus-controller could not finish: {}{}.".format(
        exc.strerror or type(exc).__name__, where)


if __name__ == "__main__":
    sys.exit(main())
