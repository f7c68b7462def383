"""The master side: a real salt-master and salt-minion (pytest-salt-factories).

The corpus modules reach both daemons through the ``salt.loader`` entry point (no
``saltutil.sync_*``). A project is initialised on the minion from the master, a push
to its bare repo deploys through the hook (whose salt-call talks to the master), then:

* ``salt-run mc_project.deploy MINION NAME`` deploys and returns per-phase results;
* ``salt MINION state.apply`` with ``mc_project.deployed`` in the top file deploys the
  branch head when it is not live (``test=True`` only says so);
* ``mc_project.present`` sets a new project up once, then reports nothing to change.
"""

import json
import os
import shlex
import shutil
import uuid

import pytest
import yaml

from support.corpus import EXAMPLES
from support.git import commit_files, git, head, push
from support.web import http_get
from mc_project.project import recipe
from mc_project.project import settings as mc_settings
from mc_project.project import supervisor

APP = "mastapp"


@pytest.fixture(scope="module")
def projects_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("minion-projects"))


@pytest.fixture(scope="module")
def master(salt_factories):
    factory = salt_factories.salt_master_daemon("corpus-master-{}".format(uuid.uuid4().hex[:6]))
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def minion(master, projects_root):
    factory = master.salt_minion_daemon(
        "corpus-minion-{}".format(uuid.uuid4().hex[:6]),
        overrides={"mc_project": {"projects_root": projects_root}})
    with factory.started():
        yield factory
    for name in os.listdir(projects_root):
        if name.startswith("."):  # the deploy agent's directory, not a project
            continue
        cfg = {"paths": mc_settings.project_paths(projects_root, name)}
        if os.path.exists(supervisor.conf_path(cfg)):
            supervisor.shutdown(cfg)


@pytest.fixture(scope="module")
def salt_cli(master):
    return master.salt_cli(timeout=600)


@pytest.fixture(scope="module")
def salt_run_cli(master):
    return master.salt_run_cli(timeout=600)


@pytest.fixture(scope="module")
def app(minion, salt_cli, projects_root, tmp_path_factory):
    """APP initialised on the minion from the master, its first commit pushed and live."""
    ret = salt_cli.run("mc_project.init_project", APP, minion_tgt=minion.id)
    assert ret.returncode == 0, ret
    paths = mc_settings.project_paths(projects_root, APP)
    src = str(tmp_path_factory.mktemp("src") / APP)
    shutil.copytree(os.path.join(EXAMPLES, "wsgi-app"), src)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "initial")
    return {"paths": paths, "src": src, "init": ret.data}


def get(name, path="/"):
    return http_get(mc_settings.default_port(name), path)


def history(paths):
    with open(paths["history"], encoding="utf-8") as fh:
        return json.load(fh)


def state_results(ret):
    """The state returns of one minion's state.apply, as a list."""
    assert isinstance(ret.data, dict), ret
    return list(ret.data.values())


def test_init_from_master_and_push_deploys_through_the_minion(app, minion):
    paths = app["paths"]
    assert paths["project_git"] in app["init"]
    # The modules came through the salt.loader entry point: nothing was synced.
    extmods = minion.config["extension_modules"]
    assert not os.path.exists(os.path.join(extmods, "modules", "mc_project.py"))
    # The hook calls salt-call with the minion's configuration, talking to the master.
    with open(os.path.join(paths["project_git"], "corpus.conf"), encoding="utf-8") as fh:
        conf = dict(line.split("=", 1) for line in fh.read().splitlines())
    salt_call = shlex.split(shlex.split(conf["CORPUS_SALT_CALL"])[0])
    assert salt_call[1:] == ["-c", minion.config_dir], salt_call
    assert os.path.isabs(salt_call[0]) and "--local" not in salt_call

    proc = push(app["src"], paths["project_git"])
    assert proc.returncode == 0, proc.stderr
    assert "remote: -----> build" in proc.stderr and "is live" in proc.stderr
    status, body = get(APP)
    assert status == 200 and '"version": "1"' in body
    assert history(paths)[-1]["status"] == "success"
    assert history(paths)[-1]["commit"] == head(app["src"])


def test_runner_deploys_on_the_minion_with_per_phase_results(app, minion, salt_run_cli):
    paths = app["paths"]
    before = len(history(paths))
    ret = salt_run_cli.run("mc_project.deploy", minion.id, APP)
    assert ret.returncode == 0, ret
    result = ret.data[minion.id]
    assert result["result"] is True and result["status"] == "success", result
    assert result["commit"] == head(app["src"])
    names = [p["phase"] for p in result["phases"]]
    assert names == list(recipe.PHASES)
    for phase in result["phases"]:
        assert phase["result"] in (True, "skipped"), phase
        assert isinstance(phase["seconds"], (int, float)) and phase["seconds"] >= 0
    assert {p["phase"] for p in result["phases"] if p["result"] is True} >= {"build", "deploy", "post_deploy"}
    records = history(paths)
    assert len(records) == before + 1 and records[-1]["id"] == result["release"]
    status, body = get(APP)
    assert status == 200 and '"version": "1"' in body


def test_runner_reports_a_failed_deploy(app, minion, salt_run_cli, projects_root):
    ret = salt_run_cli.run("mc_project.deploy", minion.id, "nosuchproject")
    assert ret.returncode != 0
    assert ret.data[minion.id]["result"] is False
    assert "init_project" in ret.data[minion.id]["comment"]
    assert "nosuchproject" not in os.listdir(projects_root)

    ret = salt_run_cli.run("mc_project.deploy", "no-such-minion", APP)
    assert ret.returncode != 0
    assert ret.data["result"] is False and "No minion matched no-such-minion" in ret.data["comment"]


def test_state_apply_deployed_from_the_top_file(app, master, minion, salt_cli):
    paths = app["paths"]
    sls = yaml.safe_dump({"{}-live".format(APP): {"mc_project.deployed": [{"name": APP}]}})
    top = yaml.safe_dump({"base": {minion.id: ["corpus_live"]}})
    with master.state_tree.base.temp_file("corpus_live.sls", sls), \
            master.state_tree.base.temp_file("top.sls", top):
        # Nothing new on the branch: already live.
        ret = salt_cli.run("state.apply", minion_tgt=minion.id)
        assert ret.returncode == 0, ret
        (state,) = state_results(ret)
        assert state["result"] is True and state["changes"] == {} and "already live" in state["comment"]

        # A new commit lands on the branch without a deploy (a fetch runs no hook).
        new = commit_files(app["src"], {"VERSION": "2\n"}, "v2")
        git(paths["project_git"], "fetch", "-q", app["src"], "main:main")
        live_before = history(paths)[-1]

        ret = salt_cli.run("state.apply", "test=True", minion_tgt=minion.id)
        (state,) = state_results(ret)
        assert state["result"] is None, state
        assert state["changes"]["commit"]["new"] == new
        assert "would be deployed" in state["comment"]
        assert history(paths)[-1] == live_before  # test=True changed nothing
        assert '"version": "1"' in get(APP)[1]

        ret = salt_cli.run("state.apply", minion_tgt=minion.id)
        assert ret.returncode == 0, ret
        (state,) = state_results(ret)
        assert state["result"] is True, state
        assert state["changes"]["commit"] == {"old": live_before["commit"], "new": new}
        assert [p["phase"] for p in state["changes"]["phases"]] == list(recipe.PHASES)
        status, body = get(APP)
        assert status == 200 and '"version": "2"' in body
        assert history(paths)[-1]["commit"] == new and history(paths)[-1]["status"] == "success"

        ret = salt_cli.run("state.apply", minion_tgt=minion.id)
        (state,) = state_results(ret)
        assert state["result"] is True and state["changes"] == {}


def test_state_present_sets_up_a_new_project_once(master, minion, salt_cli, projects_root):
    name = "fromstate"
    paths = mc_settings.project_paths(projects_root, name)
    sls = yaml.safe_dump({name: {"mc_project.present": []}})
    with master.state_tree.base.temp_file("corpus_present.sls", sls):
        ret = salt_cli.run("state.apply", "corpus_present", "test=True", minion_tgt=minion.id)
        (state,) = state_results(ret)
        assert state["result"] is None and paths["project_git"] in state["changes"], state
        assert not os.path.exists(paths["root"])

        ret = salt_cli.run("state.apply", "corpus_present", minion_tgt=minion.id)
        assert ret.returncode == 0, ret
        (state,) = state_results(ret)
        assert state["result"] is True and state["changes"], state
        for key in ("project_git", "pillar_git", "releases", "data", "build"):
            assert os.path.isdir(paths[key]), key
        assert os.access(os.path.join(paths["project_git"], "hooks", "pre-receive"), os.X_OK)

        ret = salt_cli.run("state.apply", "corpus_present", minion_tgt=minion.id)
        (state,) = state_results(ret)
        assert state["result"] is True and state["changes"] == {}, state
        assert "already set up" in state["comment"]
