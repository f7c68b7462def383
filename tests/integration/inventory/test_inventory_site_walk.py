"""A site walk through the real corpus-api and ``corpus walk``: a real haproxy front
(configured as a node's proxy is, by ``mc_project.node.proxy``) routing three domains
to three backends on loopback, one of them dead. The walk reports that backend and its
domain through the front, and every other target OK."""

import json
import subprocess
import uuid

import httpx
import pytest
from sqlalchemy import select

from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Tenant
from mc_project.node import proxy
from support import needs
from support.http_backends import backends
from support.ports import LOOPBACK, free_port
from support.wait import wait_for

pytestmark = pytest.mark.needs("haproxy")


@pytest.fixture
def site(url, tmp_path, corpus_cli):
    """Node walk-<tag> whose front routes shop/blog/wiki.<tag>.test; wiki's backend is down."""
    tag = uuid.uuid4().hex[:6]
    names = {name: "{}-{}".format(name, tag) for name in ("shop", "blog", "wiki")}
    with backends([names["shop"]], path="/healthz", host="127.0.0.2") as shop, \
            backends([names["blog"]], path="/healthz", host="127.0.0.3") as blog:
        ports = {names["shop"]: shop[names["shop"]].server_port, names["blog"]: blog[names["blog"]].server_port,
                 names["wiki"]: free_port(host="127.0.0.4")}
        addresses = {names["shop"]: "127.0.0.2", names["blog"]: "127.0.0.3", names["wiki"]: "127.0.0.4"}
        domains = {name: "{}.{}.test".format(short, tag) for short, name in names.items()}
        front_port = free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(proxy.render_config(
            {domains[name]: {"address": addresses[name], "port": ports[name]} for name in names.values()},
            front_port, str(tmp_path / "haproxy.pid"), bind=LOOPBACK))
        front = subprocess.Popen([needs.command("haproxy"), "-db", "-f", str(config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _answers(front_port), timeout=30, what="haproxy to listen", interval=0.2)
            node_name = "walk-" + tag
            with db.session(url) as sess:
                tenant_id = sess.scalar(select(Tenant.id).where(Tenant.name == "default"))
                node = ComputeNode(name=node_name, address=LOOPBACK, http_port=front_port, slots=5,
                                   tenant_id=tenant_id)
                sess.add(node)
                sess.flush()
                for name in names.values():
                    sess.add(Environment(name=name, tenant_id=tenant_id, node_id=node.id, ip=addresses[name],
                                         status="active", domains=[domains[name]]))
            for name in names.values():
                corpus_cli("inventory", "set", "host", name, "health_path=/healthz", "app_port={}".format(ports[name]))
            yield node_name, names, domains
        finally:
            front.terminate()
            front.wait(10)


def _answers(port):
    try:
        httpx.get("http://{}:{}/".format(LOOPBACK, port), timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_a_walk_reports_the_dead_backend_and_the_others_ok(site, corpus_cli):
    node_name, names, domains = site
    walked = corpus_cli("--json", "walk", node_name, "--timeout", "10", check=False)
    assert walked.returncode == 1, walked
    record = json.loads(walked.stdout)
    assert record["status"] == "failed" and record["targets"] == 6 and record["failed"] == 2
    failed = sorted((result["kind"], result["name"]) for result in record["results"] if not result["ok"])
    assert failed == [("backend", names["wiki"]), ("front", domains[names["wiki"]])]
    front_of_wiki = next(result for result in record["results"] if result["name"] == domains[names["wiki"]])
    assert front_of_wiki["status"] == 503  # haproxy, after its retries: its server is down
    assert all(result["status"] == 200 for result in record["results"] if result["ok"])
    assert "2 of 6 targets failed" in walked.stderr

    fine = corpus_cli("walk", domains[names["shop"]])
    assert "All 2 targets answered." in fine.stdout
    history = json.loads(corpus_cli("--json", "walks", node_name).stdout)
    assert [item["id"] for item in history["items"]] == [record["id"]]
    assert history["items"][0]["status"] == "failed"
    unknown = corpus_cli("walk", "no-such-site.test", check=False)
    assert unknown.returncode != 0 and "No site no-such-site.test" in unknown.stderr
