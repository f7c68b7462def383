"""corpus's own steps of a deploy (the recipe names them), each with its undo.

A step's ``do(run)`` returns the facts its undo will need (JSON: slot, port, tree,
digests); the engine saves them in the progress record *before* the step acts
(``prepare``) and marks the step done after. ``undo(run, entry)`` must be safe to run
whether the step finished, half-finished or never acted: it is what both a failed
deploy and the recovery of a killed one call, from the record alone.
"""

import hashlib
import json
import os
import subprocess
import sys

from mc_project.errors import CorpusError
from mc_project.project import bundle, database, deps, front, procfile, releases, supervisor, users


def _rel(run, path):
    return os.path.relpath(path, run.paths["root"]) if path else "nothing"


def data_digest(paths):
    sig = releases.tree_signature(paths["data"])
    return hashlib.sha256(json.dumps(sig).encode()).hexdigest()


# --------------------------------------------------------------------------- snapshot_data

def prepare_snapshot_data(run):
    return {"snapshot": run.paths["snapshot"]}


def do_snapshot_data(run, entry):
    # Requests the live app took so far (counted first: one that comes in while the copy
    # is made counts as after it): if it takes none until an undo, no write it
    # acknowledged can be lost by putting the snapshot back.
    entry["front_requests"] = requests_served(run)
    releases.snapshot_data(run.paths["data"], entry["snapshot"], exclude=database.data_files(run.cfg))
    entry["database"] = database.dump(run.cfg, entry["snapshot"])
    database.write_meta(entry["snapshot"], os.path.basename(entry["snapshot"]), entry["database"])
    entry["data_digest"] = data_digest(run.paths)
    if entry["database"]:
        run.log("       database dumped: {} ({} bytes)".format(
            _rel(run, os.path.join(entry["snapshot"], entry["database"]["file"])), entry["database"]["bytes"]))


def requests_served(run):
    """Requests the front took so far; 0 when nothing is live and no front runs."""
    served = front.requests_served(run.cfg)
    if served is None and supervisor.load_state(run.cfg)["live"] is None:
        return 0
    return served


def undo_snapshot_data(run, entry):
    """Put ``data/`` and the database back only when no request reached the live app
    since the snapshot. (A PostgreSQL database leaves no trace in ``data/``: it is put
    back whenever that rule allows.)"""
    on_server = (entry.get("database") or {}).get("kind") == "postgresql"
    if "data_digest" not in entry or (data_digest(run.paths) == entry["data_digest"] and not on_server):
        return None
    served = requests_served(run)
    with_db = bool(entry.get("database"))
    if served is not None and served == entry.get("front_requests"):
        database.restore(run.cfg, entry["snapshot"])
        users.give_data(run.cfg)
        live = supervisor.load_state(run.cfg)["live"]
        if live:
            supervisor.restart_slot(run.cfg, live)
        return "data/ and the database restored from their snapshot" if with_db else \
            "data/ restored from its snapshot"
    entry["keep_snapshot"] = True
    if with_db:
        return ("data/ and the database may have changed after their snapshot while the live app "
                "was answering requests, so they are kept as they are (no acknowledged write is "
                "discarded); the snapshot and the database dump stay in {}".format(
                    _rel(run, entry["snapshot"])))
    return ("data/ changed after its snapshot while the live app was answering requests, so it "
            "is kept as it is (no acknowledged write is discarded); the snapshot stays in {}".format(
                _rel(run, entry["snapshot"])))


# --------------------------------------------------------------------------- sync_checkout

def prepare_sync_checkout(run):
    return {"previous_commit": run.record.get("previous_commit")}


def do_sync_checkout(run, entry):
    releases.sync_tree(run.src, run.paths["project"], keep=run.cfg["editable_keep"])


def undo_sync_checkout(run, entry):
    commit = entry.get("previous_commit")
    if not commit:
        return None
    run.restore_checkout(commit)
    return "project/ back to {}".format(commit[:12])


# --------------------------------------------------------------------------- install_dependencies

def prepare_install_dependencies(run):
    return {"tree": run.build_tree()}


def do_install_dependencies(run, entry):
    """The virtualenv, node_modules (reused when their files did not change) and a Django
    project's static files, in the tree being built."""
    tree = entry["tree"]
    opts = (run.bindings.template_globals if run.bindings else {}).get("opts") or {}
    # A build dir links the cached trees; the release made from it gets their files.
    symlink = run.cfg["mode"] != "editable"
    deps.install_python(run.cfg, tree, run.log, opts.get("corpus_python"), symlink=symlink)
    # The build sees the app's settings, as Heroku's does (npm and pip keep their caches in HOME).
    env = dict(supervisor.app_environment(run.cfg, tree, 0), HOME=os.environ.get("HOME", "/root"))
    deps.install_node(run.cfg, tree, run.log, env, symlink=symlink)
    deps.collectstatic(run.cfg, tree, env, run.log)


def undo_install_dependencies(run, entry):
    return None  # the cache is kept for the next push; the tree is set aside


# --------------------------------------------------------------------------- run_release

def prepare_run_release(run):
    return {"tree": run.target_tree()}


def do_run_release(run, entry):
    """The Procfile's ``release:`` command (migrations...), as the app with its
    environment, once the release exists and before it starts or takes traffic."""
    command = procfile.release_command(entry["tree"])
    if not command:
        return
    run.log("       release: {}".format(command))
    spec = supervisor.write_spec(run.cfg, "release", entry["tree"], command, 0)
    proc = subprocess.run([sys.executable, "-m", "mc_project.project.launch", spec],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout.splitlines():
        run.log("      " + line)
    if proc.returncode:
        tail = " | ".join(line for line in proc.stdout.splitlines()[-3:] if line.strip())
        raise CorpusError("The release command (Procfile release:) failed with exit {}: {}".format(
            proc.returncode, tail or "no output"))


def undo_run_release(run, entry):
    return None  # what it changed in data/ or the database is snapshot_data's to put back


# --------------------------------------------------------------------------- make_release

def prepare_make_release(run):
    return {"release": run.paths["release"]}


def do_make_release(run, entry):
    previous = run.previous_release_dir()
    releases.make_release(run.paths["build_dir"], entry["release"], previous_release=previous,
                          checkout=run.paths["checkout"])
    run.cfg["app_root"] = entry["release"]


def undo_make_release(run, entry):
    return None  # the release is set aside with the failed deploy's log


# --------------------------------------------------------------------------- pack_bundle

def prepare_pack_bundle(run):
    return {"commit": run.cfg["commit"], "release_id": run.cfg["release_id"]}


def do_pack_bundle(run, entry):
    manifest = bundle.pack(run.cfg, run.paths["release"], previous_release=run.previous_release_dir(),
                           previous_commit=run.record.get("previous_commit"))
    run.record["bundle"] = bundle.summary(manifest)
    run.log("       bundle {}.json ({} files, {} objects, {} bytes, sha256 {})".format(
        manifest["commit"], len(manifest["files"]), manifest["objects"], manifest["size"],
        manifest["sha256"][:16]))


def undo_pack_bundle(run, entry):
    bundle.remove(run.paths["bundles"], entry.get("commit"), entry.get("release_id"))
    return None


# --------------------------------------------------------------------------- start_new

def prepare_start_new(run):
    state = supervisor.load_state(run.cfg)
    live = state["live"]
    slot = front.other(live["slot"]) if live else front.SLOTS[0]
    return {"slot": slot, "port": supervisor.free_port(), "tree": run.target_tree(),
            "previous": live}


def do_start_new(run, entry):
    users.give_data(run.cfg)
    state = supervisor.load_state(run.cfg)
    if state["standby"]:  # a slot left by an interrupted run: it takes no traffic
        state["standby"] = None
        supervisor.apply(run.cfg, state)
    entry["processes"] = supervisor.write_slot_specs(run.cfg, entry["slot"], entry["tree"], entry["port"])
    state["standby"] = {k: entry[k] for k in ("slot", "port", "tree", "processes")}
    supervisor.save_state(run.cfg, state)
    supervisor.apply(run.cfg, state)
    front.wait_up(run.cfg)
    run.log("       {} started beside the live one (slot {}, port {})".format(
        _rel(run, entry["tree"]), entry["slot"], entry["port"]))


def undo_start_new(run, entry):
    state = supervisor.load_state(run.cfg)
    if (state["live"] or {}).get("slot") == entry["slot"]:
        return None  # it serves (undoing move_traffic failed): keep it
    state["standby"] = None
    supervisor.save_state(run.cfg, state)
    if supervisor.is_running(run.cfg):
        supervisor.apply(run.cfg, state)
    return "new release stopped"


# --------------------------------------------------------------------------- move_traffic

def prepare_move_traffic(run):
    started = run.entry("start_new")
    return {"slot": started["slot"], "port": started["port"], "tree": started["tree"],
            "processes": started.get("processes"), "previous": started["previous"]}


def do_move_traffic(run, entry):
    cfg = run.cfg
    users.give_data(cfg)  # a migration run as root must not leave files the app cannot write
    url = supervisor.check_slot(cfg, entry["slot"], entry["port"])
    run.log("       health check {} answered".format(url))
    previous = entry["previous"]
    front.move_traffic(cfg, entry["slot"], entry["port"], previous["slot"] if previous else None)
    new = {k: entry.get(k) for k in ("slot", "port", "tree", "processes")}
    _settle(run, live=new, standby=previous)
    run.log("       traffic moved: current -> {}".format(_rel(run, entry["tree"])))


def _settle(run, live, standby):
    """Record which slot serves, point ``current`` at its tree, rewrite haproxy.cfg."""
    state = {"live": live, "standby": standby}
    supervisor.save_state(run.cfg, state)
    releases.switch_current(run.paths["current"], live["tree"] if live else None)
    supervisor.write_conf(run.cfg, state)


def undo_move_traffic(run, entry):
    cfg, previous = run.cfg, entry["previous"]
    new = {k: entry.get(k) for k in ("slot", "port", "tree", "processes")}
    if previous is None:
        if supervisor.is_running(cfg):
            front.disable(cfg, entry["slot"])
        _settle(run, live=None, standby=new)
        return "nothing live any more (this was the first deploy)"
    if supervisor.process_state(cfg, previous["slot"]) != "RUNNING":
        state = {"live": new, "standby": previous}
        supervisor.apply(cfg, state)
    supervisor.check_slot(cfg, previous["slot"], previous["port"])
    front.move_traffic(cfg, previous["slot"], previous["port"], entry["slot"])
    _settle(run, live=previous, standby=new)
    return "traffic back on {}".format(_rel(run, previous["tree"]))


# --------------------------------------------------------------------------- retire_old

def prepare_retire_old(run):
    return {"old": supervisor.load_state(run.cfg)["standby"]}


def do_retire_old(run, entry):
    """Let the old release finish its requests, then stop it (after the commit: a
    problem here is a warning, the deploy stands)."""
    old = entry["old"]
    if not old:
        return
    cfg = run.cfg
    drained = front.drain(cfg, old["slot"], cfg.get("drain_timeout", 30))
    if not drained:
        run.log("       warning: the old release still had requests in flight after {}s; "
                "stopped anyway".format(cfg.get("drain_timeout", 30)))
    front.disable(cfg, old["slot"])
    state = supervisor.load_state(cfg)
    state["standby"] = None
    supervisor.save_state(cfg, state)
    supervisor.apply(cfg, state)


def undo_retire_old(run, entry):
    return None


# --------------------------------------------------------------------------- restore_data

def prepare_restore_data(run):
    return {"snapshot": run.data_source}


def do_restore_data(run, entry):
    """A manual rollback with ``data=True``: the chosen snapshot becomes ``data/`` (and
    the database, when the snapshot holds its dump)."""
    database.restore(run.cfg, entry["snapshot"])
    users.give_data(run.cfg)
    run.log("       {} restored from {}".format(
        "data/ and the database" if database.has_dump(entry["snapshot"]) else "data/",
        _rel(run, entry["snapshot"])))


def undo_restore_data(run, entry):
    return None  # snapshot_data's undo (run next) decides whether data/ goes back


STEPS = {name: (globals()["prepare_" + name], globals()["do_" + name], globals()["undo_" + name])
         for name in ("snapshot_data", "sync_checkout", "install_dependencies", "make_release",
                      "pack_bundle", "run_release", "start_new", "move_traffic", "retire_old",
                      "restore_data")}


def get(name):
    try:
        return STEPS[name]
    except KeyError:
        raise CorpusError("Unknown deploy step {!r}.".format(name)) from None
