"""A bad request to the controller's runner is refused before any job or Salt work exists.

The runner ``mc_cloud`` runs here as salt-run would run it (``__opts__`` naming a real
inventory, ``__context__`` for its exit code), with a real controller on that inventory.
Salt is not there: making a Salt client or touching the master's event bus is recorded
and fails, so a refusal that reached Salt would show. Each refusal must be one sentence,
exit code 1, and leave no job and no other row in the inventory.
"""

import importlib.util
import os

import pytest
import salt.client
import salt.utils.event
from sqlalchemy import func, select

from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job

RUNNER = os.path.join(os.path.dirname(__file__), "..", "..", "_runners", "mc_cloud.py")


class SaltWasCalled(Exception):
    """Salt was asked for something by a request that should have been refused first."""


@pytest.fixture
def salt_calls(monkeypatch):
    calls = []

    def record(what):
        def refuse(*args, **kwargs):
            calls.append(what)
            raise SaltWasCalled(what)
        return refuse

    monkeypatch.setattr(salt.client, "get_local_client", record("LocalClient"))
    monkeypatch.setattr(salt.client, "LocalClient", record("LocalClient"))
    monkeypatch.setattr(salt.utils.event, "get_master_event", record("master event bus"))
    monkeypatch.setattr(salt.utils.event, "get_event", record("event bus"))
    return calls


@pytest.fixture
def runner(tmp_path, salt_calls):
    """The ``mc_cloud`` runner module over an inventory with one node and one environment."""
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    spec = importlib.util.spec_from_file_location("mc_cloud_refusals_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = {"cachedir": str(tmp_path), "sock_dir": str(tmp_path),
                       "corpus": {"db_url": url, "master_address": "192.0.2.1",
                                  "secrets_key": str(tmp_path / "secrets.key")}}
    module.__context__ = {}
    db.init(url)
    with db.session(url) as sess:
        node = ComputeNode(name="node1", minion_id="node1", address="192.0.2.10", slots=4,
                           subnet="10.77.0.0/24")
        sess.add(node)
        sess.flush()
        sess.add(Environment(name="shop", node_id=node.id, env_type="dev", status="active",
                             uuid="6f1c0c1e-0000-4000-8000-000000000001"))
    module.url = url
    yield module
    db.dispose()


def rows(url):
    with db.session(url) as sess:
        return {model.__name__: sess.scalar(select(func.count()).select_from(model))
                for model in (Job, ComputeNode, Environment)}


REFUSALS = [
    ("init_env", ("shop", "dev"), {}, "An environment named shop already exists."),
    ("init_env", ("../x", "dev"), {}, "Environment name '../x' is not valid"),
    ("init_env", ("other", "qa"), {}, "Unknown environment type 'qa'"),
    ("init_env", ("other", "dev"), {"host": "nowhere"}, "No compute node named nowhere."),
    ("init_env", ("other", "dev"), {"disk_size_mb": "10G"}, "Disk size must be a whole number of MiB"),
    ("init_env", ("other", "dev"), {"disk_size_mb": "abc"}, "Disk size must be a whole number of MiB"),
    ("init_env", ("other", "dev"), {"disk_size_mb": 0}, "Disk size must be a whole number of MiB"),
    ("init_env", ("other", "dev"), {"disk_size_mb": 100}, "Disk size must be a whole number of MiB"),
    ("init_env", ("other", "dev"), {"requester": "a@b;id"}, "is not an e-mail address"),
    ("destroy_env", ("nowhere",), {}, "No environment named nowhere."),
    ("enlarge", ("shop", "big"), {}, "Disk size must be a whole number of MiB"),
    ("enlarge", ("nowhere", 4096), {}, "No environment named nowhere."),
    ("trim", ("shop", "-1"), {}, "Disk size must be a whole number of MiB"),
    ("link_dns", ("shop", "not a domain"), {}, "is not a domain name"),
    ("add_project", ("nowhere", "api"), {}, "No environment named nowhere."),
    ("add_project", ("shop", "../api"), {}, "Project name '../api' is not valid."),
    ("destroy_project", ("shop", "api"), {}, "Environment shop has no project api."),
    ("unlink_node", ("nowhere",), {}, "No compute node named nowhere."),
    ("link_node", ("192.0.2.20",), {"port": "ssh"}, "The SSH port must be a whole number, not 'ssh'."),
    ("link_node", ("192.0.2.20",), {"slots": "many"}, "The number of slots must be a whole number"),
    ("link_node", ("192.0.2.20",), {"nft_table": "1x"}, "An nftables table name is a letter"),
    ("link_node", ("192.0.2.20",), {"bridge": "a-very-long-bridge"}, "A bridge name is 1 to 15"),
    ("link_node", ("192.0.2.20",), {"name": "../n"}, "A node name is letters, digits"),
    ("link_node", ("192.0.2.20",), {"subnet": "10.77.0.0/25"}, "Subnet 10.77.0.0/25 overlaps node node1's"),
]


@pytest.mark.parametrize("function,args,kwargs,message", REFUSALS,
                         ids=["{}-{}".format(case[0], index) for index, case in enumerate(REFUSALS)])
def test_a_refusal_is_one_sentence_before_any_job_or_salt_call(runner, salt_calls, function, args, kwargs,
                                                              message):
    before = rows(runner.url)
    answer = getattr(runner, function)(*args, **kwargs)
    assert answer["result"] is False and answer["retcode"] == 1, answer
    assert runner.__context__["retcode"] == 1
    comment = answer["comment"]
    assert message in comment
    assert "\n" not in comment and "Traceback" not in comment and comment.endswith(".")
    assert salt_calls == []
    assert rows(runner.url) == before and before["Job"] == 0
