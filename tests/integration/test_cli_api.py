"""The ``corpus`` command against the real REST API (``mc_project.api``) served by uvicorn
over an SQLite inventory: login, whoami, listhosts, status, init_env, jobs and
``job --follow`` over the API's own Server-Sent Events, logout.

The controller's Salt side is not here: the API's operations that would reach a node
run jobs of stand-in steps through the controller's real job machinery (inventory,
step records, events read back by the API's stream), and nothing is fired on a bus.
A real node's init_env, push, rollback and destroy are the controller tests' part.
"""

import json
import stat
import time

import pytest
from sqlalchemy import select

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller import operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Project, Tenant
from support.api_stub import run_corpus
from support.api_server import served
from support.ports import LOOPBACK

STEPS = ["env:register", "node:pick", "lxc:clone"]
STEP_SECONDS = 0.3
# Longer than the API's one-second reads of the job: the stream shows it running.
FIRST_STEP_SECONDS = 2.0


def stand_in_init_env(job_ctl, name, env_type="dev", project=None, host=None, requester=None,
                      disk_size_mb=None, image=None, progress=None):
    """init_env's job with steps that take a moment and touch no node; an environment
    whose name starts with ``broken`` fails at lxc:clone."""
    if name == "a1":
        raise CorpusError("Environment a1 already exists.")

    def step(step_name):
        def do(ctx):
            time.sleep(FIRST_STEP_SECONDS if step_name == STEPS[0] else STEP_SECONDS)
            ctx.log("{} for {}".format(step_name, name))
            if step_name == "lxc:clone" and name.startswith("broken"):
                raise CorpusError("lxc-copy: No space left on device.")
        return do

    registry = {step_name: (step(step_name), lambda ctx: None) for step_name in STEPS}
    return job_ctl.jobs(registry=registry).submit("init_env", name, STEPS, {"env_name": name})


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    opts = {"corpus": {"db_url": "sqlite:///{}".format(root / "inventory.sqlite"),
                       "secrets_key": str(root / "secrets.key"), "master_address": LOOPBACK},
            "cachedir": str(root / "cache"), "sock_dir": str(root / "sock")}
    patch = pytest.MonkeyPatch()
    patch.setattr(Controller, "fire", lambda self, tag, data: None)  # no master here
    patch.setattr(operations, "init_env", stand_in_init_env)
    ctl = Controller(opts)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "alice", "alice-pw", "alpha", "deployer")
    users.add_local_user(ctl.url, "victor", "victor-pw", "alpha", "viewer")
    with db.session(ctl.url) as sess:
        alpha = sess.scalar(select(Tenant).where(Tenant.name == "alpha"))
        node = ComputeNode(name="node1", address="192.0.2.1", slots=10, tenant_id=alpha.id)
        sess.add(node)
        sess.flush()
        env = Environment(name="a1", env_type="dev", status="active", tenant_id=alpha.id, node_id=node.id,
                          ip="10.0.0.2", ssh_nat_port=40001, domains=["a1.corpus.test"], minion_id="env-a1",
                          project="a1")
        env.projects.append(Project(name="a1"))
        sess.add(env)
    try:
        with served(app) as url:
            yield url
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def home(tmp_path_factory, api):
    """A developer's home, logged in as alice."""
    home = tmp_path_factory.mktemp("home")
    result = run_corpus(["--url", api, "login", "--user", "alice", "--password-stdin"], home, stdin="alice-pw\n")
    assert result.returncode == 0, result.stderr
    return home


def corpus(home, *args, **kwargs):
    return run_corpus(list(args), home, **kwargs)


def one_sentence(result):
    text = result.stderr.strip()
    assert "Traceback" not in result.stderr and len(text.splitlines()) == 1, text
    return text


def test_login_keeps_a_token_that_whoami_uses(api, home):
    token_file = home / ".config" / "corpus" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().startswith("corpus_")
    assert f"url = {api}" in (home / ".makinastates.conf").read_text()
    whoami = corpus(home, "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout) == {"name": "alice", "tenants": [{"name": "alpha", "role": "deployer"}]}
    assert "alpha (deployer)" in corpus(home, "whoami").stdout


def test_a_wrong_password_is_exit_3(api, tmp_path):
    result = run_corpus(["--url", api, "login", "-u", "alice", "--password-stdin"], tmp_path, stdin="nope\n")
    assert result.returncode == 3
    assert "Wrong user name or password" in one_sentence(result)
    assert corpus(tmp_path, "--url", api, "whoami").returncode == 3


def test_listhosts_and_status(home):
    hosts = corpus(home, "listhosts", "--json")
    assert hosts.returncode == 0, hosts.stderr
    assert [node["name"] for node in json.loads(hosts.stdout)["items"]] == ["node1"]
    status = corpus(home, "status", "a1", "--json")
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert (record["name"], record["ssh"], record["projects"]) == ("a1", "192.0.2.1:40001", ["a1"])
    missing = corpus(home, "status", "nowhere")
    assert missing.returncode == 2 and "No environment named nowhere" in one_sentence(missing)


def test_init_env_follows_the_jobs_events(home):
    result = corpus(home, "init_env", "fresh", "dev", "--disk", "1G")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Without a bus the API reads the job every second: a short step may show only its end,
    # the long first one shows running first.
    done = [line.split()[1] for line in lines if line.startswith("step ") and " success " in line]
    assert done == STEPS
    assert "step env:register running" in lines
    assert "Environment fresh is ready" in result.stdout


def test_a_failed_job_is_exit_1_and_its_steps_undone(home):
    result = corpus(home, "init_env", "broken1", "dev")
    assert result.returncode == 1
    assert any(line.startswith("step lxc:clone failed") for line in result.stdout.splitlines())
    assert "step env:register undone" in result.stdout
    message = one_sentence(result)
    assert message.startswith("corpus: Job ") and "No space left on device" in message


def test_refusals(home, api):
    exists = corpus(home, "init_env", "a1", "dev", "--json")
    assert exists.returncode == 2
    assert "already exists" in json.loads(exists.stdout)["error"]["message"]
    victor = home.parent / "victor"
    victor.mkdir()
    login = run_corpus(["--url", api, "login", "-u", "victor", "--password-stdin"], victor, stdin="victor-pw\n")
    assert login.returncode == 0, login.stderr
    viewer = corpus(victor, "init_env", "mine", "dev")
    assert viewer.returncode == 3, viewer.stderr
    one_sentence(viewer)


def test_jobs_and_job_follow(home):
    listed = corpus(home, "jobs", "--json", "--kind", "init_env")
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)["items"]
    by_target = {job["target"]: job for job in jobs}
    assert by_target["fresh"]["status"] == "success" and by_target["broken1"]["status"] == "failed"
    table = corpus(home, "jobs")
    assert "fresh" in table.stdout and "STATUS" in table.stdout
    followed = corpus(home, "job", str(by_target["fresh"]["id"]), "--follow")
    assert followed.returncode == 0, followed.stderr
    assert any(line.startswith("step lxc:clone success") for line in followed.stdout.splitlines())
    failed = corpus(home, "job", str(by_target["broken1"]["id"]), "--follow", "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["status"] == "failed"
    shown = json.loads(corpus(home, "job", str(by_target["fresh"]["id"]), "--json").stdout)
    assert [step["name"] for step in shown["steps"]] == STEPS
    assert shown["steps"][0]["log"].strip() == "env:register for fresh"
    text = corpus(home, "job", str(by_target["broken1"]["id"])).stdout
    assert "lxc:clone log:" in text and "No space left on device" in text
    assert corpus(home, "job", "987654").returncode == 2


def test_logout_revokes_the_token(home, api):
    token = (home / ".config" / "corpus" / "token").read_text().strip()
    result = corpus(home, "logout")
    assert result.returncode == 0, result.stderr
    assert not (home / ".config" / "corpus" / "token").exists()
    again = corpus(home, "whoami", "--token", token)
    assert again.returncode == 3
