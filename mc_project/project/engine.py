"""The project engine: deploy a commit through the phases with no downtime, roll back.

``deploy`` is what a ``git push`` (through ``hooks/pre-receive``), the runner and the
``mc_project.deployed`` state all end up calling. Under the project's deploy lock it
first recovers what a killed deploy left, stages the commit's tree in ``build/<id>``,
then walks the mode's recipe (``recipe.py``): the project's phase states with corpus's
own steps around them (``steps.py``). The new release starts beside the live one, its
migrations run, it passes its health check, and only then does traffic move to it;
the old one then drains and stops. On the first failure the one undo (``undo.py``)
puts back what the progress record says was done.

Salt is reached only through ``SaltBindings`` (apply a highstate, template globals),
so the engine runs under ``salt-call``, inside a minion, or with a fake in unit tests.
"""

import os
import shutil
import socket
import time
import uuid

from mc_project.common import processes
from mc_project.errors import CorpusError
from mc_project.project import (bundle, database, deps, diskfull, files, failpoints, gitrepo, history, lock, recipe,
                                releases, settings, supervisor, undo)
from mc_project.project.run import Log, Run, SaltBindings, describe_error  # noqa: F401

ZERO = gitrepo.ZERO
# Virtualenvs / node_modules kept for reuse (releases hold copies of their own).
DEPENDENCY_CACHES = 3
# How long a push whose deploy went live may take to move its branch (git moves
# refs and objects after the hook returned; this is normally milliseconds).
PUSH_LANDING_TIMEOUT = 30
branch_head = gitrepo.branch_head


def check_layout(paths):
    missing = [key for key in ("project_git", "pillar_git", "releases", "data")
               if not os.path.isdir(paths[key])]
    if missing:
        raise CorpusError("Project layout under {} is missing ({}): run mc_project.init_project "
                          "first.".format(paths["root"], ", ".join(missing)))


def _check_branch_not_moved(paths, branch, old, records, log):
    """Refuse a push whose idea of the branch is stale (another deploy won meanwhile)."""
    if old is None:
        return
    last = history.last_deploy(records)
    if last:
        _wait_for_push(last)
    ref_now = branch_head(paths["project_git"], branch) or ZERO
    if old != ref_now:
        raise CorpusError("Deploy refused: {} moved to {} while this push waited; fetch and "
                          "push again.".format(branch, ref_now[:12]))
    if last and old != last["commit"]:
        log("       note: {} was last deployed at {} but the branch says {}".format(
            branch, last["commit"][:12], old[:12]))


def _wait_for_push(record):
    """Wait for the push that made deploy ``record`` to finish: git moves the branch
    after the hook (and with it the deploy lock) is gone, so the next deploy may come
    while that push is still landing."""
    deadline = time.monotonic() + PUSH_LANDING_TIMEOUT
    while processes.is_alive(record.get("push")):
        if time.monotonic() >= deadline:
            raise CorpusError("Deploy refused: the push of {} (git pid {}) went live and git has "
                              "not finished it in {}s; push again when it has.".format(
                                  record["commit"][:12], record["push"]["pid"], PUSH_LANDING_TIMEOUT))
        time.sleep(0.05)


def prune(cfg):
    """Keep the last N good releases (and whatever is live), their snapshots and bundles."""
    paths = cfg["paths"]
    records = history.load(paths["history"])
    present = [rid for rid in history.good_release_ids(records)
               if os.path.isdir(os.path.join(paths["releases"], rid))]
    keep = set(present[-int(cfg["keep_releases"]):])
    live = releases.live_release_id(paths["current"], paths["releases"])
    if live:
        keep.add(live)
    releases.prune_dir(paths["releases"], keep)
    # A snapshot holds the data (and the database dump) as they were before its release
    # went live; keep the newest keep_snapshots (default keep_releases), taken by deploys,
    # manual rollbacks, or kept by an undo because the live app wrote after them.
    releases.prune_dir(paths["snapshots"], set(_newest_snapshots(
        paths["snapshots"], int(cfg.get("keep_snapshots") or cfg["keep_releases"]))))
    commits = {r.get("commit") for r in records if r.get("id") in keep}
    if os.path.isdir(paths["bundles"]):
        releases.prune_dir(paths["bundles"], {c + ".json" for c in commits if c})
        bundle.prune_objects(paths["bundles"])  # objects no kept manifest names
    failed = sorted(os.listdir(paths["failed"])) if os.path.isdir(paths["failed"]) else []
    keep_failed = int(cfg["keep_failed"])
    releases.prune_dir(paths["failed"], set(failed[len(failed) - keep_failed:]) if keep_failed else set())


def _newest_snapshots(snapshots_dir, count):
    """The ids of the ``count`` newest snapshots (by the time each was taken)."""
    if not os.path.isdir(snapshots_dir):
        return []
    found = [database.describe(os.path.join(snapshots_dir, sid)) for sid in os.listdir(snapshots_dir)
             if os.path.isdir(os.path.join(snapshots_dir, sid))]
    found.sort(key=lambda snap: (snap["time"], snap["id"]))
    return [snap["id"] for snap in found[-count:]] if count else []


def _housekeeping(run, log):
    """After the commit: the old release drains and stops, the log is kept, old
    releases are pruned. The deploy stands whatever happens here: failures only warn."""
    cfg, paths = run.cfg, run.paths
    tasks = [
        ("stopping the old release", lambda: run.step("retire_old")),
        ("writing the deploy log", lambda: _write_log(paths, run.record["id"], log.text())),
        ("removing the build dir", lambda: shutil.rmtree(paths["build_dir"], ignore_errors=True)
         if paths.get("build_dir") else None),
        ("pruning old releases", lambda: prune(cfg)),
        ("pruning dependency caches", lambda: deps.prune_cache(paths["root"], DEPENDENCY_CACHES)),
        ("keeping space in reserve", lambda: diskfull.ensure_reserve(paths["root"])),
    ]
    for what, task in tasks:
        try:
            task()
        except Exception as exc:
            log("       warning: {} failed: {}".format(what, describe_error(exc)))


def _write_log(paths, rid, text):
    os.makedirs(paths["logs"], exist_ok=True)
    files.write_private(os.path.join(paths["logs"], "deploy-{}.log".format(rid)), text)


def _fail(run, log, phase, exc, what):
    """Undo a failed deploy or rollback and record it; returns the sentence to raise."""
    full = diskfull.is_full(exc)
    if full:
        diskfull.release_reserve(run.paths["root"])
    error = diskfull.sentence(run.paths["root"], what) if full else (str(exc) or type(exc).__name__)
    log("-----> FAILED: {}".format(error))
    log("-----> rollback (after {} failed)".format(phase))
    notes = undo.undo(run, phase, error)
    run.record.update(status="failed", failed_phase=phase, error=error, rollback=notes,
                      ended=history.now())
    if run.record["kind"] == "deploy":
        run.record["failed_dir"] = undo.set_aside(run)
    try:
        run.save()
    except OSError as save_exc:  # the record stays 'running'; the next deploy recovers it
        log("       warning: the record could not be saved: {}".format(save_exc))
    return error


def deploy(name, projects_root, bindings, rev=None, objects=None, old=None, ref=None,
           pillar=None, overrides=None, private_pillar_dir=None, job_id=None, who=None,
           push_pid=None, out=None):
    """Deploy ``rev`` (default: the deploy branch head) of project ``name``.

    ``objects`` is the push's quarantine object directory (a pre-receive hook runs
    before the pushed objects enter the repository); ``old`` and ``ref`` come from
    the push, ``push_pid`` is git's receive-pack that runs the hook (it moves the
    branch once the deploy returns). Returns the history record; raises CorpusError when the deploy failed
    (after rolling back) or was refused (with nothing changed).
    """
    log = Log(out)
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    prelim = settings.build(name, projects_root, pillar=pillar, overrides=overrides,
                            private_pillar_dir=private_pillar_dir)
    branch = prelim["deploy_branch"]
    if ref is not None and ref != "refs/heads/" + branch:
        log("-----> {} accepted, not deployed: only {} deploys {}".format(ref, branch, name))
        return {"id": None, "status": "not deployed", "ref": ref, "result": True}
    if old is not None and rev == ZERO:
        raise CorpusError("Deleting the deploy branch {} is refused.".format(branch))
    job_id = job_id or uuid.uuid4().hex[:12]
    with lock.deploy_lock(paths["lock"], job_id, prelim["lock_timeout"], on_wait=log):
        _recover(name, projects_root, bindings, log, pillar)
        records = history.load(paths["history"])
        _check_branch_not_moved(paths, branch, old, records, log)
        if rev is None:
            rev = branch_head(paths["project_git"], branch)
            if not rev:
                raise CorpusError("Nothing to deploy: branch {} of {} has no commit yet.".format(
                    branch, paths["project_git"]))
        release_id = releases.new_release_id(paths["releases"], rev, taken={r.get("id") for r in records})
        build_dir = os.path.join(paths["build"], release_id)
        try:
            # The checkout is kept between deploys and git rewrites only what changed; the
            # build gets hard links of it, so staging costs the change, not the project.
            commit = gitrepo.update_checkout(paths["project_git"], rev, paths["checkout"],
                                             objects=_quarantine(paths, objects))
            releases.hard_link_copy(paths["checkout"], build_dir)
            cfg = settings.build(name, projects_root, pillar=pillar, overrides=overrides,
                                 source_dir=build_dir, private_pillar_dir=private_pillar_dir,
                                 release_id=release_id, commit=commit)
            if cfg["mode"] == "final":
                _stage_bundle(cfg, build_dir, log)
        except BaseException as exc:
            shutil.rmtree(build_dir, ignore_errors=True)
            if diskfull.is_full(exc):
                raise CorpusError(diskfull.sentence(paths["root"], "staging the pushed tree")) from None
            raise
        record = {
            "id": release_id, "kind": "deploy", "name": name, "status": "running",
            "commit": commit, "mode": cfg["mode"], "env": cfg["env"],
            "pillar_hash": cfg["pillar_hash"], "job_id": job_id, "ref": ref,
            "push": processes.identity(push_pid) if push_pid else None,
            "who": who or "{}@{}".format(cfg["user"], socket.gethostname()),
            "started": history.now(), "ended": None, "phases": [], "steps": [],
            "release": cfg["mode"] != "editable",
            "previous": releases.live_target(paths["current"]),
            "previous_release": releases.live_release_id(paths["current"], paths["releases"]),
            "previous_commit": history.last_deployed_commit(records),
            "editable_keep": cfg["editable_keep"],
        }
        target = paths["project"] if cfg["mode"] == "editable" else cfg["paths"]["release"]
        run = Run(cfg, bindings, log, record, src=build_dir, target=target)
        log("-----> deploying {} {} ({} mode, env {}) as {}".format(
            name, commit[:12], cfg["mode"], cfg["env"], release_id))
        started = time.monotonic()
        phase = "record"
        try:
            run.save()
            for phase in recipe.PHASES:
                run.run_phase(phase)
            phase = "commit"
            record.update(status="success", ended=history.now(),
                          seconds=round(time.monotonic() - started, 3), url=supervisor.app_url(cfg))
            run.save()
        except (Exception, KeyboardInterrupt) as exc:
            error = _fail(run, log, phase, exc, "the deploy of {}".format(commit[:12]))
            raise CorpusError("Deploy of {} {} failed in phase {} and was rolled back: {}".format(
                name, commit[:12], phase, error)) from None
        failpoints.reach("commit")
        log("-----> {} is live: {} ({:.1f}s)".format(name, record["url"], record["seconds"]))
        _housekeeping(run, log)
        record["result"] = True
        return record


def _quarantine(paths, objects):
    """The push's quarantine object directory, which git makes inside the repository."""
    if not objects:
        return None
    real = os.path.realpath(objects)
    if not real.startswith(os.path.realpath(paths["project_git"]) + os.sep) or not os.path.isdir(real):
        raise CorpusError("objects={} is not an object directory of {}.".format(objects, paths["project_git"]))
    return real


def _stage_bundle(cfg, build_dir, log):
    """Final mode: replace the staged git tree by the verified bundle of the commit."""
    bundles_dir = cfg["paths"]["bundles"]
    manifest = bundle.local_manifest(bundles_dir, cfg["commit"])
    if manifest is None or bundle.missing_objects(bundles_dir, manifest):
        log("-----> fetching bundle of {} from {}".format(cfg["commit"][:12], cfg["bundle"]["source"] or "?"))
        manifest = bundle.fetch(cfg["bundle"]["source"], cfg["commit"], bundles_dir, log=log)
    shutil.rmtree(build_dir)
    bundle.unpack(bundles_dir, manifest, build_dir)
    log("       bundle verified: sha256 {} built on {} at {}".format(
        manifest["sha256"][:16], manifest.get("build_host"), manifest.get("built_at")))


def live_commit(paths, records=None):
    """The commit the live release serves (None when nothing is live)."""
    records = history.load(paths["history"]) if records is None else records
    live_id = releases.live_release_id(paths["current"], paths["releases"])
    if live_id:
        return (history.find(records, live_id) or {}).get("commit")
    if releases.live_target(paths["current"]):  # editable: the checkout of the last deploy
        return history.last_deployed_commit(records)
    return None


def deploy_pillar(name, projects_root, bindings, archive, rev=None, ref=None, pillar=None,
                  job_id=None, who=None, out=None):
    """A push to ``git/pillar.git``: redeploy the live commit with the new private pillar.

    The project's ``pillar/`` takes the new content only if that deploy succeeds."""
    log = Log(out)
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    prelim = settings.build(name, projects_root, pillar=pillar)
    if ref is not None and ref != "refs/heads/" + prelim["deploy_branch"]:
        log("-----> {} accepted, not applied: only {} changes settings".format(ref, prelim["deploy_branch"]))
        return {"id": None, "status": "not deployed", "ref": ref, "result": True}
    staged = os.path.join(paths["build"], "pillar-{}".format(uuid.uuid4().hex[:8]))
    try:
        releases.extract_tar(archive, staged)
        settings.load_yaml_mapping(os.path.join(staged, "init.sls"), "Private pillar")
        commit = live_commit(paths)
        if commit is None:
            log("-----> pillar stored; {} has nothing live yet, it applies to the first deploy".format(name))
            record = {"id": None, "status": "stored", "result": True}
        else:
            log("-----> pillar changed: redeploying the live commit {} of {}".format(commit[:12], name))
            record = deploy(name, projects_root, bindings, rev=commit, pillar=pillar,
                            private_pillar_dir=staged, job_id=job_id, who=who, out=log)
        releases.sync_tree(staged, paths["pillar"], private=True)
        return record
    finally:
        shutil.rmtree(staged, ignore_errors=True)


# --------------------------------------------------------------------------- queries

def list_releases(name, projects_root):
    """Kept releases, oldest first: id, commit, mode, status, time, live."""
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    records = history.load(paths["history"])
    live = releases.live_release_id(paths["current"], paths["releases"])
    order = {r.get("id"): n for n, r in enumerate(records)}
    out = []
    for rid in sorted(os.listdir(paths["releases"]), key=lambda rid: (order.get(rid, -1), rid)):
        if rid.endswith(".partial"):
            continue
        rec = history.find(records, rid) or {}
        out.append({"id": rid, "commit": rec.get("commit"), "mode": rec.get("mode"),
                    "status": rec.get("status"), "time": rec.get("ended") or rec.get("started"),
                    "live": rid == live})
    return out


def list_snapshots(name, projects_root):
    """Kept snapshots, oldest first: id, time, and the bytes of their data and database."""
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    if not os.path.isdir(paths["snapshots"]):
        return []
    found = [database.describe(os.path.join(paths["snapshots"], sid))
             for sid in os.listdir(paths["snapshots"])
             if os.path.isdir(os.path.join(paths["snapshots"], sid))]
    return sorted(found, key=lambda snap: (snap["time"], snap["id"]))


def status(name, projects_root, pillar=None):
    """What is live (only ever a release that passed its health check), since when,
    and whether a deploy is running (and whose) or was interrupted."""
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    cfg = settings.build(name, projects_root, pillar=pillar)
    records = history.load(paths["history"])
    target = releases.live_target(paths["current"])
    live = None
    if target:
        live_id = os.path.basename(target)
        if cfg["mode"] == "editable" or target == os.path.realpath(paths["project"]):
            live = next((r for r in reversed(records) if r.get("kind") == "deploy"
                         and r.get("status") == "success"), None)
        else:
            live = history.find(records, live_id)
            for r in records:  # a manual rollback makes a release live again
                if r.get("kind") == "rollback" and r.get("to") == live_id and r.get("status") == "success":
                    live = dict(live or {}, since=r.get("ended"))
    holder = lock.read_holder(paths["lock"])
    orphaned = [r["id"] for r in records if r.get("status") == "running"] if not holder else []
    return {
        "name": name, "env": cfg["env"], "mode": cfg["mode"],
        "live": bool(target),
        "release": os.path.basename(target) if target and cfg["mode"] != "editable" else None,
        "commit": (live or {}).get("commit"),
        "since": (live or {}).get("since") or (live or {}).get("ended"),
        "url": supervisor.app_url(cfg) if target else None,
        "app": supervisor.status(cfg),
        "deploying": bool(holder),
        "deploy_holder": holder,
        "interrupted": orphaned,
        "note": "interrupted deploys are put back by the next push or by mc_project.recover "
                "{}".format(name) if orphaned else None,
        "last": records[-1] if records else None,
    }


# --------------------------------------------------------------------------- rollback, recover, stop

def rollback(name, projects_root, bindings, release_id=None, data=False, pillar=None,
             job_id=None, out=None):
    """Make a kept release live again (the one before the live one by default), with
    no downtime: it starts beside the live one, passes its health check, takes traffic.

    With ``data=True`` also restore ``data/`` as it was while that release was live
    (the snapshot taken when its successor deployed) and run the ``rollback`` phase."""
    log = Log(out)
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    prelim = settings.build(name, projects_root, pillar=pillar)
    if prelim["mode"] == "editable":
        raise CorpusError("{} runs in editable mode, which keeps no releases: push the commit "
                          "you want live instead.".format(name))
    job_id = job_id or uuid.uuid4().hex[:12]
    with lock.deploy_lock(paths["lock"], job_id, prelim["lock_timeout"], on_wait=log):
        _recover(name, projects_root, bindings, log, pillar)
        records = history.load(paths["history"])
        kept = [r for r in history.good_release_ids(records)
                if os.path.isdir(os.path.join(paths["releases"], r))]
        live = releases.live_release_id(paths["current"], paths["releases"])
        if release_id is None:
            # History order, not id order: two deploys within one second sort by commit.
            older = kept[:kept.index(live)] if live in kept else kept
            if not older:
                raise CorpusError("No kept release older than the live one ({}) to roll back "
                                  "to.".format(live))
            release_id = older[-1]
        if release_id not in kept:
            raise CorpusError("Release {} is not a kept good release of {}; kept: {}.".format(
                release_id, name, ", ".join(kept) or "none"))
        if release_id == live:
            raise CorpusError("Release {} is already live.".format(release_id))
        target = os.path.join(paths["releases"], release_id)
        snapshot = None
        if data:
            position = next(i for i, r in enumerate(records) if r.get("id") == release_id)
            later = [r for r in records[position + 1:] if r.get("kind") == "deploy"
                     and os.path.isdir(os.path.join(paths["snapshots"], r["id"], "data"))]
            if not later:
                raise CorpusError("No data snapshot holds the data of release {}.".format(release_id))
            # The newest data of that release: the last snapshot taken while it was live
            # (by its successor, or by a failed deploy in between that kept its snapshot).
            while_live = []
            for r in records[position + 1:]:
                if r.get("kind") == "deploy":
                    while_live.append(r)
                    if r.get("status") == "success":
                        break
            chosen = [r for r in later if r in while_live] or later[:1]
            snapshot = os.path.join(paths["snapshots"], chosen[-1]["id"])
        rid = "rollback-{}".format(time.strftime("%Y%m%dT%H%M%S", time.gmtime()))
        record = {"id": rid, "kind": "rollback", "name": name, "from": live, "to": release_id,
                  "data": bool(data), "job_id": job_id, "started": history.now(), "status": "running",
                  "commit": (history.find(records, release_id) or {}).get("commit")}
        cfg = settings.build(name, projects_root, pillar=pillar, source_dir=target, commit=record["commit"])
        cfg["app_root"] = target
        cfg["paths"]["snapshot"] = os.path.join(paths["snapshots"], rid)
        run = Run(cfg, bindings, log, record, src=target, target=target)
        run.data_source = snapshot
        log("-----> rolling {} back to {}".format(name, release_id))
        step = "record"
        try:
            run.save()
            for step in (["snapshot_data"] if data else []) + ["start_new", "move_traffic"] + \
                    (["restore_data"] if data else []):
                run.step(step)
            if data:
                cfg["failed_phase"], cfg["error"] = None, None
                run.run_sls("rollback")
                supervisor.restart_slot(cfg, supervisor.load_state(cfg)["live"])
            step = "commit"
            record.update(status="success", ended=history.now())
            run.save()
        except (Exception, KeyboardInterrupt) as exc:
            error = _fail(run, log, step, exc, "the rollback to {}".format(release_id))
            raise CorpusError("Rollback to {} refused: {} The live release is unchanged.".format(
                release_id, error)) from None
        failpoints.reach("commit")
        log("-----> {} is live again".format(release_id))
        _housekeeping(run, log)
        record["result"] = True
        return record


def recover(name, projects_root, bindings, pillar=None, job_id=None, out=None):
    """Put back what interrupted deploys left (what the next push does first)."""
    log = Log(out)
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    prelim = settings.build(name, projects_root, pillar=pillar)
    with lock.deploy_lock(paths["lock"], job_id or uuid.uuid4().hex[:12], prelim["lock_timeout"],
                          on_wait=log):
        recovered = _recover(name, projects_root, bindings, log, pillar)
    if not recovered:
        log("-----> nothing to recover: no deploy of {} was interrupted".format(name))
    return {"name": name, "recovered": recovered, "live": live_commit(paths)}


def _recover(name, projects_root, bindings, log, pillar):
    """Everything a killed deploy, rollback or push can leave: see ``undo.recover``
    and ``_put_back_unlanded_push``. Returns the ids of the records put back."""
    recovered = undo.recover(name, projects_root, bindings, log, pillar=pillar)
    unlanded = _put_back_unlanded_push(name, projects_root, bindings, log, pillar)
    return recovered + ([unlanded] if unlanded else [])


def _put_back_unlanded_push(name, projects_root, bindings, log, pillar):
    """A push killed after its deploy was recorded never moved its branch, and git
    dropped its objects: what is live is then a commit the repository does not hold.
    Make the release that was live before it live again, so the branch says what is
    live. Returns the id of the deploy put back, or None."""
    paths = settings.project_paths(projects_root, name)
    records = history.load(paths["history"])
    last = next((r for r in reversed(records) if r.get("status") == "success"), None)
    if not last or last.get("kind") != "deploy" or not last.get("ref"):
        return None
    _wait_for_push(last)
    if gitrepo.has_commit(paths["project_git"], last["commit"]):
        return None
    log("-----> deploy {} went live but its push never landed: {} is not in the "
        "repository".format(last["id"], last["commit"][:12]))
    cfg = settings.build(name, projects_root, pillar=pillar)
    previous_release = last.get("previous_release")
    if last["mode"] == "editable" and last.get("previous_commit"):
        target = paths["project"]
    elif previous_release and os.path.isdir(os.path.join(paths["releases"], previous_release)):
        target = os.path.join(paths["releases"], previous_release)
        cfg = settings.build(name, projects_root, pillar=pillar, source_dir=target)
    else:
        target = None
    record = {"id": "putback-{}".format(last["id"]), "kind": "rollback", "name": name,
              "from": last["id"], "to": previous_release, "status": "running",
              "started": history.now(), "commit": last.get("previous_commit"), "steps": []}
    run = Run(cfg, bindings, log, record, src=target, target=target)
    run.save()
    if target is None:  # it was the first deploy: nothing was live before it
        supervisor.shutdown(cfg)
        supervisor.save_state(cfg, {"live": None, "standby": None})
        releases.switch_current(paths["current"], None)
    else:
        if last["mode"] == "editable":
            run.restore_checkout(last["previous_commit"])
        run.step("start_new")
        run.step("move_traffic")
    last.update(status="not landed", note="its push never landed; {} put it back".format(record["id"]))
    history.upsert(paths["history"], last)
    record.update(status="success", ended=history.now())
    run.save()
    if target is not None:
        _housekeeping(run, log)
    return last["id"]


def start(name, projects_root, pillar=None):
    """Start the project's supervisor, front and live release again (after ``stop``)."""
    cfg = settings.build(name, projects_root, pillar=pillar)
    state = supervisor.load_state(cfg)
    if not state["live"]:
        raise CorpusError("{} has nothing live to start: push a commit first.".format(name))
    supervisor.apply(cfg, {"live": state["live"], "standby": None})
    url = supervisor.check_slot(cfg, state["live"]["slot"], state["live"]["port"])
    return {"name": name, "app": supervisor.status(cfg), "health": url}


def stop(name, projects_root, pillar=None):
    """Stop the app, its front and its supervisor."""
    cfg = settings.build(name, projects_root, pillar=pillar)
    supervisor.shutdown(cfg)
    return {"name": name, "app": supervisor.status(cfg)}
