"""The controller's settings: the master's ``corpus:`` option over defaults.

``controller_settings(opts)`` is what every controller part reads (runners,
the ext_pillar, ``corpus-controller``). Values a user wrote are checked here,
once: an unknown key or a wrong type is one sentence, never a traceback later.
Messages name the setting, never its value (``dns:api_key`` is a secret).
"""

import copy
import ipaddress
import os
import socket

import psutil

from mc_project.errors import CorpusError
from mc_project.inventory import db

DEFAULT_DOMAIN = "corpus.test"
DEFAULT_CACHEDIR = "/var/cache/salt/master"
DEFAULT_REDEPLOY_KEEP_HOURS = 24

# Where the inventory and the wheelhouse go under a controller root.
ROOT_DB = os.path.join("var", "lib", "corpus", "inventory.sqlite")
# The key the inventory's secrets are encrypted with: beside the master's configuration
# (<root>/etc/corpus, /etc/corpus), never in the database.
ROOT_SECRETS_KEY = os.path.join("etc", "corpus", "secrets.key")
SECRETS_KEY_NAME = os.path.join("corpus", "secrets.key")
WHEELHOUSE = "wheelhouse"

# Nested sections and their keys: (allowed types, default). A default of
# None means "no value" unless derived below (zone, sender).
SECTIONS = {
    "dns": {
        "api_url": ((str, type(None)), None),
        "api_key": ((str, type(None)), None),
        "server_id": ((str,), "localhost"),
        "zone": ((str,), None),  # <domain>.
        "ttl": ((int,), 300),
    },
    "smtp": {
        "host": ((str, type(None)), None),
        "port": ((int,), 25),
        "sender": ((str,), None),  # corpus@<fqdn>
        "timeout": ((int, float), 10),
    },
    "lxc": {
        "mirror": ((str,), "http://deb.debian.org/debian"),
        "suite": ((str,), "bookworm"),
        "disk_size_mb": ((int,), 2048),
        # How many containers each node keeps ready for the next environments (node/spares.py):
        # a number, or true (1) or false (0).
        "spare": ((bool, int), 1),
    },
}
TOP_LEVEL = {
    "root": (str, type(None)),
    "db_url": (str, type(None)),
    "master_address": (str, type(None)),
    "wheelhouse": (str, type(None)),
    "secrets_key": (str, type(None)),
    "domain": (str,),
    # How long a redeployed environment's old container is kept, stopped, before it is destroyed.
    "redeploy_keep_hours": (int, float, type(None)),
}
POSITIVE = {"dns:ttl", "smtp:timeout", "lxc:disk_size_mb"}
# Settings counted as a whole number from 0 up to this (true and false are 1 and 0).
COUNTS = {"lxc:spare": 32}
PORTS = {"smtp:port"}

TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
              type(None): "empty"}


def local_ipv4():
    """The first non-loopback IPv4 address of this host.

    The address the host would send from towards the outside comes first
    (a UDP "connect" sends nothing); without a route out, the first address
    of an interface that is up.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never reached
            address = probe.getsockname()[0]
        except OSError:
            address = None
    if address and not ipaddress.ip_address(address).is_loopback:
        return address
    stats = psutil.net_if_stats()
    for name, addresses in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for entry in addresses:
            if entry.family == socket.AF_INET and not ipaddress.ip_address(entry.address).is_loopback:
                return entry.address
    raise CorpusError("This host has no IPv4 address other than loopback; set corpus:master_address.")


def _check_type(name, value, types):
    # bool is an int to Python, never to a user.
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        wanted = " or ".join(TYPE_NAMES[kind] for kind in types)
        raise CorpusError("The controller setting corpus:{} must be {}, not {}.".format(
            name, wanted, type(value).__name__))


def _check_value(name, value):
    if name in PORTS and not 1 <= value <= 65535:
        raise CorpusError("The controller setting corpus:{} must be a port between 1 and 65535.".format(
            name))
    if name in COUNTS and not 0 <= value <= COUNTS[name]:
        raise CorpusError("The controller setting corpus:{} must be a number from 0 to {}.".format(
            name, COUNTS[name]))
    if name in POSITIVE and value <= 0:
        raise CorpusError("The controller setting corpus:{} must be positive.".format(name))


def _check_domain(domain):
    labels = domain.rstrip(".").split(".")
    if not domain or not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            and not label.startswith("-") and not label.endswith("-") for label in labels):
        raise CorpusError("The controller setting corpus:domain must be a DNS domain name.")


def _given(opts):
    given = opts.get("corpus") or {}
    if not isinstance(given, dict):
        raise CorpusError("The master option corpus must be a mapping.")
    return given


def _default_db_url(opts, root):
    if root:
        return "sqlite:///" + os.path.join(root, ROOT_DB)
    return db.default_url(opts.get("cachedir") or DEFAULT_CACHEDIR)


def _default_secrets_key(opts, root):
    if root:
        return os.path.join(root, ROOT_SECRETS_KEY)
    if opts.get("conf_file"):  # /etc/salt/master -> /etc/corpus/secrets.key
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(opts["conf_file"]))),
                            SECRETS_KEY_NAME)
    return os.path.join(opts.get("cachedir") or DEFAULT_CACHEDIR, SECRETS_KEY_NAME)


def inventory_url(opts):
    """Just the inventory's URL: what the ext_pillar needs on every pillar compile."""
    given = _given(opts)
    for key in ("root", "db_url"):
        _check_type(key, given.get(key), TOP_LEVEL[key])
    return given.get("db_url") or _default_db_url(opts, given.get("root"))


def _check_host(name, host):
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        _check_domain(host)
    except CorpusError:
        raise CorpusError("The controller setting corpus:{} must be an IP address or a host name.".format(
            name)) from None


def controller_settings(opts):
    """The ``corpus:`` master option merged over the defaults, checked.

    Raises ``CorpusError`` (one sentence) for an unknown key or a wrong type.
    """
    given = _given(opts)
    for key in given:
        if key not in TOP_LEVEL and key not in SECTIONS:
            raise CorpusError("Unknown controller setting corpus:{}.".format(key))
    settings = {}
    for key, types in TOP_LEVEL.items():
        value = given.get(key)
        if key == "domain" and value is None:
            value = DEFAULT_DOMAIN
        _check_type(key, value, types)
        settings[key] = value
    for section, keys in SECTIONS.items():
        values = given.get(section) or {}
        if not isinstance(values, dict):
            raise CorpusError("The controller setting corpus:{} must be a mapping.".format(section))
        merged = {}
        for key in values:
            if key not in keys:
                raise CorpusError("Unknown controller setting corpus:{}:{}.".format(section, key))
        for key, (types, default) in keys.items():
            value = copy.deepcopy(values.get(key, default))
            name = "{}:{}".format(section, key)
            if value is not None or type(None) in types:
                _check_type(name, value, types)
                _check_value(name, value)
            merged[key] = int(value) if name in COUNTS else value
        settings[section] = merged

    _check_domain(settings["domain"])
    if settings["master_address"] is not None:
        _check_host("master_address", settings["master_address"])
    root = settings["root"]
    for key in ("root", "wheelhouse", "secrets_key"):
        if settings[key] is not None and not os.path.isabs(settings[key]):
            raise CorpusError("The controller setting corpus:{} must be an absolute path.".format(key))
    if settings["db_url"] == "":
        raise CorpusError("The controller setting corpus:db_url must not be empty.")
    if settings["db_url"] is None:
        settings["db_url"] = _default_db_url(opts, root)
    if settings["wheelhouse"] is None:
        settings["wheelhouse"] = os.path.join(root or opts.get("cachedir") or DEFAULT_CACHEDIR,
                                              WHEELHOUSE)
    if settings["secrets_key"] is None:
        settings["secrets_key"] = _default_secrets_key(opts, root)
    if settings["master_address"] is None:
        settings["master_address"] = local_ipv4()
    if settings["redeploy_keep_hours"] is None:
        settings["redeploy_keep_hours"] = DEFAULT_REDEPLOY_KEEP_HOURS
    elif settings["redeploy_keep_hours"] < 0:
        raise CorpusError("The controller setting corpus:redeploy_keep_hours must be 0 or more.")
    if settings["dns"]["zone"] is None:
        settings["dns"]["zone"] = settings["domain"].rstrip(".") + "."
    if settings["smtp"]["sender"] is None:
        settings["smtp"]["sender"] = "corpus@" + socket.getfqdn()
    return settings
