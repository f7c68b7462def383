"""Environments end to end on real nodes: LXC, nftables, haproxy, PowerDNS, SMTP, minions.

One environment is created with ``salt-run mc_cloud.init_env`` and then used the way
its requester would: the access mail, DNS answers (A and SSHFP), SSH through the
node's NATed port with the credentials from the controller, a ``git push`` of the
sample app over that SSH, and the app answering through the node's proxy by domain
name. Then another domain, a bigger and a smaller disk, and destruction, after which
nothing of it is left anywhere.
"""

import contextlib
import json
import os
import shutil
import stat
import subprocess
import time

import pytest
import requests
import salt.payload
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from support.corpus import EXAMPLES
from support.git import git
from mc_project import jobs
from mc_project.controller import operations
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import DnsRecord, Environment, Pillar, PortMapping, Secret, SshKey
from support.services import dns_query

ENV = "shop"


def http(node, host, path="/", timeout=5):
    return requests.get("http://{}:{}{}".format(node["address"], node["http_port"], path),
                        headers={"Host": host}, timeout=timeout)


def ssh_command(key_path, port):
    return "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes".format(
        key_path, port)


def ssh(node, key_path, port, command):
    return subprocess.run(ssh_command(key_path, port).split() + ["root@" + node["address"], command],
                          capture_output=True, text=True, timeout=120)


def inventory_counts(ctl):
    """Rows that belong to environments (a node's own host key is not one)."""
    with db.session(ctl.url) as sess:
        counts = {model.__name__: sess.scalar(select(func.count()).select_from(model))
                  for model in (Environment, PortMapping, DnsRecord, Pillar)}
        counts["Secret"] = sess.scalar(select(func.count()).select_from(Secret).where(Secret.owner.like("env:%")))
        counts["SshKey"] = sess.scalar(select(func.count()).select_from(SshKey).where(
            SshKey.environment_id.is_not(None)))
    return counts


def wait_http(node, host, path="/", want=200, timeout=60):
    """The answer once it is ``want`` (an app restarting answers 503 through the proxy for a while)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http(node, host, path)
        if answer.status_code == want or time.monotonic() > deadline:
            return answer
        time.sleep(1)


@pytest.fixture(scope="module")
def shop(salt_run, node1, smtp):
    ret = salt_run.run("mc_cloud.init_env", ENV, "staging", "requester=dev@example.com", "host=node1")
    assert ret.returncode == 0, ret
    return ret.data


@pytest.fixture(scope="module")
def creds(salt_run, shop, tmp_path_factory):
    ret = salt_run.run("mc_cloud.credentials", ENV)
    assert ret.returncode == 0, ret
    key_path = tmp_path_factory.mktemp("keys") / "shop"
    key_path.write_text(ret.data["ssh_private_key"])
    key_path.chmod(0o600)
    return {"key": str(key_path), "password": ret.data["root_password"]}


def test_list_hosts_shows_linked_nodes(salt_run, node1):
    ret = salt_run.run("mc_cloud.list_hosts")
    assert ret.returncode == 0, ret
    hosts = {host["name"]: host for host in ret.data}
    assert hosts["node1"]["address"] == node1["address"]
    assert hosts["node1"]["guest_type"] == "lxc" and hosts["node1"]["free_slots"] == 2


def test_init_env_returns_uuid_and_access(shop, node1):
    assert len(shop["uuid"]) == 36
    assert shop["access"]["urls"] == ["http://shop.corpus.test:{}/".format(node1["http_port"])]
    assert shop["access"]["node"] == "node1"
    assert [step["status"] for step in shop["steps"]] == ["success"] * len(jobs.flatten(operations.INIT_ENV))


def test_dns_answers_for_the_environment(shop, pdns, node1):
    assert dns_query("shop.corpus.test", "A", pdns.dns_port) == [node1["address"]]
    assert dns_query("anything.shop.corpus.test", "A", pdns.dns_port) == [node1["address"]]
    sshfp = dns_query("shop.corpus.test", "SSHFP", pdns.dns_port)
    assert sshfp and all(line.split()[0] in ("1", "3", "4") for line in sshfp)


def test_access_mail_has_the_details_and_no_secret(shop, smtp, creds):
    mails = [msg for msg in smtp.messages if msg["To"] == "dev@example.com"]
    assert len(mails) == 1
    body = mails[0].get_content()
    assert "shop.corpus.test" in body and str(shop["access"]["ssh_port"]) in body
    assert "salt-run mc_cloud.credentials shop" in body
    assert creds["password"] not in body and "PRIVATE KEY" not in body


def test_ssh_through_the_nated_port_reaches_the_highstated_container(shop, creds, node1):
    ret = ssh(node1, creds["key"], shop["access"]["ssh_port"], "hostname; cat /etc/corpus/environment.json")
    assert ret.returncode == 0, ret.stderr
    hostname, _, described = ret.stdout.partition("\n")
    assert hostname == ENV
    described = json.loads(described)
    assert described["uuid"] == shop["uuid"] and described["mode"] == "cooking"


def test_push_deploys_and_answers_through_the_proxy(shop, creds, node1, tmp_path):
    src = tmp_path / "shop"
    shutil.copytree(os.path.join(EXAMPLES, "wsgi-app"), src)
    git(str(src), "init", "-q", "-b", "main")
    git(str(src), "add", "-A")
    git(str(src), "commit", "-qm", "first")
    remote = "ssh://root@{}:{}/srv/projects/shop/git/project.git".format(node1["address"],
                                                                         shop["access"]["ssh_port"])
    env = dict(os.environ, GIT_SSH_COMMAND=ssh_command(creds["key"], shop["access"]["ssh_port"]).replace(
        " -p {}".format(shop["access"]["ssh_port"]), ""))
    push = subprocess.run(["git", "push", remote, "main"], cwd=src, env=env, capture_output=True, text=True,
                          timeout=900)
    assert push.returncode == 0, push.stderr
    answer = http(node1, "shop.corpus.test", "/health")
    assert answer.status_code == 200, answer.text
    assert http(node1, "unknown.example").status_code == 503


def test_a_second_project_is_added_then_destroyed(salt_run, shop, creds, node1):
    ret = salt_run.run("mc_cloud.add_project", ENV, "api")
    assert ret.returncode == 0, ret
    assert ret.data["git_remote"].endswith("/srv/projects/api/git/project.git")
    port = shop["access"]["ssh_port"]
    assert ssh(node1, creds["key"], port, "git -C /srv/projects/api/git/project.git rev-parse --is-bare-repository"
               ).stdout.strip() == "true"
    ret = salt_run.run("mc_cloud.destroy_project", ENV, "api")
    assert ret.returncode == 0, ret
    assert ssh(node1, creds["key"], port, "test -e /srv/projects/api").returncode == 1
    # the environment's own project still answers
    assert http(node1, "shop.corpus.test", "/health").status_code == 200
    ret = salt_run.run("mc_cloud.destroy_project", ENV, "api")
    assert ret.returncode == 1 and "has no project api" in ret.stdout


def test_job_status_tells_each_step(salt_run, shop):
    ret = salt_run.run("mc_jobs.status", ENV)
    assert ret.returncode == 0, ret
    job = next(job for job in ret.data if job["kind"] == "init_env")
    steps = jobs.flatten(operations.INIT_ENV)
    assert job["status"] == "success" and [step["name"] for step in job["steps"]] == steps
    clone = steps.index("lxc:clone")
    assert job["steps"][clone]["log"]


def test_link_dns_adds_a_domain(salt_run, shop, node1, pdns):
    ret = salt_run.run("mc_cloud.link_dns", ENV, "www.shop.test")
    assert ret.returncode == 0, ret
    assert http(node1, "www.shop.test", "/health").status_code == 200
    ret = salt_run.run("mc_cloud.link_dns", ENV, "www.shop.test")
    assert ret.returncode == 1 and "already serves environment shop" in ret.stdout


def test_enlarge_and_trim(salt_run, shop, node1):
    ret = salt_run.run("mc_cloud.enlarge", ENV, "3072")
    assert ret.returncode == 0, ret
    ret = salt_run.run("mc_cloud.trim", ENV, "600")
    assert ret.returncode == 1 and "cannot be trimmed below" in ret.stdout, ret
    rows = {env["name"]: env for env in salt_run.run("mc_cloud.list_envs").data}
    assert rows[ENV]["disk_size_mb"] == 3072
    # the container restarted with its bigger disk; its app came back by itself
    assert wait_http(node1, "shop.corpus.test", "/health").status_code == 200


def test_bad_requests_are_refused_in_one_sentence(salt_run, shop):
    jobs_before = salt_run.run("mc_jobs.status", ENV).data
    for args, message in [(("mc_cloud.init_env", ENV, "dev"), "already exists"),
                          (("mc_cloud.init_env", "../x", "dev"), "Environment name '../x' is not valid"),
                          (("mc_cloud.init_env", "other", "qa"), "Unknown environment type"),
                          (("mc_cloud.init_env", "other", "dev", "host=nowhere"), "No compute node named nowhere"),
                          (("mc_cloud.init_env", "other", "dev", "disk_size_mb=10G"),
                           "Disk size must be a whole number of MiB"),
                          (("mc_cloud.enlarge", ENV, "lots"), "Disk size must be a whole number of MiB"),
                          (("mc_cloud.link_node", "192.0.2.20", "port=ssh"), "The SSH port must be a whole number"),
                          (("mc_cloud.unlink_node", "nowhere"), "No compute node named nowhere"),
                          (("mc_cloud.destroy_env", "nowhere"), "No environment named nowhere")]:
        ret = salt_run.run(*args)
        assert ret.returncode == 1, ret
        assert message in ret.data["comment"] and "Traceback" not in ret.stdout + ret.stderr
        # one sentence: one line, one final period
        assert "\n" not in ret.data["comment"] and ret.data["comment"].endswith("."), ret.data
    # no job was made for any of them
    assert salt_run.run("mc_jobs.status", ENV).data == jobs_before
    for target in ("../x", "other", "192.0.2.20", "nowhere"):
        assert salt_run.run("mc_jobs.status", target).returncode == 1


def secret_texts(creds):
    """The root password and every line of the private key's body."""
    with open(creds["key"], encoding="ascii") as fh:
        body = [line for line in fh.read().splitlines() if line and not line.startswith("-----")]
    return [creds["password"]] + body


@contextlib.contextmanager
def traversable(*paths):
    """Let any user walk down to ``paths`` (pytest's tmp dirs are 0700), as to /srv/<controller>."""
    changed = []
    for path in paths:
        path = os.path.abspath(path)
        while path != "/":
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if not mode & stat.S_IXOTH:
                os.chmod(path, mode | stat.S_IXOTH)
                changed.append((path, mode))
            path = os.path.dirname(path)
    try:
        yield
    finally:
        for path, mode in reversed(changed):
            os.chmod(path, mode)


def test_another_local_user_reads_no_secret_anywhere_under_the_controller(salt_run, shop, creds, controller, ctl):
    # The credentials were asked for (creds) and answered: neither the answer nor the inventory shows.
    roots = [controller.config["root_dir"], os.path.dirname(make_url(ctl.url).database)]
    secrets = secret_texts(creds)
    key_file = ctl.settings["secrets_key"]
    assert key_file.startswith(roots[0]) and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(make_url(ctl.url).database).st_mode) == 0o600
    with traversable(*roots):
        seen = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c",
                               'find "$@" -type f -exec cat {} + 2>/dev/null', "sh", *roots],
                              capture_output=True, timeout=120).stdout.decode("utf-8", "replace")
        assert "file_roots" in seen  # the walk did reach files (the master's own config)
        databases = [os.path.join(top, name) for root in roots for top, _, names in os.walk(root)
                     for name in names if name.endswith((".sqlite", ".db"))]
        assert make_url(ctl.url).database in databases
        for database in databases:
            seen += subprocess.run(["runuser", "-u", "nobody", "--", "sqlite3", "-readonly", database, ".dump"],
                                   capture_output=True, text=True, timeout=60).stdout
    for secret in secrets:
        assert secret not in seen


def test_the_job_cache_holds_no_secret_and_no_password_hash(shop, creds, controller):
    cachedir = controller.config["cachedir"]
    found = subprocess.run(["grep", "-r", "-l", "-F", *sum((["-e", s] for s in secret_texts(creds)), []),
                            "-e", "$6$", cachedir], capture_output=True, text=True)
    assert found.returncode == 1, found.stdout  # 1: nothing found
    loads = []
    for top, _, names in os.walk(os.path.join(cachedir, "jobs")):
        if ".load.p" in names:
            with open(os.path.join(top, ".load.p"), "rb") as fh:
                load = salt.payload.load(fh)
            if load.get("fun") == "mc_lxc.configure":
                loads.append(repr(load))
    # The root password's hash goes to the node sealed to its key, with the container's configuration.
    assert loads and all("sealed_password_hash" in load and "sealed1:" in load for load in loads)


def test_secrets_are_stored_encrypted_and_a_key_rotation_keeps_them_readable(salt_run, shop, creds, ctl):
    def stored():
        with db.engine(ctl.url).connect() as connection:
            return dict(connection.execute(text("SELECT name, value FROM secrets WHERE owner = :owner"),
                                           {"owner": "env:{}".format(shop["uuid"])}).all())

    before = stored()
    assert set(before) == {"root_password", "ssh_private_key"}
    assert all(value.startswith("fernet:") and value not in secret_texts(creds) for value in before.values())
    keys = secrets_crypto.read_keys(ctl.settings["secrets_key"])
    assert secrets_crypto.rotate(ctl.url, ctl.settings["secrets_key"]) >= 2
    after = stored()
    assert all(after[name] != before[name] for name in before)
    assert secrets_crypto.read_keys(ctl.settings["secrets_key"]) != keys
    ret = salt_run.run("mc_cloud.credentials", ENV)
    assert ret.returncode == 0, ret
    assert ret.data["root_password"] == creds["password"]
    with open(creds["key"], encoding="ascii") as fh:
        assert ret.data["ssh_private_key"] == fh.read()


def test_destroy_leaves_nothing(salt_run, shop, node1, pdns, ctl, controller):
    ret = salt_run.run("mc_cloud.destroy_env", ENV)
    assert ret.returncode == 0, ret
    listed = subprocess.run(["lxc-ls", "-P", node1["lxc_path"]], capture_output=True, text=True).stdout.split()
    assert ENV not in listed
    assert http(node1, "shop.corpus.test").status_code == 503
    assert dns_query("shop.corpus.test", "A", pdns.dns_port) == []
    # The zone made for the linked domain went with its last records (an empty one would
    # still answer for www.shop.test, hiding the records of a shop.test domain made later).
    zones = requests.get(pdns.api_url + "/api/v1/servers/localhost/zones", headers={"X-API-Key": pdns.api_key},
                         timeout=10).json()
    assert "www.shop.test." not in {zone["name"] for zone in zones}
    mappings = subprocess.run(["nft", "list", "map", "ip", node1["nft_table"], "tcp_ports"], capture_output=True,
                              text=True)
    assert mappings.returncode == 0, mappings.stderr  # the node's own table, there
    assert "{} :".format(shop["access"]["ssh_port"]) not in mappings.stdout
    assert inventory_counts(ctl) == dict.fromkeys(inventory_counts(ctl), 0)
    assert ctl.key_fingerprints("shop.corpus.test") == {}  # neither accepted nor offered again
