"""A release's processes, Heroku style: its ``Procfile``, else the settings' ``web``.

``web:`` serves HTTP on ``$PORT`` (behind the project's front); ``release:`` runs once
per deploy after the build, before traffic moves; every other type (``worker:``,
``clock:`` ...) runs under the supervisor beside ``web``, with the same environment.
"""

import os
import re
import shlex

from mc_project.errors import CorpusError

TYPE_RE = re.compile(r"[A-Za-z0-9_-]{1,30}")
RELEASE = "release"


def read(tree):
    """The Procfile of ``tree`` as {type: command}, in file order ({} without one)."""
    path = os.path.join(tree, "Procfile")
    if not os.path.isfile(path):
        return {}
    entries = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kind, sep, command = line.partition(":")
            kind, command = kind.strip(), command.strip()
            if not sep or not TYPE_RE.fullmatch(kind) or not command:
                raise CorpusError("Procfile line {} is not 'type: command' (a type is letters, digits, "
                                  "'_' or '-'): {!r}.".format(number, line[:80]))
            entries[kind] = command
    return entries


def static_server(cfg, tree):
    static = cfg.get("static_dir") or ("public" if os.path.isdir(os.path.join(tree, "public")) else ".")
    return "exec python3 -m http.server $PORT --bind $HOST --directory {}".format(shlex.quote(static))


def processes(cfg, tree):
    """{type: command} of the long-running processes: ``web`` first, then the others."""
    entries = read(tree)
    web = cfg.get("web") or entries.get("web") or static_server(cfg, tree)
    out = {"web": web}
    out.update((kind, command) for kind, command in entries.items() if kind not in ("web", RELEASE))
    return out


def release_command(tree):
    return read(tree).get(RELEASE)
