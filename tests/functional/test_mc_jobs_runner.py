"""``salt-run mc_jobs.*`` on a real salt-master: the inventory named by
``corpus:db_url``, answers as one sentence, progress on the master's event bus."""

import os
import subprocess
import time
import uuid

import psutil
import pytest
import salt.config
from sqlalchemy import update

from mc_project import jobs
from mc_project.inventory import db
from mc_project.inventory.models import Job


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    return "sqlite:///{}".format(tmp_path_factory.mktemp("controller") / "inventory.sqlite")


@pytest.fixture(scope="module")
def master(salt_factories, db_url):
    factory = salt_factories.salt_master_daemon(
        "corpus-jobs-master-{}".format(uuid.uuid4().hex[:6]), overrides={"corpus": {"db_url": db_url}})
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def salt_run_cli(master):
    return master.salt_run_cli(timeout=120)


@pytest.fixture
def killed_job(db_url):
    """A job whose owner was killed with -9 while on its second step."""
    db.init(db_url)
    registry = {}
    jobs.register("test:first", lambda ctx: ctx.clipboard.update(first=True), None, registry)
    jobs.register("test:second", lambda ctx: None, None, registry)
    manager = jobs.Jobs(db_url, registry)
    target = "web-" + uuid.uuid4().hex[:6]
    job_id = manager.create("init_env", target, ["test:first", "test:second"])
    owner = subprocess.Popen(["sleep", "60"])
    with db.session(db_url) as sess:
        sess.execute(update(Job).where(Job.id == job_id).values(
            status="running", owner_pid=owner.pid, owner_host=jobs.this_owner()["owner_host"],
            owner_started=psutil.Process(owner.pid).create_time()))
    owner.kill()
    owner.wait()
    return job_id, owner.pid, target


def test_status_of_a_killed_job_says_interrupted_and_fires_an_event(
        master, salt_run_cli, killed_job, event_listener):
    job_id, pid, target = killed_job
    start = time.time()
    ret = salt_run_cli.run("mc_jobs.status", str(job_id))
    assert ret.returncode == 1  # an interrupted job needs the operator
    assert ret.data["status"] == "interrupted"
    assert ret.data["message"].startswith(
        "Job {} (init_env {}) was interrupted at step 1/2 test:first: its process (pid {} on ".format(
            job_id, target, pid))
    matched = event_listener.wait_for_events(
        [(master.id, "corpus/job/{}/interrupted".format(job_id))], after_time=start, timeout=30)
    assert matched.found_all_events, matched.missed

    ret = salt_run_cli.run("mc_jobs.status", target)
    assert ret.returncode == 0
    assert [state["id"] for state in ret.data] == [job_id]


def test_resume_without_the_step_on_the_controller_fails_in_one_sentence(
        master, salt_run_cli, killed_job, event_listener):
    job_id, _, target = killed_job
    start = time.time()
    ret = salt_run_cli.run("mc_jobs.resume", str(job_id))
    assert ret.returncode == 1
    assert ret.data["status"] == "failed"
    assert ret.data["message"] == (
        "Job {} (init_env {}) failed at step 1/2 test:first: no step test:first is registered "
        "on this controller.".format(job_id, target))
    prefix = "corpus/job/{}/".format(job_id)
    matched = event_listener.wait_for_events(
        [(master.id, prefix + tag) for tag in ("running", "step/1/running", "step/1/failed", "failed")],
        after_time=start, timeout=30)
    assert matched.found_all_events, matched.missed


def test_unknown_job_or_target_is_one_sentence(salt_run_cli, db_url):
    db.init(db_url)
    for args, sentence in ((("mc_jobs.status", "424242"), "No job 424242 in the inventory."),
                           (("mc_jobs.resume", "x1"), "'x1' is not a job id."),
                           (("mc_jobs.status", "nobody-here"), "No job has target nobody-here.")):
        ret = salt_run_cli.run(*args)
        assert ret.returncode == 1, ret
        assert ret.data == {"result": False, "comment": sentence, "retcode": 1}
        assert "Traceback" not in ret.stdout + ret.stderr


@pytest.fixture(scope="module")
def minion(master):
    factory = master.salt_minion_daemon("corpus-jobs-minion-{}".format(uuid.uuid4().hex[:6]))
    with factory.started():
        yield factory


def test_a_job_event_a_minion_forges_is_not_shown_and_changes_nothing(master, minion, db_url):
    """Any minion may fire ``corpus/job/<id>/...`` on the master's bus: ``mc_jobs.watch``
    shows only what the controller signed, and the job's state stays the inventory's."""
    db.init(db_url)
    registry = {}
    jobs.register("test:only", lambda ctx: None, None, registry)
    manager = jobs.Jobs(db_url, registry)
    job_id = manager.create("init_env", "watched-" + uuid.uuid4().hex[:6], ["test:only"])
    with db.session(db_url) as sess:  # running, owned by this live process
        sess.execute(update(Job).where(Job.id == job_id).values(
            status="running", owner_pid=os.getpid(), owner_host=jobs.this_owner()["owner_host"],
            owner_started=psutil.Process(os.getpid()).create_time()))
    watch = subprocess.Popen(master.salt_run_cli().cmdline("mc_jobs.watch", str(job_id), "timeout=60"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)  # the watcher is listening
    forged = minion.salt_call_cli().run(
        "event.fire_master", '{"job": %d, "status": "success"}' % job_id, "corpus/job/{}/success".format(job_id))
    assert forged.returncode == 0, forged
    time.sleep(2)
    assert watch.poll() is None, watch.communicate()[0]  # the forged "success" did not end it
    assert manager.status(job_id)["status"] == "running"

    from mc_project.controller.runtime import Controller

    with db.session(db_url) as sess:
        sess.execute(update(Job).where(Job.id == job_id).values(status="success"))
    Controller(salt.config.master_config(master.config_file)).fire("corpus/job/{}/success".format(job_id),
                                         {"job": job_id, "status": "success", "error": None})
    out = watch.communicate(timeout=60)[0]
    assert watch.returncode == 0, out
    assert "ignored: corpus/job/{}/success was not fired by the controller".format(job_id) in out
    assert "corpus/job/{}/success".format(job_id) in out.replace("ignored: corpus/job/{}/success".format(job_id), "")
    key_file = os.path.join(master.config["cachedir"], "corpus-events.key")
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
