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
import os
import re
import zlib

import yaml

from mc_project.common.vocabulary import MODE_OF_ENV, PROJECT_NAME_RE as NAME_RE
from mc_project.errors import CorpusError
from mc_project.project import schema

ENVS = schema.ENVS
MODES = schema.MODES
BRANCH_RE = schema.BRANCH_RE

# The defaults live with the schema (mc_project.project.schema), which documents each key.
DEFAULTS = schema.defaults()
ENV_DEFAULTS = schema.ENV_DEFAULTS

# Keys the engine computes; a pillar or argument cannot set them.
COMPUTED = ("name", "projects_root", "paths", "release_id", "commit", "app_root", "user",
            "pillar_hash")


def validate_name(name):
    """Refuse a project name that is not a safe directory name."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise CorpusError(
            f"Project name {name!r} is invalid: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
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
        # the deployed tree, kept between deploys: git rewrites only what a push changed
        "checkout": os.path.join(root, "cache", "checkout"),
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
    if os.path.isdir(path):
        raise CorpusError(f"{what} {path} is a directory, not a YAML file.")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise CorpusError(f"{what} {path} is not UTF-8 text (line {line}).") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CorpusError(f"{what} {path} is not valid YAML{where}.") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CorpusError(f"{what} {path} must be a YAML mapping, not a {type(loaded).__name__}.")
    return loaded


def pillar_hash(*layers):
    """A short, stable digest of the configuration layers a deploy used."""
    blob = json.dumps(layers, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# Below the kernel's ephemeral ports (32768-60999 by default): an outgoing connection
# takes its local port there, and could hold a project's port when its front binds.
DERIVED_PORTS = range(20000, 32000)


def default_port(name):
    """A stable port in 20000-31999 derived from the name, so projects rarely collide."""
    return DERIVED_PORTS.start + zlib.crc32(name.encode()) % len(DERIVED_PORTS)


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
                kind = type(value).__name__
                raise CorpusError(f"Reference {{{match.group(1)}}} in {where} points to a {kind}, "
                                  "which cannot be put inside a string.")
            return str(value)

        return _REF_RE.sub(substitute, text)

    def resolve_key(dotted, where):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", dotted):
            raise CorpusError(f"Reference {{{dotted}}} in {where} is not a dotted key name.")
        if dotted in resolving:
            chain = " -> ".join(resolving[resolving.index(dotted):] + [dotted])
            raise CorpusError(f"Settings reference a value through a cycle: {chain}.")
        try:
            value = _lookup(mapping, dotted)
        except KeyError:
            raise CorpusError(
                f"Reference {{{dotted}}} in {where} names no known setting.") from None
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
                node[key] = resolve_node(node[key], f"{where}.{key}" if where else key)
            return node
        if isinstance(node, list):
            for i, item in enumerate(node):
                node[i] = resolve_node(item, f"{where}[{i}]")
            return node
        return node

    resolve_node(mapping, "")
    return mapping


def _validate(cfg):
    """Check every setting a user may write against the schema; one sentence if one is bad."""
    schema.validate(cfg, ignore=COMPUTED)


def _derive(cfg):
    """Fill the settings whose empty value means "derived": mode from env, port from name."""
    if cfg["mode"] == "":
        cfg["mode"] = MODE_OF_ENV.get(cfg["env"], "")
    port = cfg["port"]
    if isinstance(port, int) and not isinstance(port, bool) and port == 0:
        cfg["port"] = default_port(cfg["name"])


def _check_layer(layer, what):
    if not isinstance(layer, dict):
        raise CorpusError(f"{what} must be a mapping, not {layer!r}.")
    for key in COMPUTED:
        if key in layer:
            raise CorpusError(f"{what} sets {key!r}, which corpus computes itself.")
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
    salt_pillar = _check_layer(pillar or {}, f"Pillar makina-projects:{name}")
    args = _check_layer(overrides or {}, "Call arguments")

    layers = [sample, private, salt_pillar, args]
    env = DEFAULTS["env"]
    for layer in layers:
        env = layer.get("env", env)
    schema.validate({"env": env})  # the env picks the env defaults: check it first

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
    _derive(cfg)
    cfg["paths"]["release"] = os.path.join(paths["releases"], release_id) if release_id else ""
    cfg["paths"]["build_dir"] = os.path.join(paths["build"], release_id) if release_id else ""
    cfg["paths"]["snapshot"] = os.path.join(paths["snapshots"], release_id) if release_id else ""
    resolve_references(cfg)
    _validate(cfg)
    _derive(cfg)  # again: a reference may have resolved to an empty mode or port 0
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
