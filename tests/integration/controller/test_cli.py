"""The ``corpus`` command end to end on a real node, as a developer uses it from a laptop:
log in to the controller's REST API, ``init_env`` (a real container on node1, its job's
steps shown as they happen), ``push`` of a checkout through the environment's NATed SSH
port with the key the API hands out, a second push, ``releases``, ``rollback`` (a job, undone
again, and the runner's refusal), ``logs`` and ``destroy``. The API is the real one, served
by uvicorn over this package's controller.
"""

import json
import os
import shutil
import subprocess

import pytest
import requests
import salt.config

from support.corpus import EXAMPLES
from support.git import git
from mc_project.api import users
from mc_project.api.app import create_app
from support.api_stub import run_corpus
from support.api_server import served
from support.wait import wait_for

ENV = "clidev"


@pytest.fixture(scope="module")
def api(controller, node1):
    opts = salt.config.master_config(controller.config_file)
    app = create_app(opts)  # puts node1 in tenant default
    users.add_local_user(app.state.url, "dev", "dev-password", "default", "deployer")
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def home(api, tmp_path_factory):
    home = tmp_path_factory.mktemp("laptop")
    login = run_corpus(["--url", api, "login", "--user", "dev", "--password-stdin"], home, stdin="dev-password\n")
    assert login.returncode == 0, login.stderr
    yield home
    # node1 has two slots: a test that stopped half-way must not keep one from the next modules.
    if run_corpus(["status", ENV], home).returncode == 0:
        run_corpus(["destroy", ENV, "--yes"], home, timeout=900)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A checkout named like the environment's project (its default: the environment's name)."""
    src = tmp_path_factory.mktemp("src") / ENV
    shutil.copytree(os.path.join(EXAMPLES, "wsgi-app"), src)
    git(str(src), "init", "-q", "-b", "main")
    git(str(src), "add", "-A")
    git(str(src), "commit", "-qm", "first")
    return src


def corpus(home, *args, timeout=900, **kwargs):
    return run_corpus(list(args), home, timeout=timeout, **kwargs)


def served_version(node):
    answer = requests.get("http://{}:{}/".format(node["address"], node["http_port"]),
                          headers={"Host": "{}.corpus.test".format(ENV)}, timeout=5)
    return answer.json()["version"] if answer.status_code == 200 else None


def test_init_env_shows_its_steps(home):
    result = corpus(home, "init_env", ENV, "staging", "--host", "node1")
    assert result.returncode == 0, result.stdout + result.stderr
    done = [line.split()[1] for line in result.stdout.splitlines()
            if line.startswith("step ") and " success" in line]
    assert done[0] == "env:register" and "lxc:clone" in done and done[-1] == "mail:send"
    assert "Environment {} is ready".format(ENV) in result.stdout
    status = json.loads(corpus(home, "status", ENV, "--json").stdout)
    assert status["status"] == "active" and status["node"] == "node1" and status["projects"] == [ENV]


def test_push_deploys_through_the_nated_port(home, checkout, node1):
    result = corpus(home, "push", ENV, cwd=checkout)
    assert result.returncode == 0, result.stderr
    assert "Deployed {}/{}.".format(ENV, ENV) in result.stdout
    assert wait_for(lambda: served_version(node1) == "1", timeout=60, what="version 1 served")
    (checkout / "VERSION").write_text("2\n")
    git(str(checkout), "commit", "-qam", "second")
    again = corpus(home, "push", "--json", ENV, cwd=checkout)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["exit_code"] == 0
    assert wait_for(lambda: served_version(node1) == "2", timeout=60, what="version 2 served")


def test_init_adds_a_project_and_its_remote_and_push_deploys_it(home, tmp_path):
    second = tmp_path / "second"
    shutil.copytree(os.path.join(EXAMPLES, "wsgi-app"), second)
    git(str(second), "init", "-q", "-b", "main")
    git(str(second), "add", "-A")
    git(str(second), "commit", "-qm", "first")
    made = corpus(home, "init", "second", "--env", ENV, "--json", cwd=second)
    assert made.returncode == 0, made.stderr
    outcome = json.loads(made.stdout)
    assert outcome["remote"].startswith("ssh://") and outcome["remote"].endswith("/second/git/project.git")
    assert git(str(second), "remote", "get-url", "corpus-" + ENV).stdout.strip() == outcome["remote"]
    listed = json.loads(corpus(home, "projects", ENV, "--json").stdout)
    assert {"second", ENV} <= {row["name"] for row in listed["items"]}
    pushed = corpus(home, "push", ENV, cwd=second)
    assert pushed.returncode == 0, pushed.stderr
    assert "Deployed {}/second.".format(ENV) in pushed.stdout


def test_releases_rollback_and_logs(home, node1, salt_run):
    listed = corpus(home, "releases", ENV, "--json")
    assert listed.returncode == 0, listed.stderr
    releases = json.loads(listed.stdout)["items"]
    assert len(releases) >= 2
    rolled = corpus(home, "rollback", "{}/{}".format(ENV, ENV))
    assert rolled.returncode == 0, rolled.stderr
    first = releases[-2]["id"]
    assert "step project:rollback success" in rolled.stdout
    assert "{}/{} rolled back: {} is live.".format(ENV, ENV, first) in rolled.stdout
    assert wait_for(lambda: served_version(node1) == "1", timeout=60, what="version 1 served again")
    # The runner checks the same way: nothing is older than the first release.
    refused = salt_run.run("mc_cloud.rollback", ENV, ENV)
    assert refused.returncode == 1 and "No kept release of {} is older than the live one ({})".format(
        ENV, first) in refused.stdout, refused
    # Undoing the rollback job makes the release live before live again.
    job = json.loads(corpus(home, "jobs", "--kind", "rollback", "--json").stdout)["items"][0]
    undone = corpus(home, "undo", str(job["id"]))
    assert undone.returncode == 0, undone.stderr
    assert wait_for(lambda: served_version(node1) == "2", timeout=60, what="version 2 served again")
    logs = corpus(home, "logs", ENV, "-n", "20")
    assert logs.returncode == 0, logs.stderr


def test_destroy(home, node1):
    result = corpus(home, "destroy", ENV, "--yes")
    assert result.returncode == 0, result.stderr
    assert "Environment {} destroyed.".format(ENV) in result.stdout
    gone = corpus(home, "status", ENV)
    assert gone.returncode == 2 and "No environment named {}".format(ENV) in gone.stderr
    listed = subprocess.run(["lxc-ls", "-P", node1["lxc_path"]], capture_output=True, text=True).stdout.split()
    assert ENV not in listed
