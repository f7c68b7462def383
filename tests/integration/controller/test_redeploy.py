"""Redeploy of a real environment running the Django example with its SQLite database.

One environment (``move``, staging: cooking mode) gets the Django example pushed over SSH
and two notes written. Then, on the same environment:

* a failure injected at each step (in the test's own copy of the controller, as
  test_undo_and_placement does) leaves the old container serving and nothing of the new
  one anywhere: container, minion key, pillar, secrets, DNS, route, snapshot files;
* a redeploy killed in its restore step (a separate process that kills itself) is
  undone with ``mc_jobs.undo``'s function: the same nothing left;
* a redeploy killed at its verify step is resumed while a bounded loop of HTTP requests
  goes through the node's proxy: not one fails, the notes and the database file are
  identical after, SSH answers from the new container with new credentials, the new
  host keys are recorded and published as SSHFP, the old container is stopped, and
  destroyed once ``redeploy_keep_hours`` is 0.
"""

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import requests
import salt.config
from sqlalchemy import func, select

from mc_project import jobs
from mc_project.controller import credentials, operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job, Pillar, Secret, SshKey
from support.corpus import EXAMPLES
from support.git import git
from support.failing_controller import FailingController
from support.services import dns_query
from test_environments import http, ssh, ssh_command, wait_http

ENV = "move"
DOMAIN = "move.corpus.test"
STEPS = jobs.flatten(operations.REDEPLOY)
KILL_SCRIPT = """
import os, signal, sys
import salt.config
from mc_project.controller import operations
from mc_project.controller.runtime import Controller

class Killed(Controller):
    def registry(self):
        registry = super().registry()
        _do, undo = registry[sys.argv[3]]
        registry[sys.argv[3]] = (lambda ctx: os.kill(os.getpid(), signal.SIGKILL), undo)
        return registry

print(operations.redeploy(Killed(salt.config.master_config(sys.argv[1])), sys.argv[2]), file=sys.stderr)
"""


def notes(node):
    answer = requests.get("http://{}:{}/".format(node["address"], node["http_port"]),
                          headers={"Host": DOMAIN, "Accept": "application/json"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def serves_the_notes(node, timeout=60):
    """Whether the site answers its two notes within ``timeout`` s (a busy machine may slow
    an answer; only no answer at all is a site that stopped serving)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return notes(node)["notes"] == 2
        except requests.RequestException:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


def credentials_of(salt_run, tmp_path, tag):
    ret = salt_run.run("mc_cloud.credentials", ENV)
    assert ret.returncode == 0, ret
    key = tmp_path / "key-{}".format(tag)
    key.write_text(ret.data["ssh_private_key"])
    key.chmod(0o600)
    return {"key": str(key), "password": ret.data["root_password"]}


def env_row(ctl):
    with db.session(ctl.url) as sess:
        env = sess.scalar(select(Environment).where(Environment.name == ENV))
        return {"container": env.container, "ip": env.ip, "minion_id": env.minion_id, "port": env.ssh_nat_port,
                "id": env.id, "uuid": env.uuid}


def containers(node):
    listed = subprocess.run(["lxc-ls", "-P", node["lxc_path"]], capture_output=True, text=True).stdout.split()
    return sorted(name for name in listed if name == ENV or name.startswith(ENV + "-"))


def container_state(node, name):
    shown = subprocess.run(["lxc-info", "-P", node["lxc_path"], "-n", name, "-s", "-H"], capture_output=True,
                           text=True)
    return shown.stdout.strip() or shown.stderr.strip()


def database_digest(node, creds, port):
    ret = ssh(node, creds["key"], port, "sha256sum /srv/projects/{}/data/db.sqlite3".format(ENV))
    assert ret.returncode == 0, ret.stderr
    return ret.stdout.split()[0]


def offline_requirements(node, tmp):
    """The Django example's wheels, fetched here and put in the container with a pip.conf
    pointing at them: containers reach no package index of their own in the tests."""
    wheels = tmp / "wheels"
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), "--only-binary=:all:",
                              "-r", os.path.join(EXAMPLES, "django-app", "requirements.txt")],
                             capture_output=True, text=True, timeout=600)
    assert fetched.returncode == 0, fetched.stderr
    attach = ["lxc-attach", "-P", node["lxc_path"], "-n", ENV, "--"]
    packed = subprocess.run(["tar", "-C", str(wheels), "-cf", "-", "."], capture_output=True, check=True).stdout
    subprocess.run(attach + ["sh", "-c", "mkdir -p /opt/wheels && tar -C /opt/wheels -xf -"], input=packed,
                   check=True, capture_output=True)
    subprocess.run(attach + ["sh", "-c", "cat > /etc/pip.conf"], input=b"[global]\nno-index = true\n"
                   b"find-links = /opt/wheels\n", check=True, capture_output=True)


@pytest.fixture(scope="module")
def site(salt_run, node1, tmp_path_factory):
    ret = salt_run.run("mc_cloud.init_env", ENV, "staging", "host=node1")
    assert ret.returncode == 0, ret
    access = ret.data["access"]
    tmp = tmp_path_factory.mktemp("redeploy")
    offline_requirements(node1, tmp)
    creds = credentials_of(salt_run, tmp, "first")
    src = tmp / "src"
    shutil.copytree(os.path.join(EXAMPLES, "django-app"), src)
    git(str(src), "init", "-q", "-b", "main")
    git(str(src), "add", "-A")
    git(str(src), "commit", "-qm", "first")
    remote = "ssh://root@{}:{}/srv/projects/{}/git/project.git".format(node1["address"], access["ssh_port"], ENV)
    env = dict(os.environ, GIT_SSH_COMMAND=ssh_command(creds["key"], access["ssh_port"]).replace(
        " -p {}".format(access["ssh_port"]), ""))
    push = subprocess.run(["git", "push", remote, "main"], cwd=src, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert push.returncode == 0, push.stderr
    assert wait_http(node1, DOMAIN, "/health").status_code == 200
    for text in ("first", "second"):
        assert http(node1, DOMAIN, "/add?text=" + text).status_code == 200
    yield {"access": access, "creds": creds, "tmp": tmp}
    salt_run.run("mc_cloud.destroy_env", ENV)


def minion_keys(ctl):
    """Every minion id the master holds a key of (accepted, pending, rejected or denied)."""
    listed = ctl.wheel.cmd("key.list_all", print_event=False) or {}
    return {minion for ids in listed.values() if isinstance(ids, list) for minion in ids}


def sshfp(pdns):
    return sorted(record.lower() for record in dns_query(DOMAIN, "SSHFP", pdns.dns_port))


def leftovers(ctl, node, pdns, before):
    """What a failed or undone redeploy left: anything of a new container, or the old one moved."""
    found = []
    if env_row(ctl) != before["row"]:
        found.append("environment row {} (was {})".format(env_row(ctl), before["row"]))
    if containers(node) != [before["row"]["container"]]:
        found.append("containers {}".format(containers(node)))
    if container_state(node, before["row"]["container"]) != "RUNNING":
        found.append("old container not running")
    with db.session(ctl.url) as sess:
        pillars = sess.scalars(select(Pillar.minion_id)).all()
        if sorted(pillars) != before["pillars"]:
            found.append("pillars {}".format(pillars))
        if sess.scalar(select(func.count()).select_from(Secret).where(Secret.owner.like("env:%:%"))):
            found.append("staged secrets")
        keys = sorted(sess.scalars(select(SshKey.public_key).where(SshKey.environment_id == before["row"]["id"])))
        if keys != before["keys"]:
            found.append("ssh keys")
    if minion_keys(ctl) != before["minions"]:
        found.append("minion keys {}".format(minion_keys(ctl) ^ before["minions"]))
    if sshfp(pdns) != before["sshfp"]:
        found.append("SSHFP records")
    if not serves_the_notes(node):
        found.append("the old container does not serve the notes")
    snapshots = [path for path in subprocess.run(["find", before["prefix"], "-path", "*/redeploy/*", "-name", "*.tar"],
                                                 capture_output=True, text=True).stdout.split()]
    if snapshots:
        found.append("snapshot files {}".format(snapshots))
    return found


@pytest.fixture
def before(site, ctl, node1, pdns):
    with db.session(ctl.url) as sess:
        pillars = sorted(sess.scalars(select(Pillar.minion_id)).all())
        row = env_row(ctl)
        keys = sorted(sess.scalars(select(SshKey.public_key).where(SshKey.environment_id == row["id"])))
        prefix = sess.scalar(select(ComputeNode.prefix).where(ComputeNode.name == node1["name"]))
    return {"row": row, "pillars": pillars, "keys": keys, "minions": minion_keys(ctl), "sshfp": sshfp(pdns),
            "prefix": prefix}


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_leaves_the_old_container_serving_and_nothing_else(step, controller, site, node1, pdns, before):
    ctl = FailingController(salt.config.master_config(controller.config_file))
    ctl.fail_at = step
    result = operations.redeploy(ctl, ENV)
    assert not result["result"]
    assert "step {}/{} {}: injected failure".format(STEPS.index(step) + 1, len(STEPS), step) in result["comment"]
    assert leftovers(ctl, node1, pdns, before) == []


def killed(controller, step):
    """Run a redeploy in a process that kills itself at ``step``; the job's id."""
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, controller.config_file, ENV, step],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == -9, proc.stderr
    with db.session(Controller(salt.config.master_config(controller.config_file)).url) as sess:
        return sess.scalar(select(func.max(Job.id)).where(Job.kind == "redeploy", Job.target == ENV))


def test_a_redeploy_killed_mid_way_is_undone(controller, ctl, site, node1, pdns, before):
    job_id = killed(controller, "redeploy:restore")
    state = ctl.jobs().status(job_id)
    assert state["status"] == "interrupted" and state["current_step"]["name"] == "redeploy:restore"
    with pytest.raises(CorpusError, match="was interrupted: resume or undo it first"):
        operations.redeploy_request(ctl, ENV)
    assert ctl.jobs().undo(job_id)["status"] == "undone"
    assert leftovers(ctl, node1, pdns, before) == []


def test_a_killed_redeploy_resumed_moves_everything_with_no_failed_request(controller, ctl, salt_run, site, node1,
                                                                           pdns, before):
    port = site["access"]["ssh_port"]
    digest = database_digest(node1, site["creds"], port)
    old = before["row"]
    job_id = killed(controller, "redeploy:verify")
    answers, stop = [], threading.Event()

    def load():
        while not stop.is_set() and len(answers) < 20000:  # bounded
            try:
                answers.append(notes(node1)["notes"])
            except (requests.RequestException, ValueError) as exc:
                answers.append(repr(exc))
            time.sleep(0.01)

    loop = threading.Thread(target=load)
    loop.start()
    try:
        state = ctl.jobs().resume(job_id)
        time.sleep(1)
    finally:
        stop.set()
        loop.join()
    assert state["status"] == "success", state["message"]
    assert len(answers) > 50 and [answer for answer in answers if answer != 2] == []

    row = env_row(ctl)
    assert row["container"] != old["container"] and row["ip"] != old["ip"] and row["port"] == old["port"]
    assert container_state(node1, old["container"]) == "STOPPED"
    assert container_state(node1, row["container"]) == "RUNNING"
    # new credentials; SSH through the same NATed port reaches the new container, same data
    creds = credentials_of(salt_run, site["tmp"], "second")
    assert creds["password"] != site["creds"]["password"]
    assert ssh(node1, site["creds"]["key"], port, "true").returncode != 0
    assert ssh(node1, creds["key"], port, "hostname").stdout.strip() == ENV
    assert database_digest(node1, creds, port) == digest
    assert notes(node1)["notes"] == 2
    # the new host keys are recorded and published; the A record still names the node
    shown = ssh(node1, creds["key"], port, "cat /etc/ssh/ssh_host_*_key.pub").stdout.split("\n")
    host_keys = sorted(" ".join(line.split()[:2]) for line in shown if line.strip())
    with db.session(ctl.url) as sess:
        recorded = sorted(" ".join(key.split()[:2]) for key in sess.scalars(select(SshKey.public_key).where(
            SshKey.environment_id == row["id"], SshKey.name.like("host:%"))))
    assert recorded == host_keys
    assert sshfp(pdns) == sorted(record.lower() for record in credentials.sshfp_records(host_keys))
    assert sshfp(pdns) != before["sshfp"]
    assert dns_query(DOMAIN, "A", pdns.dns_port) == [node1["address"]]
    # the old minion is gone; its container goes once kept redeploy_keep_hours
    assert old["minion_id"] not in minion_keys(ctl) and row["minion_id"] in minion_keys(ctl)
    ctl.settings["redeploy_keep_hours"] = 0
    assert operations.destroy_retired(ctl) == [old["container"]]
    assert containers(node1) == [row["container"]]


def test_destroying_a_redeployed_environment_leaves_nothing(salt_run, ctl, site, node1, pdns):
    row = env_row(ctl)
    assert row["container"] != ENV  # it lives in the container the redeploy made
    ret = salt_run.run("mc_cloud.destroy_env", ENV)
    assert ret.returncode == 0, ret
    assert containers(node1) == []
    assert row["minion_id"] not in minion_keys(ctl)
    assert dns_query(DOMAIN, "A", pdns.dns_port) == []
    with db.session(ctl.url) as sess:
        owner = "env:{}".format(row["uuid"])
        assert sess.scalar(select(func.count()).select_from(Secret).where(
            (Secret.owner == owner) | Secret.owner.like(owner + ":%"))) == 0
        assert sess.scalar(select(func.count()).select_from(Pillar).where(
            Pillar.minion_id.in_((row["minion_id"], DOMAIN)))) == 0
