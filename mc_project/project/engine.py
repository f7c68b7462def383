"""The project engine: deploy a commit through the phases, switch, check, roll back.

``deploy`` is what a ``git push`` (through ``hooks/pre-receive``), the runner and
the ``mc_project.deployed`` state all end up calling. It holds the project's deploy
lock, stages the commit's tree in ``build/<id>``, runs the phases in order with
the mode's built-in work (snapshot, sync, release, bundle, switch, restart, health
check), and on the first failure rolls back everything the deploy changed.

Salt is reached only through ``SaltBindings`` (apply a highstate, template globals),
so the engine runs under ``salt-call``, inside a minion, or with a fake in unit tests.
"""

import os
import shutil
import socket
import sys
import time
import uuid

import git

from mc_project.project import bundle, history, lock, phases, releases, settings, supervisor
from mc_project.errors import CorpusError

ZERO = "0" * 40


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


# --------------------------------------------------------------------------- layout

def check_layout(paths):
    missing = [key for key in ("project_git", "pillar_git", "releases", "data")
               if not os.path.isdir(paths[key])]
    if missing:
        raise CorpusError("Project layout under {} is missing ({}): run mc_project.init_project "
                          "first.".format(paths["root"], ", ".join(missing)))


def branch_head(git_dir, branch):
    """Commit the branch points to in a bare repo, or None."""
    try:
        return git.Repo(git_dir).git.rev_parse("--verify", "-q", "refs/heads/" + branch)
    except git.GitCommandError:
        return None


def export_tree(git_dir, commit, dest):
    """Write the tree of ``commit`` into ``dest`` (``git archive``)."""
    os.makedirs(dest, exist_ok=True)
    repo = git.Repo(git_dir)
    try:
        sha = repo.git.rev_parse("--verify", "-q", commit + "^{commit}")
    except git.GitCommandError:
        raise CorpusError("Commit {} is not in {}.".format(commit, git_dir)) from None
    tar_path = os.path.join(dest, ".corpus-src.tar")
    with open(tar_path, "wb") as fh:
        repo.archive(fh, sha, format="tar")
    releases.extract_tar(tar_path, dest)
    os.unlink(tar_path)
    return sha


# --------------------------------------------------------------------------- deploy

class Deploy:
    """One deploy run: its mapping, its progress (for rollback) and its record."""

    def __init__(self, cfg, bindings, log, record, src):
        self.cfg = cfg
        self.bindings = bindings
        self.log = log
        self.record = record
        self.src = src  # the staged tree whose .salt/ the phases come from
        paths = cfg["paths"]
        self.previous_target = releases.live_target(paths["current"])
        self.previous_release = releases.live_release_id(paths["current"], paths["releases"])
        self.release_made = False
        self.bundle_packed = False
        self.project_synced = False
        self.switched = False
        self.data_signature = None

    # -- built-in work of each phase ------------------------------------------------

    def before_backup(self):
        releases.snapshot_data(self.cfg["paths"]["data"], self.cfg["paths"]["snapshot"])

    def before_build(self):
        if self.cfg["mode"] == "editable":
            self.project_synced = True
            self._save(project_synced=True)
            releases.sync_tree(self.src, self.cfg["paths"]["project"], keep=self.cfg["editable_keep"])

    def before_bundle(self):
        paths = self.cfg["paths"]
        previous = os.path.join(paths["releases"], self.previous_release) if self.previous_release else None
        releases.make_release(paths["build_dir"], paths["release"], previous_release=previous)
        self.release_made = True
        self.cfg["app_root"] = paths["release"]
        if self.cfg["mode"] == "cooking":
            manifest = bundle.pack(self.cfg, paths["release"])
            self.bundle_packed = True
            self.record["bundle"] = manifest
            self.log("       bundle {} ({} bytes, sha256 {})".format(
                manifest["archive"], manifest["size"], manifest["sha256"][:16]))

    def after_deploy(self):
        paths = self.cfg["paths"]
        target = paths["project"] if self.cfg["mode"] == "editable" else paths["release"]
        self.data_signature = releases.tree_signature(paths["data"])
        supervisor.save_previous(self.cfg)
        self._save(switched=True)
        releases.switch_current(paths["current"], target)
        self.switched = True
        self.log("       current -> {}".format(os.path.relpath(target, paths["root"])))
        supervisor.restart(self.cfg, target)

    def after_post_deploy(self):
        # Checked once post_deploy (migrations) has run: the new release must answer.
        url = supervisor.check_health(self.cfg)
        self.log("       health check {} answered".format(url))

    BUILTIN_BEFORE = {"backup": before_backup, "build": before_build, "bundle": before_bundle}
    BUILTIN_AFTER = {"deploy": after_deploy, "post_deploy": after_post_deploy}

    # -- running -----------------------------------------------------------------------

    def _save(self, **fields):
        self.record.update(fields)
        history.upsert(self.cfg["paths"]["history"], self.record)

    def run_sls(self, phase):
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
        started = time.monotonic()
        entry = {"phase": phase, "result": None, "seconds": 0.0}
        self.record["phases"].append(entry)
        if not phases.runs_in(phase, self.cfg["mode"]):
            entry["result"] = "skipped"
            return
        self.log("-----> {}".format(phase))
        try:
            builtin = self.BUILTIN_BEFORE.get(phase)
            if builtin:
                builtin(self)
            self.run_sls(phase)
            builtin = self.BUILTIN_AFTER.get(phase)
            if builtin:
                builtin(self)
        except CorpusError as exc:
            entry["result"] = False
            entry["error"] = str(exc)
            raise
        except Exception as exc:  # a bug or an OS error: still roll back, still say why
            entry["result"] = False
            entry["error"] = "{}: {}".format(type(exc).__name__, exc)
            raise CorpusError("phase {} failed: {}".format(phase, entry["error"])) from exc
        finally:
            entry["seconds"] = round(time.monotonic() - started, 3)
        entry["result"] = True

    def rollback(self, failed_phase, error):
        """Undo what this deploy changed, then run the project's rollback phase."""
        cfg, paths, log = self.cfg, self.cfg["paths"], self.log
        log("-----> rollback (after {} failed)".format(failed_phase))
        notes = []
        if self.switched:
            releases.switch_current(paths["current"], self.previous_target)
            notes.append("current back to {}".format(
                os.path.relpath(self.previous_target, paths["root"]) if self.previous_target else "nothing"))
            if releases.tree_signature(paths["data"]) != self.data_signature:
                releases.restore_data(paths["snapshot"], paths["data"])
                notes.append("data/ restored from its snapshot")
        if self.project_synced:
            restore_checkout(cfg, self.record.get("previous_commit"))
            notes.append("project/ back to {}".format((self.record.get("previous_commit") or "empty")[:12]))
        if self.switched:
            try:
                if supervisor.restore_previous(cfg):
                    notes.append("previous app restarted and healthy")
            except CorpusError as exc:
                notes.append("previous app restarted but {}".format(exc))
        if self.bundle_packed:
            for ext in (".tar.gz", ".json"):
                path = os.path.join(paths["bundles"], cfg["commit"] + ext)
                if os.path.exists(path):
                    os.unlink(path)
        cfg["failed_phase"] = failed_phase
        cfg["error"] = error
        try:
            self.run_sls("rollback")
        except CorpusError as exc:
            notes.append("rollback phase failed too: {}".format(exc))
        for note in notes:
            log("       " + note)
        return notes

    def set_aside(self):
        paths = self.cfg["paths"]
        tree = paths["release"] if self.release_made else paths["build_dir"]
        dest = releases.set_aside(tree, paths["failed"], self.cfg["release_id"], self.log.text())
        for leftover in (paths["build_dir"], paths["snapshot"]):
            if leftover and os.path.exists(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
        return dest


def restore_checkout(cfg, commit):
    """Editable mode: put the checkout back to ``commit`` (the last good one)."""
    if not commit:
        return
    tmp = os.path.join(cfg["paths"]["build"], "restore-{}".format(os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        export_tree(cfg["paths"]["project_git"], commit, tmp)
        releases.sync_tree(tmp, cfg["paths"]["project"], keep=cfg["editable_keep"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recover_interrupted(paths, log):
    """Finish the deploys whose owner died (the caller holds the lock, so any record
    still 'running' is orphaned): put back what they changed and set them aside."""
    records = history.load(paths["history"])
    for record in records:
        if record.get("status") != "running":
            continue
        rid = record["id"]
        log("-----> recovering interrupted deploy {} (job {})".format(rid, record.get("job_id")))
        release_dir = os.path.join(paths["releases"], rid)
        live = releases.live_target(paths["current"])
        if record.get("switched") and live != record.get("previous"):
            releases.switch_current(paths["current"], record.get("previous"))
            snapshot = os.path.join(paths["snapshots"], rid)
            if os.path.isdir(os.path.join(snapshot, "data")):
                releases.restore_data(snapshot, paths["data"])
            log("       current back to {}".format(record.get("previous") or "nothing"))
        if record.get("project_synced"):
            restore_checkout({"paths": paths, "editable_keep": record.get("editable_keep", [])},
                             record.get("previous_commit"))
        if record.get("switched"):
            try:
                supervisor.restore_previous({"paths": paths})
            except CorpusError as exc:
                log("       previous app restarted but {}".format(exc))
        tree = release_dir if os.path.isdir(release_dir) else os.path.join(paths["build"], rid)
        releases.set_aside(tree, paths["failed"], rid, "deploy interrupted; recovered by a later deploy\n")
        for leftover in (os.path.join(paths["build"], rid), os.path.join(paths["snapshots"], rid),
                         release_dir + ".partial"):
            shutil.rmtree(leftover, ignore_errors=True)
        for ext in (".tar.gz", ".json"):
            path = os.path.join(paths["bundles"], (record.get("commit") or "-") + ext)
            if record.get("bundle") and os.path.exists(path):
                os.unlink(path)
        record["status"] = "interrupted"
        record["ended"] = history.now()
    history.save(paths["history"], records) if records else None


def _check_branch_not_moved(paths, branch, old, records, log):
    """Refuse a push whose idea of the branch is stale (another deploy won meanwhile)."""
    if old is None:
        return
    last = history.last_deployed_commit(records)
    ref_now = branch_head(paths["project_git"], branch) or ZERO
    if old != ref_now:
        raise CorpusError("Deploy refused: {} moved to {} while this push waited; fetch and "
                          "push again.".format(branch, ref_now[:12]))
    if last and old != last:
        # The deploy that just released the lock succeeded, but git may not have moved
        # the branch yet; wait briefly to tell "someone won" from "an old ref update was lost".
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            ref_now = branch_head(paths["project_git"], branch) or ZERO
            if ref_now != old:
                raise CorpusError("Deploy refused: {} moved to {} while this push waited; fetch "
                                  "and push again.".format(branch, ref_now[:12]))
            time.sleep(0.1)
        log("       note: {} was last deployed at {} but the branch says {}".format(
            branch, last[:12], old[:12]))


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
    # A snapshot holds the data as it was before its release went live; keep those of
    # the kept releases and the newest few (editable deploys and manual rollbacks).
    snapshots = sorted(os.listdir(paths["snapshots"])) if os.path.isdir(paths["snapshots"]) else []
    releases.prune_dir(paths["snapshots"], keep | set(snapshots[-int(cfg["keep_releases"]):]))
    commits = {r.get("commit") for r in records if r.get("id") in keep}
    if os.path.isdir(paths["bundles"]):
        releases.prune_dir(paths["bundles"], {c + ext for c in commits if c for ext in (".tar.gz", ".json")})
    failed = sorted(os.listdir(paths["failed"])) if os.path.isdir(paths["failed"]) else []
    keep_failed = int(cfg["keep_failed"])
    releases.prune_dir(paths["failed"], set(failed[len(failed) - keep_failed:]) if keep_failed else set())


def deploy(name, projects_root, bindings, rev=None, archive=None, old=None, ref=None,
           pillar=None, overrides=None, private_pillar_dir=None, job_id=None, who=None, out=None):
    """Deploy ``rev`` (default: the deploy branch head) of project ``name``.

    ``archive`` is a tar of the commit's tree (a pre-receive hook makes it, since
    the pushed objects are not in the repository yet); ``old`` and ``ref`` come from
    the push. Returns the history record; raises CorpusError when the deploy failed
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
        recover_interrupted(paths, log)
        records = history.load(paths["history"])
        _check_branch_not_moved(paths, branch, old, records, log)
        if rev is None:
            rev = branch_head(paths["project_git"], branch)
            if not rev:
                raise CorpusError("Nothing to deploy: branch {} of {} has no commit yet.".format(
                    branch, paths["project_git"]))
        release_id = releases.new_release_id(paths["releases"], rev)
        build_dir = os.path.join(paths["build"], release_id)
        try:
            if archive:
                releases.extract_tar(archive, build_dir)
                commit = rev
            else:
                commit = export_tree(paths["project_git"], rev, build_dir)
            cfg = settings.build(name, projects_root, pillar=pillar, overrides=overrides,
                                 source_dir=build_dir, private_pillar_dir=private_pillar_dir,
                                 release_id=release_id, commit=commit)
            if cfg["mode"] == "final":
                _stage_bundle(cfg, build_dir, log)
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        record = {
            "id": release_id, "kind": "deploy", "name": name, "status": "running",
            "commit": commit, "mode": cfg["mode"], "env": cfg["env"],
            "pillar_hash": cfg["pillar_hash"], "job_id": job_id,
            "who": who or "{}@{}".format(cfg["user"], socket.gethostname()),
            "started": history.now(), "ended": None, "phases": [],
            "release": cfg["mode"] != "editable",
            "previous": releases.live_target(paths["current"]),
            "previous_commit": history.last_deployed_commit(records),
            "editable_keep": cfg["editable_keep"],
            "switched": False, "project_synced": False,
        }
        log("-----> deploying {} {} ({} mode, env {}) as {}".format(
            name, commit[:12], cfg["mode"], cfg["env"], release_id))
        run = Deploy(cfg, bindings, log, record, build_dir)
        history.upsert(paths["history"], record)
        started = time.monotonic()
        phase = None
        try:
            for phase in phases.ORDER:
                run.run_phase(phase)
        except (CorpusError, KeyboardInterrupt) as exc:
            error = str(exc) or type(exc).__name__
            log("-----> FAILED: {}".format(error))
            notes = run.rollback(phase, error)
            record.update(status="failed", failed_phase=phase, error=error, rollback=notes,
                          ended=history.now(), seconds=round(time.monotonic() - started, 3))
            record["failed_dir"] = run.set_aside()
            history.upsert(paths["history"], record)
            raise CorpusError("Deploy of {} {} failed in phase {} and was rolled back: {}".format(
                name, commit[:12], phase, error)) from None
        record.update(status="success", ended=history.now(),
                      seconds=round(time.monotonic() - started, 3), url=supervisor.app_url(cfg))
        history.upsert(paths["history"], record)
        os.makedirs(paths["logs"], exist_ok=True)
        with open(os.path.join(paths["logs"], "deploy-{}.log".format(release_id)), "w") as fh:
            fh.write(log.text())
        shutil.rmtree(build_dir, ignore_errors=True)
        prune(cfg)
        log("-----> {} is live: {} ({:.1f}s)".format(name, record["url"], record["seconds"]))
        record["result"] = True
        return record


def _stage_bundle(cfg, build_dir, log):
    """Final mode: replace the staged git tree by the verified bundle of the commit."""
    bundles_dir = cfg["paths"]["bundles"]
    manifest = bundle.local_manifest(bundles_dir, cfg["commit"])
    if manifest is None:
        log("-----> fetching bundle of {} from {}".format(cfg["commit"][:12], cfg["bundle"]["source"] or "?"))
        manifest = bundle.fetch(cfg["bundle"]["source"], cfg["commit"], bundles_dir)
    shutil.rmtree(build_dir)
    bundle.unpack(bundles_dir, manifest, build_dir)
    log("       bundle verified: sha256 {} built on {} at {}".format(
        manifest["sha256"][:16], manifest.get("build_host"), manifest.get("built_at")))


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
        commit = history.last_deployed_commit(history.load(paths["history"]))
        if commit is None:
            log("-----> pillar stored; {} has no deploy yet, it applies to the first one".format(name))
            record = {"id": None, "status": "stored", "result": True}
        else:
            log("-----> pillar changed: redeploying {} {}".format(name, commit[:12]))
            record = deploy(name, projects_root, bindings, rev=commit, pillar=pillar,
                            private_pillar_dir=staged, job_id=job_id, who=who, out=log)
        releases.sync_tree(staged, paths["pillar"])
        return record
    finally:
        shutil.rmtree(staged, ignore_errors=True)


# --------------------------------------------------------------------------- queries, rollback

def list_releases(name, projects_root):
    """Kept releases, oldest first: id, commit, mode, status, time, live."""
    paths = settings.project_paths(projects_root, name)
    check_layout(paths)
    records = history.load(paths["history"])
    live = releases.live_release_id(paths["current"], paths["releases"])
    out = []
    for rid in sorted(os.listdir(paths["releases"])):
        if rid.endswith(".partial"):
            continue
        rec = history.find(records, rid) or {}
        out.append({"id": rid, "commit": rec.get("commit"), "mode": rec.get("mode"),
                    "status": rec.get("status"), "time": rec.get("ended") or rec.get("started"),
                    "live": rid == live})
    return out


def status(name, projects_root, pillar=None):
    """What is live, since when, and whether a deploy is running (and whose)."""
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
        "last": records[-1] if records else None,
    }


def rollback(name, projects_root, bindings, release_id=None, data=False, pillar=None,
             job_id=None, out=None):
    """Make a kept release live again (the one before the live one by default).

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
        recover_interrupted(paths, log)
        records = history.load(paths["history"])
        kept = [r for r in history.good_release_ids(records)
                if os.path.isdir(os.path.join(paths["releases"], r))]
        live = releases.live_release_id(paths["current"], paths["releases"])
        if release_id is None:
            older = [r for r in kept if live is None or r < live]
            if not older:
                raise CorpusError("No kept release older than the live one ({}) to roll back "
                                  "to.".format(live))
            release_id = older[-1]
        if release_id not in kept:
            raise CorpusError("Release {} is not a kept good release of {}; kept: {}.".format(
                release_id, name, ", ".join(kept) or "none"))
        target = os.path.join(paths["releases"], release_id)
        snapshot = None
        if data:
            later = [r for r in records if r.get("kind") == "deploy" and r["id"] > release_id
                     and os.path.isdir(os.path.join(paths["snapshots"], r["id"], "data"))]
            if not later:
                raise CorpusError("No data snapshot holds the data of release {}.".format(release_id))
            snapshot = os.path.join(paths["snapshots"], later[0]["id"])
        rid = "rollback-{}".format(time.strftime("%Y%m%dT%H%M%S", time.gmtime()))
        record = {"id": rid, "kind": "rollback", "name": name, "from": live, "to": release_id,
                  "data": bool(data), "job_id": job_id, "started": history.now(), "status": "running",
                  "commit": (history.find(records, release_id) or {}).get("commit")}
        cfg = settings.build(name, projects_root, pillar=pillar, source_dir=target, commit=record["commit"])
        cfg["app_root"] = target
        previous_target = releases.live_target(paths["current"])
        log("-----> rolling {} back to {}".format(name, release_id))
        releases.switch_current(paths["current"], target)
        try:
            supervisor.restart(cfg, target)
            supervisor.check_health(cfg)
        except CorpusError as exc:
            releases.switch_current(paths["current"], previous_target)
            if previous_target:
                supervisor.restart(cfg, previous_target)
            raise CorpusError("Rollback to {} refused: {} The live release is unchanged.".format(
                release_id, exc)) from None
        if snapshot:
            safety = os.path.join(paths["snapshots"], rid)
            releases.snapshot_data(paths["data"], safety)
            releases.restore_data(snapshot, paths["data"])
            log("       data/ restored from {} (previous data kept in {})".format(
                os.path.relpath(snapshot, paths["root"]), os.path.relpath(safety, paths["root"])))
            cfg["failed_phase"], cfg["error"] = None, None
            run = Deploy(cfg, bindings, log, record, target)
            run.run_sls("rollback")
            supervisor.restart(cfg, target)
        record.update(status="success", ended=history.now())
        history.upsert(paths["history"], record)
        log("-----> {} is live again".format(release_id))
        record["result"] = True
        return record


def stop(name, projects_root, pillar=None):
    """Stop the app and its supervisor."""
    cfg = settings.build(name, projects_root, pillar=pillar)
    supervisor.shutdown(cfg)
    return {"name": name, "app": supervisor.status(cfg)}
