"""One deploy or rollback under way: its mapping, its progress record, its log.

The progress record (one entry of ``history.json``) is the only holder of what was
done: each of corpus's steps is written there with the facts its undo needs *before*
it acts (state ``doing``) and marked ``done`` after, so a deploy killed anywhere can
be undone from the record alone (``undo.py``).
"""

import os
import shutil
import sys
import time

from mc_project.errors import CorpusError
from mc_project.project import failpoints, history, phases, recipe, releases, steps


class SaltBindings:
    """How the engine reaches Salt: ``apply(highstate) -> state returns`` and the
    globals (``salt``, ``grains``, ``pillar``, ``opts``) phase templates may use."""

    def __init__(self, apply, template_globals=None):
        self.apply = apply
        self.template_globals = template_globals or {}


def echo(line):
    # stderr: the pusher sees it all the same (git relays both streams of a hook), and
    # stdout stays what salt-call prints (`--out=json` of a rollback stays JSON).
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Log:
    """Lines shown to the pusher as they happen and kept for the deploy's log file."""

    def __init__(self, out=None):
        self.out = out or echo
        self.lines = []

    def __call__(self, line):
        self.lines.append(line)
        self.out(line)

    def text(self):
        return "\n".join(self.lines) + "\n"


def describe_error(exc):
    return str(exc) if isinstance(exc, CorpusError) else "{}: {}".format(type(exc).__name__, exc)


class Run:
    """The state of one deploy or rollback: ``cfg`` (the common mapping every phase
    shares), the record, the tree whose ``.salt/`` the phases come from (``src``) and
    the tree the new release runs from (``target``)."""

    def __init__(self, cfg, bindings, log, record, src, target):
        self.cfg = cfg
        self.paths = cfg["paths"]
        self.bindings = bindings
        self.log = log
        self.record = record
        self.src = src
        self.target = target
        self.data_source = None  # a manual rollback's data snapshot
        record.setdefault("steps", [])
        record.setdefault("phases", [])

    def save(self):
        history.upsert(self.paths["history"], self.record)

    # -- steps ------------------------------------------------------------------------

    def entry(self, name):
        for entry in reversed(self.record["steps"]):
            if entry["step"] == name:
                return entry
        raise CorpusError("Step {} has not run in {}.".format(name, self.record.get("id")))

    def step(self, name):
        prepare, do, _undo = steps.get(name)
        entry = {"step": name, "state": "doing"}
        entry.update(prepare(self))
        self.record["steps"].append(entry)
        self.save()
        failpoints.reach("before:" + name)
        do(self, entry)
        entry["state"] = "done"
        self.save()
        failpoints.reach("after:" + name)

    def target_tree(self):
        return self.target

    def build_tree(self):
        """Where this deploy's code is built: the checkout (editable) or ``build/<id>``."""
        return self.paths["project"] if self.cfg["mode"] == "editable" else self.src

    def previous_release_dir(self):
        rid = self.record.get("previous_release")
        path = os.path.join(self.paths["releases"], rid) if rid else None
        return path if path and os.path.isdir(path) else None

    def restore_checkout(self, commit):
        """Editable mode: put the checkout back to ``commit`` (the last good one)."""
        from mc_project.project import gitrepo

        tmp = os.path.join(self.paths["build"], "restore-{}".format(os.getpid()))
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            gitrepo.export_tree(self.paths["project_git"], commit, tmp)
            releases.sync_tree(tmp, self.paths["project"], keep=self.cfg["editable_keep"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- phases -----------------------------------------------------------------------

    def run_sls(self, phase):
        if not self.src or not os.path.isdir(self.src):
            return
        high = phases.render(phase, self.cfg, self.src, self.bindings.template_globals)
        if not high:
            return
        results = self.bindings.apply(high)
        for line in phases.describe(results):
            self.log(line)
        bad = phases.failures(results)
        if bad:
            raise CorpusError("phase {} failed: {}".format(phase, "; ".join(bad)))

    def run_phase(self, phase):
        mode = self.cfg["mode"]
        started = time.monotonic()
        entry = {"phase": phase, "result": None, "seconds": 0.0}
        self.record["phases"].append(entry)
        if not recipe.runs(mode, phase):
            entry["result"] = "skipped"
            return
        self.log("-----> {}".format(phase))
        failpoints.reach("phase:" + phase)
        try:
            for name in recipe.steps(mode, phase, "before"):
                self.step(name)
            self.run_sls(phase)
            for name in recipe.steps(mode, phase, "after"):
                self.step(name)
        except CorpusError as exc:
            entry["result"] = False
            entry["error"] = str(exc)
            raise
        except Exception as exc:  # a bug or an OS error: still undo, still say why
            entry["result"] = False
            entry["error"] = describe_error(exc)
            raise CorpusError("phase {} failed: {}".format(phase, entry["error"])) from exc
        finally:
            entry["seconds"] = round(time.monotonic() - started, 3)
        entry["result"] = True
