"""Environment jobs with a fake node and fake Salt: placement, allocation, undo.

The real thing (LXC, nftables, haproxy, PowerDNS, minions) is exercised in
tests/integration/controller/; here the node is a dict so every step's undo can
be checked to leave nothing behind, quickly, for every step of ``init_env``.
"""

import contextlib

import pytest
from sqlalchemy import func, select

from mc_project.common.vocabulary import APP_PORT
from mc_project import jobs
from mc_project.controller import operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import (
    ComputeNode,
    DnsRecord,
    Environment,
    Job,
    Pillar,
    PortMapping,
    Secret,
    SshKey,
)


class FakeNode:
    """What a node's ``mc_lxc`` holds: containers, NATed ports, proxy routes."""

    def __init__(self):
        self.containers = {}
        self.ports = {}
        self.routes = {}

    def __call__(self, fun, **kw):
        name = kw.get("name")
        if fun == "mc_lxc.clone":
            self.containers[name] = {"state": "STOPPED"}
            return {"name": name, "changed": True, "spare": kw["spare"],
                    "golden": {"name": "corpus-golden", "built": False, "seconds": 0}}
        elif fun == "mc_lxc.configure":
            self.containers[name]["address"] = kw["address"]
            return {"changed": True, "minion": "at boot", "minion_public_key": "PEM",
                    "host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKm0lZ0bH3g8q9Cw0hJjD0K8Z2mAqfVqXwJ0rN7cT9bD"]}
        elif fun == "mc_lxc.start":
            self.containers[name]["state"] = "RUNNING"
        elif fun == "mc_lxc.destroy":
            self.containers.pop(name, None)
        elif fun == "mc_lxc.host_keys":
            return ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKm0lZ0bH3g8q9Cw0hJjD0K8Z2mAqfVqXwJ0rN7cT9bD"]
        elif fun == "mc_lxc.map_port":
            self.ports[kw["external_port"]] = kw["address"]
        elif fun == "mc_lxc.unmap_port":
            self.ports.pop(kw["external_port"], None)
        elif fun == "mc_lxc.add_route":
            self.routes[kw["domain"]] = kw["address"]
        elif fun == "mc_lxc.remove_route":
            self.routes.pop(kw["domain"], None)
        elif fun == "mc_lxc.install_minion":
            return {"minion_id": kw["minion_id"], "fingerprint": "aa:bb", "public_key": "PEM"}
        elif fun == "mc_lxc.resize":
            self.containers[name]["size"] = kw["size_mb"]
        return True


class FakeController(Controller):
    def __init__(self, url, settings):
        self.opts = {"ret_port": 4506, "publish_port": 4505}
        self.settings = settings
        self.url = url
        self.nodes = {}
        self.keys = set()
        self.fail_at = None
        self.calls = []
        db.init(url)

    def call(self, minion, fun, *args, timeout=300, **kwargs):
        self.calls.append((minion, fun))
        if fun in self.nodes.get(minion, {}).get("broken", ()):
            raise CorpusError("{} on {} failed: broken".format(fun, minion))
        if fun.startswith("mc_lxc."):
            return self.nodes[minion]["fake"](fun, **kwargs)
        return {}

    def accept_key(self, minion, public_key, timeout=60):
        self.keys.add(minion)

    def delete_key(self, minion):
        self.keys.discard(minion)

    def seed_key(self, minion, public_key):
        self.keys.add(minion)

    def wait_for_minion(self, minion, timeout=120):
        pass

    def listening(self, *prefixes):
        return contextlib.nullcontext()

    def wait_for_ping(self, minion, timeout=120, events=None):
        return True

    def seal(self, minion, text):
        return "sealed to " + minion  # sealing itself: tests/unit/test_secrets_crypto.py

    def fire(self, tag, data):
        pass

    def registry(self):
        registry = super().registry()
        if self.fail_at:
            do, undo = registry[self.fail_at]

            def failing(ctx):
                raise CorpusError("injected failure")
            registry[self.fail_at] = (failing, undo)
        return registry


SETTINGS = {"db_url": None, "master_address": "10.0.0.1", "domain": "corpus.test",
            "dns": {"api_url": None, "zone": "corpus.test.", "ttl": 300},
            "smtp": {"host": None, "port": 25, "sender": "corpus@localhost", "timeout": 5},
            "lxc": {"mirror": "http://deb.debian.org/debian", "suite": "bookworm", "disk_size_mb": 1024,
                    "spare": True}}


@pytest.fixture
def ctl(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    controller = FakeController(url, dict(SETTINGS, db_url=url, secrets_key=str(tmp_path / "secrets.key")))
    yield controller
    db.dispose()


def add_node(ctl, name, slots=2, subnet="10.77.0.0/29", ports=(40000, 40001)):
    with db.session(ctl.url) as sess:
        sess.add(ComputeNode(name=name, minion_id=name, address="192.0.2.{}".format(len(ctl.nodes) + 1),
                             slots=slots, subnet=subnet, nat_port_min=ports[0], nat_port_max=ports[1]))
    ctl.nodes[name] = {"fake": FakeNode()}
    return ctl.nodes[name]["fake"]


def counts(ctl):
    with db.session(ctl.url) as sess:
        return {model.__name__: sess.scalar(select(func.count()).select_from(model))
                for model in (Environment, PortMapping, DnsRecord, Secret, SshKey, Pillar)}


def test_init_env_places_allocates_and_records(ctl):
    node = add_node(ctl, "n1")
    result = operations.init_env(ctl, "shop", "staging", requester="dev@example.com")
    assert result["result"], result
    assert result["uuid"] and result["access"]["urls"] == ["http://shop.corpus.test/"]
    assert result["mail"].startswith("The access mail was not sent: no mail relay")
    with db.session(ctl.url) as sess:
        env = sess.scalar(select(Environment))
        assert (env.name, env.status, env.ip, env.ssh_nat_port) == ("shop", "active", "10.77.0.2", 40000)
        pillar = sess.scalar(select(Pillar)).data
        secrets = {row.name for row in sess.scalars(select(Secret))}
    assert pillar["makina-projects"]["shop"] == {"env": "staging", "bind": "0.0.0.0", "port": APP_PORT}
    assert pillar["corpus"]["env"]["mode"] == "cooking"
    assert secrets == {"root_password", "ssh_private_key"}
    assert node.containers["shop"]["state"] == "RUNNING"
    assert node.ports == {40000: "10.77.0.2"} and node.routes == {"shop.corpus.test": "10.77.0.2"}
    assert ctl.keys == {"shop.corpus.test"}
    # no secret in the job's clipboard or logs
    with db.session(ctl.url) as sess:
        job = sess.scalar(select(Job))
        password = sess.scalar(select(Secret.value).where(Secret.name == "root_password"))
        text = repr(job.clipboard) + "".join(step.log for step in job.steps)
    assert password not in text and "PRIVATE KEY" not in text


@pytest.mark.parametrize("step", jobs.flatten(operations.INIT_ENV))
def test_failure_at_each_step_leaves_nothing(ctl, step):
    node = add_node(ctl, "n1")
    ctl.fail_at = step
    result = operations.init_env(ctl, "shop", "dev")
    if step == "mail:send":  # the last step: nothing after it to fail, but its own failure fails the job
        assert not result["result"]
    assert not result["result"], result
    assert "injected failure" in result["comment"] and step in result["comment"]
    assert counts(ctl) == dict.fromkeys(counts(ctl), 0)
    assert node.containers == {} and node.ports == {} and node.routes == {}
    assert ctl.keys == set()


def test_placement_goes_to_the_node_with_free_slots(ctl):
    add_node(ctl, "full", slots=1)
    add_node(ctl, "roomy", slots=3)
    assert operations.init_env(ctl, "one", "dev", host="full")["result"]
    result = operations.init_env(ctl, "two", "dev")
    assert result["access"]["node"] == "roomy"
    with pytest.raises(CorpusError, match="Compute node full has no free slot"):
        operations.init_env(ctl, "three", "dev", host="full")


def test_exhausted_pools_are_refused_cleanly(ctl):
    add_node(ctl, "n1", slots=10, subnet="10.77.0.0/30", ports=(40000, 40001))
    assert operations.init_env(ctl, "a", "dev")["result"]  # .1 is the bridge, .2 the only host left
    result = operations.init_env(ctl, "b", "dev")
    assert not result["result"]
    assert "No free address left in node n1's subnet 10.77.0.0/30" in result["comment"]
    assert [row["name"] for row in operations.list_envs(ctl)] == ["a"]


def test_bad_requests_are_refused_before_any_job(ctl):
    add_node(ctl, "n1")
    assert operations.init_env(ctl, "shop", "dev")["result"]
    for args, message in [(("shop", "dev"), "already exists"),
                          (("Bad_Name", "dev"), "is not valid"),
                          (("ok", "qa"), "Unknown environment type"),
                          (("ok", "dev", None, "nowhere"), "No compute node named nowhere"),
                          (("ok", "dev", None, None, "a@b;id"), "is not an e-mail address"),
                          (("ok", "dev", None, None, "a@localhost"), "is not an e-mail address"),
                          (("ok", "dev", None, None, "x@y.z\nBcc: all@y.z"), "is not an e-mail address"),
                          (("ok", "dev", None, None, None, 999999999), "from 512 to 1048576"),
                          (("ok", "dev", None, None, None, 1), "from 512 to 1048576")]:
        with pytest.raises(CorpusError, match=message):
            operations.init_env(ctl, *args)
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(func.count()).select_from(Job)) == 1


def test_destroy_frees_everything(ctl):
    node = add_node(ctl, "n1")
    assert operations.init_env(ctl, "shop", "dev")["result"]
    assert operations.link_dns(ctl, "shop", "www.shop.example")["result"]
    assert set(node.routes) == {"shop.corpus.test", "www.shop.example"}
    result = operations.destroy_env(ctl, "shop")
    assert result["result"], result
    assert counts(ctl) == dict.fromkeys(counts(ctl), 0)
    assert node.containers == {} and node.ports == {} and node.routes == {}
    assert ctl.keys == set()
    # the name, address and port can be used again
    assert operations.init_env(ctl, "shop", "dev")["result"]
    assert node.ports == {40000: "10.77.0.2"}


def test_resize_checks_direction(ctl):
    node = add_node(ctl, "n1")
    assert operations.init_env(ctl, "shop", "dev")["result"]
    with pytest.raises(CorpusError, match="needs a size above its 1024 MiB"):
        operations.resize_env(ctl, "shop", 512, grow=True)
    assert operations.resize_env(ctl, "shop", 2048, grow=True)["result"]
    assert node.containers["shop"]["size"] == 2048
    with pytest.raises(CorpusError, match="No environment named nope"):
        operations.resize_env(ctl, "nope", 2048, grow=True)
    for size in (999999999, 1, 0, True, 2048.5, "big"):
        with pytest.raises(CorpusError, match="whole number of MiB"):
            operations.resize_env(ctl, "shop", size, grow=size != 1)
    with db.session(ctl.url) as sess:  # refused at once: no job was made for them
        assert sess.scalar(select(func.count()).select_from(Job)) == 2


@pytest.mark.parametrize("fun", ["mc_lxc.map_port", "mc_lxc.configure", "mc_lxc.add_route",
                                 "mc_lxc.clone", "mc_lxc.start"])
def test_a_step_failing_half_way_cleans_up_after_itself(ctl, fun):
    node = add_node(ctl, "n1")
    ctl.nodes["n1"]["broken"] = (fun,)
    result = operations.init_env(ctl, "shop", "dev")
    assert not result["result"] and "broken" in result["comment"]
    assert counts(ctl) == dict.fromkeys(counts(ctl), 0)
    assert node.containers == {} and node.ports == {} and node.routes == {}


def test_parallel_jobs_get_distinct_addresses_and_ports(ctl):
    import threading

    node = add_node(ctl, "n1", slots=6, subnet="10.77.0.0/28", ports=(40000, 40010))
    results = {}

    def create(name):
        results[name] = operations.init_env(ctl, name, "dev")

    threads = [threading.Thread(target=create, args=("p{}".format(i),)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result["result"] for result in results.values()), results
    rows = operations.list_envs(ctl)
    assert len({row["ip"] for row in rows}) == 6 and len({row["ssh"] for row in rows}) == 6
    assert len(node.ports) == 6


def test_projects_are_added_and_destroyed_within_an_environment(ctl):
    add_node(ctl, "n1")
    assert operations.init_env(ctl, "shop", "dev")["result"]
    result = operations.add_project(ctl, "shop", "api")
    assert result["result"], result
    assert result["git_remote"] == "ssh://root@shop.corpus.test:40000/srv/projects/api/git/project.git"
    with pytest.raises(CorpusError, match="already has project api"):
        operations.add_project(ctl, "shop", "api")
    assert operations.list_envs(ctl)[0]["projects"] == ["api", "shop"]
    with db.session(ctl.url) as sess:
        assert set(sess.scalar(select(Pillar)).data["makina-projects"]) == {"api", "shop"}
    assert operations.destroy_project(ctl, "shop", "api")["result"]
    assert ("shop.corpus.test", "file.remove") in ctl.calls
    assert operations.list_envs(ctl)[0]["projects"] == ["shop"]
    with db.session(ctl.url) as sess:
        assert set(sess.scalar(select(Pillar)).data["makina-projects"]) == {"shop"}
    with pytest.raises(CorpusError, match="has no project api"):
        operations.destroy_project(ctl, "shop", "api")
