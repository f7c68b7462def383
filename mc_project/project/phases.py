"""Rendering and applying a phase.

A phase ``P`` is the SLS ``.salt/P.sls`` of the tree being deployed, or corpus's
default ``makina-projects/phases/P.sls``. It is a Jinja template (Jinja search path:
the project's ``.salt/`` first, then corpus's ``salt/`` tree, so a project can
``{% from "makina-projects/macros.jinja" import build with context %}``) rendered with
``cfg`` (the common mapping, the same object for every phase), ``phase``, ``salt``,
``grains``, ``pillar`` and ``opts``; the YAML it yields is a highstate that Salt's
``state.high`` applies. States run in the order they are written.
"""

import json
import os

import jinja2
import yaml

from mc_project import resources
from mc_project.errors import CorpusError

def sls_path(phase, source_dir):
    """The SLS that implements ``phase``: the project's own, else corpus's default."""
    own = os.path.join(source_dir, ".salt", "{}.sls".format(phase))
    if os.path.exists(own):
        return own
    return os.path.join(resources.salt_tree(), "makina-projects", "phases", "{}.sls".format(phase))


def _environment(source_dir):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([os.path.join(source_dir, ".salt"), resources.salt_tree()]),
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["yaml"] = lambda v: yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    env.filters["json"] = lambda v: json.dumps(v)
    return env


def render(phase, cfg, source_dir, salt_globals=None):
    """Render the phase to a highstate dict (empty when the phase has nothing to do)."""
    path = sls_path(phase, source_dir)
    where = os.path.relpath(path, source_dir) if path.startswith(source_dir) else \
        "corpus default makina-projects/phases/{}.sls".format(phase)
    env = _environment(source_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            template = env.from_string(fh.read())
        text = template.render(cfg=cfg, phase=phase, **(salt_globals or {}))
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise CorpusError("Phase {} ({}) does not render{}: {}.".format(
            phase, where, " at line {}".format(line) if line else "", exc)) from None
    try:
        high = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CorpusError("Phase {} ({}) renders invalid YAML: {}.".format(
            phase, where, str(exc).splitlines()[0])) from None
    if not isinstance(high, dict):
        raise CorpusError("Phase {} ({}) must render a mapping of states.".format(phase, where))
    return _ordered(high, phase)


def _ordered(high, phase):
    """Shape the rendered SLS as ``state.high`` wants it and keep the written order.

    An SLS says ``cmd.run: [args]``; high data says ``cmd: [run, args]``. Each state
    gets an explicit ``order`` (unless it sets one) so states run as written, and
    ``failhard`` so the first failed state stops the phase."""
    for n, (state_id, body) in enumerate(high.items(), start=1):
        if not isinstance(body, dict):
            raise CorpusError("Phase {}: state {!r} is not a mapping.".format(phase, state_id))
        for key in list(body):
            if key.startswith("__"):
                continue
            args = body.pop(key)
            if args is None:
                args = []
            if not isinstance(args, list):
                raise CorpusError("Phase {}: the arguments of {} in state {!r} must be a "
                                  "list.".format(phase, key, state_id))
            module, _, fun = key.partition(".")
            if fun:
                args = [fun] + args
            if not any(isinstance(a, dict) and "order" in a for a in args):
                args.append({"order": n})
            # A phase stops at its first failed state (unless that state says otherwise).
            if not any(isinstance(a, dict) and "failhard" in a for a in args):
                args.append({"failhard": True})
            body[module] = args
        body.setdefault("__sls__", "corpus.{}".format(phase))
        body.setdefault("__env__", "base")
    return high


def failures(results):
    """Human lines for the states that failed in a ``state.high`` return."""
    if isinstance(results, list):  # compile errors come back as a list of strings
        return [str(r) for r in results]
    if not isinstance(results, dict):
        return ["unexpected state return: {!r}".format(results)]
    bad = []
    for key, ret in sorted(results.items(), key=lambda kv: kv[1].get("__run_num__", 0)
                           if isinstance(kv[1], dict) else 0):
        if isinstance(ret, dict) and ret.get("result") is False:
            retcode = (ret.get("changes") or {}).get("retcode")
            why = "exited {}".format(retcode) if retcode else ret.get("comment", "failed")
            bad.append("{} {}".format(ret.get("__id__", key), why))
    return bad


def describe(results):
    """Lines that tell the pusher what each state did, in run order."""
    lines = []
    if not isinstance(results, dict):
        return [str(r) for r in (results if isinstance(results, list) else [results])]
    for _key, ret in sorted(results.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
        mark = {True: "ok", False: "FAILED", None: "--"}.get(ret.get("result"), "?")
        lines.append("  [{}] {} ({:.0f} ms)".format(mark, ret.get("__id__", _key),
                                                     ret.get("duration", 0) or 0))
        changes = ret.get("changes") or {}
        for stream in ("stdout", "stderr"):
            text = changes.get(stream)
            if text:
                lines.extend("      " + line for line in str(text).splitlines())
        if ret.get("result") is False:
            lines.append("      " + str(ret.get("comment", "")))
    return lines
