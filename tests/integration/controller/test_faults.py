"""Faults around a real ``init_env``: PowerDNS down, mail relay down, controller killed.

PowerDNS and the mail relay are made unreachable by pointing the controller at a
port where nothing listens; the controller is killed with SIGKILL in the middle of
a job, then ``mc_jobs.status`` shows the job interrupted and ``mc_jobs.undo`` or
``mc_jobs.resume`` finishes it.
"""

import copy
import subprocess

import pytest
import salt.config

from mc_project import jobs
from mc_project.controller import operations
from mc_project.controller.runtime import Controller
from support.jobs import kill_when_running
from support.ports import free_port
from test_environments import inventory_counts
from test_undo_and_placement import leftovers


def controller_with(controller, **corpus):
    """The test controller with some ``corpus:`` settings changed, as a runner would see them."""
    opts = salt.config.master_config(controller.config_file)
    opts["corpus"] = copy.deepcopy(opts["corpus"])
    for section, values in corpus.items():
        opts["corpus"][section] = dict(opts["corpus"][section], **values)
    return Controller(opts)


def test_powerdns_down_fails_the_job_and_leaves_nothing(controller, node1, pdns):
    ctl = controller_with(controller, dns={"api_url": "http://127.0.0.1:{}".format(free_port())})
    result = operations.init_env(ctl, "nodns", "dev", host="node1")
    assert not result["result"]
    assert "pdns:add_records: PowerDNS at http://127.0.0.1:" in result["comment"]
    assert "did not answer" in result["comment"]
    assert leftovers(ctl, node1, pdns, "nodns") == []


def test_mail_relay_down_still_creates_the_environment(controller, node1, pdns, salt_run):
    ctl = controller_with(controller, smtp={"port": free_port(), "timeout": 3})
    result = operations.init_env(ctl, "nomail", "dev", host="node1", requester="dev@example.com")
    try:
        assert result["result"], result
        assert result["mail"].startswith("The access mail was not sent: Mail relay 127.0.0.1:")
        assert [step["status"] for step in result["steps"]][-1] == "success"
    finally:
        assert salt_run.run("mc_cloud.destroy_env", "nomail").returncode == 0
    assert leftovers(ctl, node1, pdns, "nomail") == []


def start_init_env(salt_run, name):
    """``salt-run mc_cloud.init_env`` in its own process group, so it can be killed whole."""
    return subprocess.Popen(salt_run.cmdline("mc_cloud.init_env", name, "dev", "host=node1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.parametrize("finish", ["undo", "resume"])
def test_controller_killed_mid_job_is_interrupted_then_finished(finish, controller, ctl, node1, pdns,
                                                                 salt_run):
    name = "killed-" + finish
    proc = start_init_env(salt_run, name)
    # from lxc:boot on, the container and its address are made (its NATed port beside the boot)
    steps = jobs.flatten(operations.INIT_ENV)
    job_id, killed_at = kill_when_running(ctl.url, name, steps.index("lxc:boot") + 1, proc)
    status = salt_run.run("mc_jobs.status", str(job_id))
    assert status.returncode == 1
    assert status.data["status"] == "interrupted"
    assert "was interrupted at step {}/{} ".format(killed_at, len(steps)) in status.data["message"]
    ret = salt_run.run("mc_jobs." + finish, str(job_id))
    if finish == "undo":
        assert ret.returncode == 0, ret
        assert ret.data["status"] == "undone"
        assert leftovers(ctl, node1, pdns, name) == []
    else:
        assert ret.returncode == 0, ret
        assert ret.data["status"] == "success"
        envs = {row["name"]: row for row in salt_run.run("mc_cloud.list_envs").data}
        assert envs[name]["status"] == "active"
        assert salt_run.run("mc_cloud.destroy_env", name).returncode == 0
        assert inventory_counts(ctl)["Environment"] == 0
