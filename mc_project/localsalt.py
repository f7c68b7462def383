"""Configuration for a masterless ``salt-call --local`` that needs no root.

``write_minion_config`` lays out a self-contained Salt root under one
directory, so tests, the demo and developers can run the corpus modules with
``salt-call -c <base_dir>/etc/salt --local ...`` as any user, without touching
``/etc/salt`` or ``/var``.

Salt joins ``root_dir`` in front of its path options (``cachedir``,
``pki_dir``, ``sock_dir``, ``log_file``, ``extension_modules``, ``pidfile``)
unless the path already lies under ``root_dir``: an absolute path elsewhere,
``/var/log/x`` say, becomes ``<root_dir>/var/log/x``. Every such path written
here is absolute and under ``base_dir``, so it stays as written.
``pillar_roots`` and ``file_roots`` are never rewritten.
"""

import os
import pwd

import yaml

from mc_project import resources

DEFAULT_MINION_ID = "corpus-local"
PILLAR_SLS = "corpus"


def _merge(target, extra):
    """Merge mapping ``extra`` into ``target`` in place, recursing into mappings."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


def _write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=True)


def minion_options(base_dir, projects_root=None, extra=None):
    """Return the minion options ``write_minion_config`` writes, as a dict."""
    base_dir = os.path.abspath(base_dir)
    options = {
        "id": DEFAULT_MINION_ID,
        "root_dir": base_dir,
        # salt-call would try to switch to this user: keep it the caller.
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "file_client": "local",
        "pki_dir": os.path.join(base_dir, "etc", "salt", "pki", "minion"),
        "cachedir": os.path.join(base_dir, "var", "cache", "salt", "minion"),
        "extension_modules": os.path.join(base_dir, "var", "cache", "salt", "minion", "extmods"),
        "sock_dir": os.path.join(base_dir, "var", "run", "salt", "minion"),
        "pidfile": os.path.join(base_dir, "var", "run", "salt-minion.pid"),
        "log_file": os.path.join(base_dir, "var", "log", "salt", "minion"),
        "pillar_roots": {"base": [os.path.join(base_dir, "pillar")]},
        "file_roots": {"base": [os.path.join(base_dir, "srv", "salt"), resources.salt_tree()]},
        # Reverse DNS and lspci grains are slow and useless for a local run.
        "enable_fqdns_grains": False,
        "enable_gpu_grains": False,
    }
    if projects_root is not None:
        options["mc_project"] = {"projects_root": os.path.abspath(projects_root)}
    if extra:
        _merge(options, extra)
    return options


def write_minion_config(base_dir, projects_root=None, pillar=None, extra=None):
    """Write ``<base_dir>/etc/salt/minion`` for a masterless, non-root salt-call.

    ``projects_root`` becomes the minion option ``mc_project:projects_root``;
    ``pillar`` (a mapping) is served as the whole pillar through
    ``<base_dir>/pillar/{top,corpus}.sls``; ``extra`` options are merged last
    (mappings recursively) and win. Returns the configuration directory, to
    pass as ``salt-call -c``.
    """
    base_dir = os.path.abspath(base_dir)
    options = minion_options(base_dir, projects_root=projects_root, extra=extra)
    conf_dir = os.path.join(base_dir, "etc", "salt")

    for key in ("pki_dir", "cachedir", "extension_modules", "sock_dir"):
        os.makedirs(options[key], exist_ok=True)
    for key in ("log_file", "pidfile"):
        os.makedirs(os.path.dirname(options[key]), exist_ok=True)
    for roots in ("pillar_roots", "file_roots"):
        for paths in options.get(roots, {}).values():
            first = paths[0] if paths else None
            if first and first.startswith(base_dir + os.sep):
                os.makedirs(first, exist_ok=True)

    pillar_dir = options["pillar_roots"]["base"][0]
    if pillar_dir.startswith(base_dir + os.sep):
        _write_yaml(os.path.join(pillar_dir, "top.sls"), {"base": {"*": [PILLAR_SLS]}})
        _write_yaml(os.path.join(pillar_dir, PILLAR_SLS + ".sls"), dict(pillar or {}))

    os.makedirs(conf_dir, exist_ok=True)
    _write_yaml(os.path.join(conf_dir, "minion"), options)
    return conf_dir
