"""The common mapping that describes one project (``mc_project.settings NAME``).

Built once per run, from lowest to highest precedence:

1. built-in defaults (``DEFAULTS``),
2. env defaults (``ENV_DEFAULTS[env]``),
3. the project's ``.salt/PILLAR.sample`` (YAML),
4. the project's private pillar (``pillar/init.sls`` from ``git/pillar.git``),
5. Salt pillar ``makina-projects:NAME``,
6. call arguments.

Then ``{var}`` references inside strings are resolved against the mapping itself
(dotted paths such as ``{paths.data}`` or ``{data.db_name}``; ``{{`` and ``}}`` are
literal braces), and the result is validated. Every phase of a deploy receives this
same dict object, so a phase may add keys for the phases after it.
"""

import copy
import getpass
import hashlib
import json
import ipaddress
import os
import re
import zlib

import yaml

from mc_project.errors import CorpusError

ENVS = ("dev", "staging", "prod")
MODES = ("editable", "cooking", "final")
MODE_OF_ENV = {"dev": "editable", "staging": "cooking", "prod": "final"}

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BRANCH_RE = re.compile(r"^(?!.*\.\.)(?!/)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![/.])$")

DEFAULTS = {
    "env": "dev",
    "mode": "",  # empty: derived from env
    "deploy_branch": "main",
    "keep_releases": 5,
    "keep_failed": 5,
    "lock_timeout": 60,
    "port": 0,  # 0: a stable port derived from the name
    # Where the web process listens; a container's proxy on its node needs 0.0.0.0.
    "bind": "127.0.0.1",
    "environment": {},  # variables given to the app's processes (like config vars)
    "web": "",  # command of the web process; empty: Procfile "web:" or a static server
    "static_dir": "",  # for static sites; empty: public/ when present, else the tree root
    "health": {"path": "/", "timeout": 30, "status": 200},
    "bundle": {"source": ""},  # final mode: where bundles come from
    "editable_keep": [".venv", "node_modules", "__pycache__"],
    "data": {},
}

ENV_DEFAULTS = {
    "dev": {"health": {"timeout": 20}},
    "staging": {},
    "prod": {"health": {"timeout": 60}},
}

# Keys the engine computes; a pillar or argument cannot set them.
COMPUTED = ("name", "projects_root", "paths", "release_id", "commit", "app_root", "user")


def validate_name(name):
    """Refuse a project name that is not a safe directory name."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise CorpusError(
            "Project name {!r} is invalid: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.".format(name)
        )
    return name


def project_root(projects_root, name):
    """Directory of project ``name`` under ``projects_root``."""
    return os.path.join(os.path.abspath(projects_root), validate_name(name))


def project_paths(projects_root, name):
    """Every path of the project layout (see DESIGN.md)."""
    root = project_root(projects_root, name)
    return {
        "root": root,
        "project_git": os.path.join(root, "git", "project.git"),
        "pillar_git": os.path.join(root, "git", "pillar.git"),
        "project": os.path.join(root, "project"),
        "pillar": os.path.join(root, "pillar"),
        "build": os.path.join(root, "build"),
        "releases": os.path.join(root, "releases"),
        "current": os.path.join(root, "current"),
        "data": os.path.join(root, "data"),
        "snapshots": os.path.join(root, "snapshots"),
        "archives": os.path.join(root, "archives"),
        "bundles": os.path.join(root, "archives", "bundles"),
        "failed": os.path.join(root, "archives", "failed"),
        "history": os.path.join(root, "history.json"),
        "lock": os.path.join(root, ".deploy.lock"),
        "logs": os.path.join(root, "logs"),
        "supervisor": os.path.join(root, "supervisor"),
    }


def merge(base, override):
    """Deep merge: dicts merge key by key, anything else in ``override`` wins."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml_mapping(path, what):
    """Read a YAML mapping from ``path``; a missing file is an empty mapping."""
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line {}".format(mark.line + 1) if mark else ""
        raise CorpusError("{} {} is not valid YAML{}.".format(what, path, where)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CorpusError("{} {} must be a YAML mapping, not a {}.".format(
            what, path, type(loaded).__name__))
    return loaded


def pillar_hash(*layers):
    """A short, stable digest of the configuration layers a deploy used."""
    blob = json.dumps(layers, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def default_port(name):
    """A stable port in 20000-39999 derived from the name, so projects rarely collide."""
    return 20000 + zlib.crc32(name.encode()) % 20000


_REF_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _lookup(mapping, dotted):
    node = mapping
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(dotted)
    return node


def resolve_references(mapping):
    """Replace ``{dotted.key}`` references in every string of ``mapping``, in place.

    A string that is exactly one reference takes the referenced value with its type
    (so ``port: "{data.port}"`` stays an int). Unknown and cyclic references raise.
    """
    resolving = []

    def resolve_string(text, where):
        if "{" not in text and "}" not in text:
            return text
        whole = _REF_RE.fullmatch(text)
        if whole and whole.group(1) is not None:
            return resolve_key(whole.group(1).strip(), where)

        def substitute(match):
            if match.group(0) == "{{":
                return "{"
            if match.group(0) == "}}":
                return "}"
            value = resolve_key(match.group(1).strip(), where)
            if isinstance(value, (dict, list)):
                raise CorpusError("Reference {{{}}} in {} points to a {}, which cannot be "
                                  "put inside a string.".format(match.group(1), where,
                                                                type(value).__name__))
            return str(value)

        return _REF_RE.sub(substitute, text)

    def resolve_key(dotted, where):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", dotted):
            raise CorpusError("Reference {{{}}} in {} is not a dotted key name.".format(dotted, where))
        if dotted in resolving:
            chain = " -> ".join(resolving[resolving.index(dotted):] + [dotted])
            raise CorpusError("Settings reference a value through a cycle: {}.".format(chain))
        try:
            value = _lookup(mapping, dotted)
        except KeyError:
            raise CorpusError("Reference {{{}}} in {} names no known setting.".format(
                dotted, where)) from None
        resolving.append(dotted)
        try:
            return resolve_node(value, dotted)
        finally:
            resolving.pop()

    def resolve_node(node, where):
        if isinstance(node, str):
            return resolve_string(node, where)
        if isinstance(node, dict):
            for key in list(node):
                node[key] = resolve_node(node[key], "{}.{}".format(where, key) if where else key)
            return node
        if isinstance(node, list):
            for i, item in enumerate(node):
                node[i] = resolve_node(item, "{}[{}]".format(where, i))
            return node
        return node

    resolve_node(mapping, "")
    return mapping


def _validate(cfg):
    if cfg["env"] not in ENVS:
        raise CorpusError("Unknown env {!r}: use one of {}.".format(cfg["env"], ", ".join(ENVS)))
    if cfg["mode"] not in MODES:
        raise CorpusError("Unknown mode {!r}: use one of {}.".format(cfg["mode"], ", ".join(MODES)))
    for key, low in (("keep_releases", 1), ("keep_failed", 0), ("lock_timeout", 0)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise CorpusError("Setting {} must be a number of at least {}, not {!r}.".format(
                key, low, value))
    port = cfg["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise CorpusError("Setting port must be an integer between 1 and 65535, not {!r}.".format(port))
    try:
        ipaddress.ip_address(cfg["bind"])
    except (TypeError, ValueError):
        raise CorpusError("Setting bind must be an IP address, not {!r}.".format(cfg["bind"])) from None
    if not isinstance(cfg["deploy_branch"], str) or not BRANCH_RE.fullmatch(cfg["deploy_branch"]):
        raise CorpusError("Setting deploy_branch {!r} is not a valid branch name.".format(
            cfg["deploy_branch"]))
    if not isinstance(cfg["data"], dict):
        raise CorpusError("Setting data must be a mapping, not {!r}.".format(cfg["data"]))
    if not isinstance(cfg["health"], dict) or not str(cfg["health"].get("path", "")).startswith("/"):
        raise CorpusError("Setting health.path must be a URL path starting with '/'.")


def _check_layer(layer, what):
    if not isinstance(layer, dict):
        raise CorpusError("{} must be a mapping, not {!r}.".format(what, layer))
    for key in COMPUTED:
        if key in layer:
            raise CorpusError("{} sets {!r}, which corpus computes itself.".format(what, key))
    return layer


def build(name, projects_root, pillar=None, overrides=None, source_dir=None,
          private_pillar_dir=None, release_id=None, commit=None):
    """Build the common mapping of project ``name``.

    ``pillar`` is Salt pillar ``makina-projects:NAME``; ``overrides`` the call
    arguments; ``source_dir`` the tree whose ``.salt/PILLAR.sample`` applies (the
    one being deployed, else the live one); ``private_pillar_dir`` holds the
    project's private ``init.sls`` (default: the project's ``pillar/``).
    """
    validate_name(name)
    paths = project_paths(projects_root, name)
    if source_dir is None:
        source_dir = paths["current"]
    if private_pillar_dir is None:
        private_pillar_dir = paths["pillar"]
    sample = _check_layer(load_yaml_mapping(
        os.path.join(source_dir, ".salt", "PILLAR.sample"), "PILLAR.sample"), "PILLAR.sample")
    private = _check_layer(load_yaml_mapping(
        os.path.join(private_pillar_dir, "init.sls"), "Private pillar"), "Private pillar")
    salt_pillar = _check_layer(pillar or {}, "Pillar makina-projects:{}".format(name))
    args = _check_layer(overrides or {}, "Call arguments")

    layers = [sample, private, salt_pillar, args]
    env = DEFAULTS["env"]
    for layer in layers:
        env = layer.get("env", env)
    if env not in ENVS:
        raise CorpusError("Unknown env {!r}: use one of {}.".format(env, ", ".join(ENVS)))

    cfg = merge(DEFAULTS, ENV_DEFAULTS[env])
    for layer in layers:
        cfg = merge(cfg, layer)
    cfg.update({
        "name": name,
        "projects_root": os.path.abspath(projects_root),
        "paths": paths,
        "release_id": release_id or "",
        "commit": commit or "",
        "user": getpass.getuser(),
        "pillar_hash": pillar_hash(private, salt_pillar),
    })
    if not cfg["mode"]:
        cfg["mode"] = MODE_OF_ENV.get(cfg["env"], "")
    if not cfg["port"]:
        cfg["port"] = default_port(name)
    cfg["paths"]["release"] = os.path.join(paths["releases"], release_id) if release_id else ""
    cfg["paths"]["build_dir"] = os.path.join(paths["build"], release_id) if release_id else ""
    cfg["paths"]["snapshot"] = os.path.join(paths["snapshots"], release_id) if release_id else ""
    resolve_references(cfg)
    _validate(cfg)
    cfg["app_root"] = app_root(cfg)
    return cfg


def app_root(cfg):
    """Where the code of this deploy lives while phases run.

    editable: the checkout; cooking and final: the build dir until the release
    exists (the engine moves ``app_root`` to the release once it is made).
    """
    if cfg["mode"] == "editable":
        return cfg["paths"]["project"]
    return cfg["paths"]["build_dir"] or cfg["paths"]["current"]
