"""The one undo: put back what a deploy or rollback did, from its progress record.

A failed deploy and the recovery of a killed one both call ``undo``: it walks the
record's steps backwards and calls each step's undo (``steps.py``), marking each one
undone as it goes, so a recovery killed in turn resumes where it stopped. Then the
project's own ``rollback`` phase runs and the failed tree is set aside with its log.
"""

import os
import shutil

from mc_project.errors import CorpusError
from mc_project.project import history, releases, settings, steps, supervisor
from mc_project.project.run import Run, describe_error


def undo(run, failed_phase, error):
    """Undo every step of ``run`` that started, newest first; returns what was done."""
    notes = []
    for entry in reversed(run.record["steps"]):
        if entry.get("undone"):
            continue
        _prepare, _do, undo_step = steps.get(entry["step"])
        try:
            note = undo_step(run, entry)
        except Exception as exc:  # keep undoing the rest; say what could not be put back
            note = "undoing {} failed: {}".format(entry["step"], describe_error(exc))
        entry["undone"] = True
        run.save()
        if note:
            notes.append(note)
    run.cfg["failed_phase"] = failed_phase
    run.cfg["error"] = error
    try:
        run.run_sls("rollback")
    except Exception as exc:
        notes.append("the rollback phase failed too: {}".format(describe_error(exc)))
    for note in notes:
        run.log("       " + note)
    return notes


def set_aside(run):
    """Move the failed release (or build) and its log to ``archives/failed/<id>/``;
    remove its build dir, and its snapshot unless an undo kept it on purpose."""
    paths, rid = run.paths, run.record["id"]
    release = os.path.join(paths["releases"], rid)
    build_dir = os.path.join(paths["build"], rid)
    tree = release if os.path.isdir(release) else build_dir
    dest = releases.set_aside(tree, paths["failed"], rid, run.log.text())
    keep_snapshot = any(entry.get("keep_snapshot") for entry in run.record["steps"])
    for leftover in (build_dir, release + ".partial") + (
            () if keep_snapshot else (os.path.join(paths["snapshots"], rid),)):
        shutil.rmtree(leftover, ignore_errors=True)
    return dest


def recover(name, projects_root, bindings, log, pillar=None):
    """Finish what deploys whose owner died left (the caller holds the deploy lock, so
    any record still 'running' is orphaned): undo them and set them aside. A release
    left standing by beside the live one is retired. Returns the ids recovered."""
    paths = settings.project_paths(projects_root, name)
    recovered = []
    for record in history.load(paths["history"]):
        if record.get("status") != "running":
            continue
        rid = record["id"]
        log("-----> recovering interrupted {} {} (job {})".format(
            record.get("kind", "deploy"), rid, record.get("job_id")))
        src = next((tree for tree in (os.path.join(paths["releases"], rid),
                                      os.path.join(paths["build"], rid)) if os.path.isdir(tree)), None)
        cfg = _settings_for(name, projects_root, pillar, src, record)
        run = Run(cfg, bindings, log, record, src=src, target=None)
        notes = undo(run, "interrupted", "the deploy was interrupted")
        record.update(status="interrupted", ended=history.now(), rollback=notes)
        if record.get("kind") == "deploy":
            record["failed_dir"] = set_aside(run)
        run.save()
        recovered.append(rid)
    for record in history.load(paths["history"]):  # a build dir a finished deploy left behind
        leftover = os.path.join(paths["build"], str(record.get("id")))
        if record.get("status") != "running" and os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
    _retire_standby(name, projects_root, pillar, log)
    return recovered


def _settings_for(name, projects_root, pillar, src, record):
    try:
        cfg = settings.build(name, projects_root, pillar=pillar, source_dir=src,
                             release_id=record["id"], commit=record.get("commit"))
    except CorpusError:  # the tree's own settings do not load: the live ones will do
        cfg = settings.build(name, projects_root, pillar=pillar, release_id=record["id"],
                             commit=record.get("commit"))
    cfg["editable_keep"] = record.get("editable_keep", cfg["editable_keep"])
    return cfg


def _retire_standby(name, projects_root, pillar, log):
    cfg = settings.build(name, projects_root, pillar=pillar)
    state = supervisor.load_state(cfg)
    if not state["standby"] or not supervisor.is_running(cfg):
        return
    log("       stopping the release left standing by: {}".format(state["standby"]["tree"]))
    run = Run(cfg, None, log, {"id": None, "steps": []}, src=None, target=None)
    _prepare, do_retire, _undo = steps.get("retire_old")
    do_retire(run, {"old": state["standby"]})
