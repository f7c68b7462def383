"""A failure at each step of a real ``init_env`` leaves nothing behind; placement.

The failure is injected here, in the test's own copy of the controller (the real
master, nodes, PowerDNS and inventory), by making one step raise before it runs:
every step before it has really been done, and its undo must take it all back.
"""

import subprocess

import pytest
import salt.config
import requests

from mc_project import jobs
from mc_project.controller import operations
from support.failing_controller import FailingController
from support.services import dns_query
from test_environments import inventory_counts


def leftovers(ctl, node, pdns, name):
    """Everything of environment ``name`` that can still be seen anywhere."""
    found = []
    for model, count in inventory_counts(ctl).items():
        if count:
            found.append("inventory " + model)
    if name in subprocess.run(["lxc-ls", "-P", node["lxc_path"]], capture_output=True, text=True).stdout.split():
        found.append("container")
    mappings = subprocess.run(["nft", "list", "map", "ip", node["nft_table"], "tcp_ports"], capture_output=True,
                              text=True).stdout
    if ": {}".format(node["subnet"].rsplit(".", 1)[0]) in mappings:  # one to a container of this node
        found.append("NAT mapping")
    answer = requests.get("http://{}:{}/".format(node["address"], node["http_port"]),
                          headers={"Host": "{}.corpus.test".format(name)}, timeout=5)
    if answer.status_code != 503:
        found.append("proxy route")
    if dns_query("{}.corpus.test".format(name), "A", pdns.dns_port):
        found.append("DNS record")
    if ctl.key_fingerprints("{}.corpus.test".format(name)):
        found.append("minion key")
    return found


@pytest.mark.parametrize("step", jobs.flatten(operations.INIT_ENV))
def test_failure_at_each_step_leaves_nothing(step, controller, node1, pdns):
    ctl = FailingController(salt.config.master_config(controller.config_file))
    ctl.fail_at = step
    result = operations.init_env(ctl, "undo", "dev", host="node1")
    assert not result["result"]
    steps = jobs.flatten(operations.INIT_ENV)
    assert "step {}/{} {}: injected failure".format(steps.index(step) + 1, len(steps), step) in result["comment"]
    assert leftovers(ctl, node1, pdns, "undo") == []


def test_placement_goes_to_the_node_with_free_slots(salt_run, node1, node2, tmp_path):
    hosts = {host["name"]: host for host in salt_run.run("mc_cloud.list_hosts").data}
    assert hosts["node2"]["address"] == node2["address"]
    assert hosts["node1"]["free_slots"] == hosts["node2"]["free_slots"] == 2
    placed = {}
    for name in ("far", "farther"):  # a tie goes to node1, then node2 has more room
        ret = salt_run.run("mc_cloud.init_env", name, "dev")
        assert ret.returncode == 0, ret
        placed[name] = ret.data["access"]
    assert (placed["far"]["node"], placed["farther"]["node"]) == ("node1", "node2")
    hosts = {host["name"]: host for host in salt_run.run("mc_cloud.list_hosts").data}
    assert hosts["node1"]["free_slots"] == hosts["node2"]["free_slots"] == 1
    # the container on node2 answers SSH on node2's own address, through node2's NAT
    secret = salt_run.run("mc_cloud.credentials", "farther").data
    key = tmp_path / "farther"
    key.write_text(secret["ssh_private_key"])
    key.chmod(0o600)
    ret = subprocess.run(["ssh", "-i", str(key), "-p", str(placed["farther"]["ssh_port"]), "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "root@" + node2["address"], "hostname"], capture_output=True, text=True, timeout=60)
    assert (ret.returncode, ret.stdout.strip()) == (0, "farther"), ret.stderr
    for name in ("far", "farther"):
        assert salt_run.run("mc_cloud.destroy_env", name).returncode == 0
