"""The project engine driven with a fake Salt (``SaltBindings(apply=...)``).

Everything else is real: the layout from ``init_project``, a bare git repository,
rsync-made releases, snapshots, bundles, the history file, and — for the flows that
reach the switch — supervisord running a tiny ``http.server`` and a real health check.
"""

import os
import shutil
import socket
import subprocess
import urllib.request

import pytest

from mc_project.project import bundle, engine, history, layout, lock, recipe, releases, settings, supervisor
from mc_project.errors import CorpusError

NAME = "app"
GIT_ENV = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}


def git(cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    proc = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, "git {}: {}{}".format(" ".join(args), proc.stdout, proc.stderr)
    return proc.stdout.strip()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:{}{}".format(port, path), timeout=10) as resp:
        return resp.read().decode()


# Each phase of the sample project has one state, so the fake Salt sees every phase run.
PHASE_SLS = "{{ cfg.name }}-{{ phase }}:\n  cmd.run:\n    - name: echo {{ phase }} {{ cfg.release_id }}\n"
ROLLBACK_SLS = "{{ cfg.name }}-rollback:\n  cmd.run:\n    - name: echo rollback after {{ cfg.failed_phase }}\n"


class FakeSalt:
    """Stands in for ``state.high``: records each phase it is given and returns
    state.high-shaped results; ``fail`` makes a phase's states fail, ``actions``
    run a side effect (a migration writing data/, a build writing files) first."""

    def __init__(self):
        self.calls = []
        self.fail = {}
        self.actions = {}

    def apply(self, high):
        phase = next(iter(high.values()))["__sls__"].split(".", 1)[1]
        self.calls.append((phase, high))
        if phase in self.actions:
            self.actions[phase]()
        out = {}
        for n, (state_id, body) in enumerate(high.items()):
            module = next(k for k in body if not k.startswith("__"))
            args = body[module]
            name = next(a["name"] for a in args if isinstance(a, dict) and "name" in a)
            failed = phase in self.fail
            out["{}_|-{}_|-{}_|-{}".format(module, state_id, name, args[0])] = {
                "__id__": state_id, "__run_num__": n, "name": name, "duration": 3.0,
                "result": not failed,
                "comment": self.fail.get(phase) or 'Command "{}" run'.format(name),
                "changes": {"retcode": 1 if failed else 0, "pid": 1,
                            "stdout": "" if failed else name[len("echo "):],
                            "stderr": "boom in {}".format(phase) if failed else ""},
            }
        return out

    def phases_run(self):
        return [phase for phase, _high in self.calls]

    def bindings(self):
        return engine.SaltBindings(self.apply, {"salt": {"file.file_exists": os.path.isfile},
                                                "grains": {}, "pillar": {}, "opts": {}})


class Project:
    """A project laid out by ``init_project``, with a source repository to commit from."""

    def __init__(self, tmp_path, name=NAME):
        self.name = name
        self.root = str(tmp_path / "projects")
        self.changes = layout.init_project(name, self.root, salt_call="salt-call")
        self.paths = settings.project_paths(self.root, name)
        self.src = str(tmp_path / "src-{}".format(name))
        self.salt = FakeSalt()
        self.port = free_port()
        self.lines = []
        os.makedirs(self.src)
        git(self.src, "init", "-q", "-b", "main")
        files = {".salt/{}.sls".format(p): PHASE_SLS for p in recipe.PHASES}
        files[".salt/rollback.sls"] = ROLLBACK_SLS
        files["public/index.html"] = "v1\n"
        files["unchanged.txt"] = "the same in every commit\n" * 100
        self.first = self.commit(files)

    def commit(self, files, publish=True):
        """Write and commit ``files`` ({path: text or None}); make the bare repo's main
        point at it (a fetch: no hook runs). Returns the sha."""
        for rel, text in files.items():
            path = os.path.join(self.src, rel)
            if text is None:
                os.unlink(path)
            else:
                write(path, text)
        git(self.src, "add", "-A")
        git(self.src, "commit", "-qm", "change")
        sha = git(self.src, "rev-parse", "HEAD")
        if publish:
            git(self.paths["project_git"], "fetch", "-q", self.src, "+main:refs/heads/main")
        return sha

    def web_settings(self, **more):
        base = {"web": "exec python3 -m http.server $PORT --bind 127.0.0.1 --directory public",
                "port": self.port, "health": {"timeout": 20}}
        base.update(more)
        return base

    def deploy(self, **kw):
        kw.setdefault("out", self.lines.append)
        return engine.deploy(self.name, self.root, self.salt.bindings(), **kw)

    def records(self):
        return history.load(self.paths["history"])

    def live(self):
        return releases.live_target(self.paths["current"])

    def ls(self, key):
        path = self.paths[key]
        return sorted(os.listdir(path)) if os.path.isdir(path) else None

    def shutdown(self):
        supervisor.shutdown({"paths": self.paths})


@pytest.fixture
def project(tmp_path):
    made = []

    def make(name=NAME):
        p = Project(tmp_path, name)
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown()


def fake_live_release(p, files=None):
    """A release that is live without a deploy having run (no app is started)."""
    rid = "20000101T000000-00000000"
    for rel, text in (files or {"public/index.html": "live\n"}).items():
        write(os.path.join(p.paths["releases"], rid, rel), text)
    releases.switch_current(p.paths["current"], os.path.join(p.paths["releases"], rid))
    write(os.path.join(p.paths["data"], "db.json"), '{"count": 7}')
    return rid


def assert_failed_deploy(p, phase, rid_live, notes=()):
    """The last deploy failed in ``phase``: recorded, set aside, and nothing else changed."""
    record = p.records()[-1]
    assert record["status"] == "failed"
    assert record["failed_phase"] == phase
    assert record["ended"]
    done = [(e["phase"], e["result"]) for e in record["phases"]]
    assert done[-1] == (phase, False)
    assert all(result in (True, "skipped") for _ph, result in done[:-1])
    assert record["phases"][-1]["error"] and record["phases"][-1]["error"] in record["error"]
    failed_dir = os.path.join(p.paths["failed"], record["id"])
    assert record["failed_dir"] == failed_dir
    log = read(os.path.join(failed_dir, "deploy.log"))
    assert "-----> {}\n".format(phase) in log
    assert "-----> FAILED: {}\n".format(record["error"]) in log
    assert "-----> rollback (after {} failed)".format(phase) in log
    for note in notes:
        assert note in record["rollback"]
    # the live release, the data and the store are as before
    assert p.live() == os.path.join(p.paths["releases"], rid_live)
    assert p.ls("releases") == [rid_live]
    assert p.ls("build") == []
    assert record["id"] not in (p.ls("snapshots") or [])
    assert lock.read_holder(p.paths["lock"]) is None
    # the project's rollback phase ran, and knew which phase failed
    rollback_high = [high for ph, high in p.salt.calls if ph == "rollback"]
    assert len(rollback_high) == 1
    assert rollback_high[0]["{}-rollback".format(p.name)]["cmd"][1] == {"name": "echo rollback after {}".format(phase)}
    return record, failed_dir


# --------------------------------------------------------------------------- refusals: nothing changes

def test_init_project_layout(project):
    p = project()
    assert p.paths["project_git"] in p.changes
    for key in layout.DIRS:
        assert os.path.isdir(p.paths[key])
    assert read(os.path.join(p.paths["project_git"], "corpus.conf")) == layout.hook_config(NAME, "project", "salt-call")
    assert layout.init_project(NAME, p.root, salt_call="salt-call") == {}  # idempotent


def test_missing_layout(tmp_path):
    root = str(tmp_path / "projects")
    with pytest.raises(CorpusError) as err:
        engine.deploy(NAME, root, FakeSalt().bindings(), out=lambda line: None)
    assert str(err.value) == (
        "Project layout under {} is missing (project_git, pillar_git, releases, data): run "
        "mc_project.init_project first.".format(os.path.join(root, NAME)))
    assert not os.path.exists(root)


def test_partly_missing_layout(project):
    p = project()
    os.rmdir(p.paths["releases"])
    with pytest.raises(CorpusError, match=r"is missing \(releases\): run mc_project.init_project first"):
        p.deploy()
    assert not os.path.exists(p.paths["history"])
    assert p.salt.calls == []


def test_bad_name(project, tmp_path):
    with pytest.raises(CorpusError, match="Project name 'a;b' is invalid"):
        engine.deploy("a;b", str(tmp_path), FakeSalt().bindings(), out=lambda line: None)


def test_push_of_another_branch_is_not_deployed(project):
    p = project()
    result = p.deploy(ref="refs/heads/feature", old=engine.ZERO, rev=p.first)
    assert result == {"id": None, "status": "not deployed", "ref": "refs/heads/feature", "result": True}
    assert p.lines == ["-----> refs/heads/feature accepted, not deployed: only main deploys app"]
    assert p.salt.calls == []
    assert not os.path.exists(p.paths["history"])
    assert p.ls("releases") == [] and p.ls("build") == [] and p.ls("snapshots") == []
    assert p.live() is None


def test_deploy_branch_from_settings(project):
    p = project()
    result = p.deploy(ref="refs/heads/main", old=engine.ZERO, rev=p.first,
                      overrides={"deploy_branch": "production"})
    assert result["status"] == "not deployed"
    assert "only production deploys app" in p.lines[0]


def test_stale_old_is_refused(project):
    p = project()
    second = p.commit({"public/index.html": "v2\n"})
    third = p.commit({"public/index.html": "v3\n"}, publish=False)
    # this push believed main was at the first commit, but it moved to the second meanwhile
    with pytest.raises(CorpusError) as err:
        p.deploy(ref="refs/heads/main", old=p.first, rev=third)
    assert str(err.value) == ("Deploy refused: main moved to {} while this push waited; fetch and "
                              "push again.".format(second[:12]))
    with pytest.raises(CorpusError, match="Deploy refused: main moved to {}".format(second[:12])):
        p.deploy(ref="refs/heads/main", old=engine.ZERO, rev=third)
    assert p.salt.calls == []
    assert p.records() == []
    assert p.ls("releases") == [] and p.ls("build") == []
    assert lock.read_holder(p.paths["lock"]) is None


def quarantined(p):
    """The source's objects where git keeps a push's objects until it lands them."""
    pushed = os.path.join(p.paths["root"], "pushed.git")
    git(p.paths["root"], "clone", "-q", "--bare", p.src, pushed)
    quarantine = os.path.join(p.paths["project_git"], "objects", "incoming-test")
    shutil.copytree(os.path.join(pushed, "objects"), quarantine)
    return quarantine


def landing_push(p, commit, delay):
    """Stands in for git's receive-pack after its hook returned: it lands ``commit``
    (objects, then the branch) ``delay`` seconds later, then exits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.Popen(
        ["sh", "-c", "sleep {}; git fetch -q {} {}:refs/heads/main".format(delay, p.src, commit)],
        cwd=p.paths["project_git"], env=env)


def test_a_deploy_waits_for_the_last_push_to_land_before_judging_the_branch(project):
    p = project()
    web = p.web_settings(env="staging")
    p.deploy(overrides=web)
    second = p.commit({"public/index.html": "v2\n"}, publish=False)
    third = p.commit({"public/index.html": "v3\n"}, publish=False)
    git(p.paths["project_git"], "fetch", "-q", p.src, "{}:refs/pushed/second".format(second))
    git(p.paths["project_git"], "fetch", "-q", p.src, "{}:refs/pushed/third".format(third))

    landing = landing_push(p, second, 4)  # longer than any fixed grace would be
    won = p.deploy(ref="refs/heads/main", old=p.first, rev=second, push_pid=landing.pid, overrides=web)
    assert won["push"]["pid"] == landing.pid
    # the next push thought main was at the first commit: once the first push landed, it is stale
    with pytest.raises(CorpusError, match="Deploy refused: main moved to {}".format(second[:12])):
        p.deploy(ref="refs/heads/main", old=p.first, rev=third, overrides=web)
    assert landing.poll() == 0
    assert [r["status"] for r in p.records()] == ["success", "success"]
    assert p.live() == os.path.join(p.paths["releases"], won["id"])
    assert http_get(p.port, "/index.html") == "v2\n"


def test_a_push_whose_objects_are_still_landing_is_not_put_back(project):
    p = project()
    web = p.web_settings(env="staging")
    p.deploy(overrides=web)
    second = p.commit({"public/index.html": "v2\n"}, publish=False)
    quarantine = quarantined(p)
    landing = landing_push(p, second, 1)
    won = p.deploy(ref="refs/heads/main", old=p.first, rev=second, push_pid=landing.pid,
                   objects=quarantine, overrides=web)
    # the repository does not hold the commit yet; the next deploy waits for the push
    assert engine.recover(NAME, p.root, p.salt.bindings(), out=p.lines.append)["recovered"] == []
    assert landing.wait(5) == 0
    assert [r["status"] for r in p.records()] == ["success", "success"]
    assert p.live() == os.path.join(p.paths["releases"], won["id"])


def test_a_push_that_died_before_landing_is_put_back(project):
    p = project()
    web = p.web_settings(env="staging")
    first = p.deploy(overrides=web)
    second = p.commit({"public/index.html": "v2\n"}, publish=False)
    quarantine = quarantined(p)
    gone = subprocess.Popen(["true"])
    gone.wait()
    won = p.deploy(ref="refs/heads/main", old=p.first, rev=second, push_pid=gone.pid,
                   objects=quarantine, overrides=web)
    assert won["push"] is None  # nothing to wait for
    shutil.rmtree(quarantine)  # git dropped the quarantine: the commit never entered the repository
    assert engine.recover(NAME, p.root, p.salt.bindings(), out=p.lines.append)["recovered"] == [won["id"]]
    assert [r["status"] for r in p.records()] == ["success", "not landed", "success"]
    assert p.live() == os.path.join(p.paths["releases"], first["id"])
    assert http_get(p.port, "/index.html") == "v1\n"


def test_deleting_the_deploy_branch_is_refused(project):
    p = project()
    with pytest.raises(CorpusError, match="Deleting the deploy branch main is refused."):
        p.deploy(ref="refs/heads/main", old=p.first, rev=engine.ZERO)
    assert p.records() == []


def test_nothing_to_deploy(project, tmp_path):
    p = project()
    git(p.paths["project_git"], "update-ref", "-d", "refs/heads/main")
    with pytest.raises(CorpusError) as err:
        p.deploy()
    assert str(err.value) == "Nothing to deploy: branch main of {} has no commit yet.".format(
        p.paths["project_git"])
    assert p.records() == [] and p.ls("build") == []


def test_unknown_commit(project):
    p = project()
    with pytest.raises(CorpusError, match="Commit 1234567 is not in"):
        p.deploy(rev="1234567")
    assert p.records() == [] and p.ls("build") == []


def test_malformed_sample_in_the_pushed_commit_changes_nothing(project):
    p = project()
    rid = fake_live_release(p)
    p.commit({".salt/PILLAR.sample": "data: [unclosed\n"})
    with pytest.raises(CorpusError, match=r"^PILLAR.sample .*PILLAR.sample is not valid YAML at line 2\.$"):
        p.deploy(overrides={"env": "staging"})
    assert p.salt.calls == [] and p.records() == []
    assert p.ls("build") == [] and p.ls("releases") == [rid]
    assert p.live() == os.path.join(p.paths["releases"], rid)


def test_final_mode_without_a_bundle_changes_nothing(project):
    p = project()
    rid = fake_live_release(p)
    with pytest.raises(CorpusError) as err:
        p.deploy(overrides={"env": "prod"})
    assert str(err.value) == ("No bundle source is set (setting bundle.source) and no bundle for "
                              "commit {} was fetched.".format(p.first[:12]))
    assert p.salt.calls == [] and p.records() == []
    assert p.ls("build") == [] and p.ls("releases") == [rid] and p.ls("bundles") == []
    assert read(os.path.join(p.paths["data"], "db.json")) == '{"count": 7}'


# --------------------------------------------------------------------------- failures before the switch

BEFORE_SWITCH = ["backup", "gather_variables", "pre_install", "configure", "build", "post_build",
                 "bundle", "deploy"]


@pytest.mark.parametrize("phase", BEFORE_SWITCH)
def test_cooking_failure_before_the_switch(project, phase):
    p = project()
    rid_live = fake_live_release(p)
    p.salt.fail[phase] = 'Command "echo {}" run'.format(phase)
    with pytest.raises(CorpusError) as err:
        p.deploy(overrides={"env": "staging"})
    assert str(err.value) == (
        "Deploy of app {} failed in phase {} and was rolled back: phase {} failed: app-{} exited 1".format(
            p.first[:12], phase, phase, phase))
    record, failed_dir = assert_failed_deploy(p, phase, rid_live)
    assert p.salt.phases_run() == list(recipe.PHASES[:recipe.PHASES.index(phase) + 1]) + ["rollback"]
    assert [e["phase"] for e in record["phases"]] == list(recipe.PHASES[:recipe.PHASES.index(phase) + 1])
    assert record["mode"] == "cooking" and record["commit"] == p.first
    assert read(os.path.join(p.paths["data"], "db.json")) == '{"count": 7}'
    # the failed tree (the release once made, else the build) is kept with its log
    assert read(os.path.join(failed_dir, "tree", "public", "index.html")) == "v1\n"
    assert p.ls("bundles") == []  # a bundle of a failed deploy is never kept
    log = read(os.path.join(failed_dir, "deploy.log"))
    assert "  [FAILED] app-{} (3 ms)".format(phase) in log
    assert "      boom in {}".format(phase) in log
    assert "\n".join(p.lines) + "\n" == log  # the pusher saw the same lines, as they came


def test_editable_failure_skips_bundle_and_makes_no_release(project):
    p = project()
    fake_live_release(p)
    p.salt.fail["deploy"] = "no"
    with pytest.raises(CorpusError):
        p.deploy(overrides={"env": "dev"})
    record = p.records()[-1]
    assert [(e["phase"], e["result"]) for e in record["phases"]][-3:] == [
        ("post_build", True), ("bundle", "skipped"), ("deploy", False)]
    assert "bundle" not in p.salt.phases_run()
    # editable mode synced the tree into project/ in build and made no release; the
    # staged tree is what was set aside
    assert read(os.path.join(p.paths["project"], "public", "index.html")) == "v1\n"
    assert p.ls("releases") == ["20000101T000000-00000000"]
    assert read(os.path.join(record["failed_dir"], "tree", "public", "index.html")) == "v1\n"


def test_a_crashing_phase_is_rolled_back_too(project):
    p = project()
    rid_live = fake_live_release(p)

    def crash():
        raise OSError(13, "Permission denied")

    p.salt.actions["configure"] = crash
    with pytest.raises(CorpusError, match=r"failed in phase configure and was rolled back: phase configure "
                                          r"failed: PermissionError: \[Errno 13\] Permission denied"):
        p.deploy(overrides={"env": "staging"})
    assert_failed_deploy(p, "configure", rid_live)


def test_a_full_disk_is_named_in_one_sentence_and_rolled_back(project):
    p = project()
    rid_live = fake_live_release(p)

    def full():
        raise OSError(28, "No space left on device")

    p.salt.actions["configure"] = full
    with pytest.raises(CorpusError, match=r"failed in phase configure and was rolled back: The "
                                          r"filesystem /\S* holding \S+/app is full, so the deploy"):
        p.deploy(overrides={"env": "staging"})
    record = p.records()[-1]
    assert record["status"] == "failed" and record["failed_phase"] == "configure"
    assert "is full" in record["error"] and "Traceback" not in record["error"]
    assert p.live() == os.path.join(p.paths["releases"], rid_live)


def test_phase_that_does_not_render_fails_the_deploy(project):
    p = project()
    rid_live = fake_live_release(p)
    p.commit({".salt/configure.sls": "x:\n  cmd.run:\n    - name: {{ cfg.no_such_key }}\n"})
    with pytest.raises(CorpusError, match=r"failed in phase configure .* Phase configure "
                                          r"\(\.salt/configure\.sls\) does not render"):
        p.deploy(overrides={"env": "staging"})
    record = p.records()[-1]
    assert record["status"] == "failed" and record["failed_phase"] == "configure"
    assert p.live() == os.path.join(p.paths["releases"], rid_live)


def test_an_interrupted_deploy_is_recovered_by_the_next(project):
    p = project()
    rid_live = fake_live_release(p)
    dead = "20000102T000000-deadbeef"
    write(os.path.join(p.paths["build"], dead, "half.txt"), "half built")
    write(os.path.join(p.paths["snapshots"], dead, "data", "db.json"), "{}")
    history.upsert(p.paths["history"], {"id": dead, "kind": "deploy", "status": "running",
                                        "commit": "deadbeef" * 5, "job_id": "job-dead", "phases": []})
    p.salt.fail["configure"] = "stop here"
    with pytest.raises(CorpusError):
        p.deploy(overrides={"env": "staging"})
    recovered = history.find(p.records(), dead)
    assert recovered["status"] == "interrupted" and recovered["ended"]
    assert read(os.path.join(p.paths["failed"], dead, "tree", "half.txt")) == "half built"
    assert read(os.path.join(p.paths["failed"], dead, "deploy.log")).startswith(
        "-----> recovering interrupted deploy {}".format(dead))
    assert dead not in p.ls("snapshots")
    assert "-----> recovering interrupted deploy {} (job job-dead)".format(dead) in p.lines
    assert p.live() == os.path.join(p.paths["releases"], rid_live)


def test_final_mode_runs_the_bundle_not_the_checkout(project):
    cooking = project("cook")
    # the cooking build makes a file that is not in git
    cooking.salt.actions["build"] = lambda: write(
        os.path.join(cooking.paths["build"], os.listdir(cooking.paths["build"])[0], "built.txt"), "built\n")
    cooking.salt.fail["deploy"] = "stop before the switch"
    with pytest.raises(CorpusError):
        cooking.deploy(overrides={"env": "staging"})
    # the failed deploy removed its bundle: pack the set-aside release as staging would have
    failed_tree = os.path.join(cooking.records()[-1]["failed_dir"], "tree")
    assert read(os.path.join(failed_tree, "built.txt")) == "built\n"
    cfg = settings.build("cook", cooking.root, overrides={"env": "staging"}, release_id="r-staging",
                         commit=cooking.first, source_dir=failed_tree)
    bundle.pack(cfg, failed_tree)

    prod = project("prod")
    git(prod.paths["project_git"], "fetch", "-q", cooking.src, "+main:refs/heads/main")
    rid_live = fake_live_release(prod)
    prod.salt.fail["configure"] = "stop before the switch"
    with pytest.raises(CorpusError, match="failed in phase configure"):
        prod.deploy(overrides={"env": "prod", "bundle": {"source": cooking.paths["bundles"]}})
    assert_failed_deploy(prod, "configure", rid_live)
    record = prod.records()[-1]
    assert record["mode"] == "final"
    manifest = bundle.local_manifest(prod.paths["bundles"], cooking.first)
    assert manifest["release_id"] == "r-staging"
    assert "       bundle verified: sha256 {}".format(manifest["sha256"][:16]) in "\n".join(prod.lines)
    # the staged tree was the bundle: it holds what the cooking build made
    assert read(os.path.join(record["failed_dir"], "tree", "built.txt")) == "built\n"
    assert "build" not in prod.salt.phases_run() and "post_build" not in prod.salt.phases_run()


def test_final_mode_refuses_a_tampered_bundle(project):
    cooking = project("cook")
    release = os.path.join(cooking.root, "some-release")
    write(os.path.join(release, "public", "index.html"), "v1\n")
    cfg = settings.build("cook", cooking.root, overrides={"env": "staging"}, release_id="r1",
                         commit=cooking.first)
    manifest = bundle.pack(cfg, release)
    obj = bundle.object_path(bundle.objects_dir(cooking.paths["bundles"]), manifest["files"][-1]["sha256"])
    os.chmod(obj, 0o644)
    with open(obj, "ab") as fh:
        fh.write(b"\0evil")
    prod = project("prod")
    git(prod.paths["project_git"], "fetch", "-q", cooking.src, "+main:refs/heads/main")
    rid_live = fake_live_release(prod)
    with pytest.raises(CorpusError, match="^Bundle object .* fails verification: its sha256 "):
        prod.deploy(overrides={"env": "prod", "bundle": {"source": cooking.paths["bundles"]}})
    assert prod.salt.calls == [] and prod.records() == []
    assert prod.ls("bundles") == [] and prod.ls("build") == [] and prod.ls("releases") == [rid_live]
    assert [f for _d, _s, files in os.walk(prod.paths["archives"]) for f in files] == []


# --------------------------------------------------------------------------- through the switch (supervisord)

def test_cooking_deploys_switch_and_roll_back_after_the_switch(project):
    p = project()
    web = p.web_settings(env="staging")

    # 1. a good deploy: release, bundle, switch, app answering
    first = p.deploy(overrides=web)
    rid1 = first["id"]
    assert first["status"] == "success" and first["result"] is True
    assert p.salt.phases_run() == list(recipe.PHASES)
    assert [(e["phase"], e["result"]) for e in p.records()[-1]["phases"]] == [(ph, True) for ph in recipe.PHASES]
    assert p.live() == os.path.join(p.paths["releases"], rid1)
    assert p.ls("releases") == [rid1] and p.ls("build") == []
    assert p.ls("bundles") == [p.first + ".json"]
    assert p.ls("snapshots") == [rid1]
    assert http_get(p.port, "/index.html") == "v1\n"
    assert first["url"] == "http://127.0.0.1:{}/".format(p.port)
    assert "deploy-{}.log".format(rid1) in p.ls("logs")
    assert "-----> app is live: http://127.0.0.1:{}/".format(p.port) in p.lines[-1]
    assert engine.list_releases(NAME, p.root) == [
        {"id": rid1, "commit": p.first, "mode": "cooking", "status": "success",
         "time": p.records()[-1]["ended"], "live": True}]
    st = engine.status(NAME, p.root, pillar=web)
    assert st["live"] is True and st["release"] == rid1 and st["commit"] == p.first
    assert st["app"] == "RUNNING" and st["deploying"] is False and st["interrupted"] == []
    assert st["url"] == "http://127.0.0.1:{}/".format(p.port)

    # 2. the live app's data, then a commit whose migration touches data/ and fails
    write(os.path.join(p.paths["data"], "db.json"), '{"schema": 1}')
    second = p.commit({"public/index.html": "v2\n"})

    def migrate():
        write(os.path.join(p.paths["data"], "db.json"), '{"schema": 2}')
        write(os.path.join(p.paths["data"], "new.txt"), "made by the migration")

    p.salt.actions["post_deploy"] = migrate
    p.salt.fail["post_deploy"] = "migration failed"
    p.salt.calls.clear()
    with pytest.raises(CorpusError) as err:
        p.deploy(overrides=web)
    assert "failed in phase post_deploy and was rolled back" in str(err.value)
    record, failed_dir = assert_failed_deploy(p, "post_deploy", rid1, notes=(
        "new release stopped", "data/ restored from its snapshot"))
    assert record["commit"] == second
    assert [e["step"] for e in record["steps"]] == ["snapshot_data", "install_dependencies", "make_release",
                                                     "pack_bundle", "run_release", "start_new"]
    assert read(os.path.join(p.paths["data"], "db.json")) == '{"schema": 1}'
    assert not os.path.exists(os.path.join(p.paths["data"], "new.txt"))
    assert http_get(p.port, "/index.html") == "v1\n"
    assert p.ls("bundles") == [p.first + ".json"]
    # the set-aside release shares the unchanged file with the live one (hard link)
    tree = os.path.join(failed_dir, "tree")
    assert read(os.path.join(tree, "public", "index.html")) == "v2\n"
    assert os.stat(os.path.join(tree, "unchanged.txt")).st_ino == \
        os.stat(os.path.join(p.paths["releases"], rid1, "unchanged.txt")).st_ino
    assert history.last_deployed_commit(p.records()) == p.first

    # 3. a release whose health check fails is rolled back as well
    del p.salt.actions["post_deploy"], p.salt.fail["post_deploy"]
    p.salt.calls.clear()
    with pytest.raises(CorpusError, match=r"failed in phase post_deploy .*Health check "
                                          r"http://127\.0\.0\.1:\d+/missing failed: HTTP 404 after 1"):
        p.deploy(overrides=dict(web, health={"path": "/missing", "timeout": 1}))
    assert_failed_deploy(p, "post_deploy", rid1, notes=("new release stopped",))
    assert http_get(p.port, "/index.html") == "v1\n"

    # 4. the next good deploy goes live; its unchanged files are links to the earlier
    # releases, and keep_releases=1 prunes the older release (never the live one)
    third = p.commit({"public/index.html": "v3\n"})
    p.salt.calls.clear()
    record = p.deploy(overrides=dict(web, keep_releases=1))
    rid3 = record["id"]
    assert record["commit"] == third
    assert p.ls("releases") == [rid3]
    assert p.ls("bundles") == [third + ".json"]
    assert http_get(p.port, "/index.html") == "v3\n"
    r3 = os.path.join(p.paths["releases"], rid3)
    assert os.stat(os.path.join(r3, "unchanged.txt")).st_ino == os.stat(os.path.join(tree, "unchanged.txt")).st_ino
    assert os.stat(os.path.join(r3, "public", "index.html")).st_ino != \
        os.stat(os.path.join(tree, "public", "index.html")).st_ino
    assert read(os.path.join(tree, "public", "index.html")) == "v2\n"
    assert [r["status"] for r in p.records()] == ["success", "failed", "failed", "success"]
    assert len(p.ls("failed")) == 2


def test_editable_failure_after_the_build_puts_the_checkout_back(project):
    p = project()
    web = p.web_settings(env="dev")
    first = p.deploy(overrides=web)
    assert first["status"] == "success" and first["mode"] == "editable"
    assert p.live() == p.paths["project"]
    assert p.ls("releases") == []
    assert http_get(p.port, "/index.html") == "v1\n"
    os.makedirs(os.path.join(p.paths["project"], ".venv"))
    write(os.path.join(p.paths["project"], ".venv", "marker"), "kept across syncs")

    p.commit({"public/index.html": "v2\n", "extra.txt": "new file"})
    p.salt.fail["post_build"] = "tests failed"
    with pytest.raises(CorpusError, match="failed in phase post_build"):
        p.deploy(overrides=web)
    record = p.records()[-1]
    assert record["status"] == "failed" and record["failed_phase"] == "post_build"
    assert "project/ back to {}".format(p.first[:12]) in record["rollback"]
    # project/ holds the first commit again, what editable_keep protects stays
    assert read(os.path.join(p.paths["project"], "public", "index.html")) == "v1\n"
    assert not os.path.exists(os.path.join(p.paths["project"], "extra.txt"))
    assert read(os.path.join(p.paths["project"], ".venv", "marker")) == "kept across syncs"
    assert p.live() == p.paths["project"]
    assert http_get(p.port, "/index.html") == "v1\n"


def test_housekeeping_after_the_commit_only_warns(project, monkeypatch):
    """Once the deploy is recorded and traffic has moved, a failing prune or log write
    cannot fail the push: what the push says is what is live."""
    p = project()
    web = p.web_settings(env="staging")

    def broken(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine, "prune", broken)
    monkeypatch.setattr(engine, "_write_log", broken)
    record = p.deploy(overrides=web)
    assert record["status"] == "success" and record["result"] is True
    assert p.records()[-1]["status"] == "success"
    assert http_get(p.port, "/index.html") == "v1\n"
    warnings = [line for line in p.lines if "warning:" in line]
    assert any("pruning old releases failed" in line for line in warnings), p.lines
    assert any("writing the deploy log failed" in line for line in warnings), p.lines


def test_rollback_goes_to_the_release_before_in_deploy_order(project, monkeypatch):
    """Two deploys within one second get ids that sort by commit, not by time: the
    release before the live one is the one deployed before it."""
    p = project()
    web = p.web_settings(env="staging", keep_releases=5)
    ids = iter(["20990101T000000-99999999", "20990101T000001-bbbbbbbb", "20990101T000001-aaaaaaaa"])
    monkeypatch.setattr(releases, "new_release_id", lambda _dir, _commit, **_kw: next(ids))
    first = p.deploy(overrides=web)["id"]
    p.commit({"public/index.html": "v2\n"})
    second = p.deploy(overrides=web)["id"]
    p.commit({"public/index.html": "v3\n"})
    third = p.deploy(overrides=web)["id"]
    assert third < second  # the id order is not the deploy order
    assert [r["id"] for r in engine.list_releases(NAME, p.root)] == [first, second, third]
    record = engine.rollback(NAME, p.root, p.salt.bindings(), pillar=web, out=p.lines.append)
    assert record["to"] == second
    assert http_get(p.port, "/index.html") == "v2\n"
