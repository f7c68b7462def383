"""A site walk through the real corpus-api and ``corpus walk``: a real haproxy front
(configured as a node's proxy is, by ``mc_project.node.proxy``) routing three domains
to three backends on loopback, one of them dead. The walk reports that backend and its
domain through the front, and every other target OK. A webhook handler hears the failed
walk once (not again at the next failed walk), the recovery once, and nothing while a
silence covers the dead backend's host."""

import json
import subprocess
import time
import uuid

import httpx
import pytest
from sqlalchemy import select

from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Tenant
from mc_project.node import proxy
from support import needs
from support.http_backends import backend, backends
from support.ports import LOOPBACK, free_port
from support.wait import wait_for
from support.webhook import WebhookSink

pytestmark = pytest.mark.needs("haproxy")
# Long enough for a second message to arrive, were one sent.
SETTLE = 1.5


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
            yield node_name, names, domains, dict(ports, front=front_port)
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
    node_name, names, domains, _ports = site
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


def _routes(port, domain):
    try:
        return httpx.get("http://{}:{}/healthz".format(LOOPBACK, port), headers={"Host": domain},
                         timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _posted(hook, site):
    return [body["text"] for _path, body in hook.posts if "site walk" in body["text"] and site in body["text"]]


def _walk_done(corpus_cli, site, hook, count):
    """Walk ``site`` with the real CLI; the walk's record, once its notifications went out
    (the walk's thread in corpus-api tells the handlers after its record is written)."""
    walked = json.loads(corpus_cli("--json", "walk", site, "--timeout", "10", check=False).stdout)
    wait_for(lambda: len(_posted(hook, site)) >= count, timeout=15, interval=0.2,
             what="{} notification(s) of the walks of {} (got {})".format(count, site, _posted(hook, site)))
    time.sleep(SETTLE)  # a second message would show by then
    return walked


def test_a_failed_walk_tells_the_handlers_once_then_its_recovery_and_nothing_during_a_silence(site, corpus_cli):
    node_name, names, domains, ports = site
    wiki = names["wiki"]
    with WebhookSink() as hook:
        corpus_cli("handlers", "add", "walks-" + node_name, "--webhook", hook.url("/hooks/W0/" + node_name))

        failed = _walk_done(corpus_cli, node_name, hook, 1)
        assert failed["status"] == "failed"
        [text] = _posted(hook, node_name)
        assert text.startswith("CRITICAL: site walk {} of {} (was ".format(failed["id"], node_name))
        assert "backend {} (".format(wiki) in text and domains[wiki] in text
        assert hook.posts[0][0] == "/hooks/W0/" + node_name

        again = _walk_done(corpus_cli, node_name, hook, 1)  # failed again: no one is told again
        assert again["status"] == "failed" and len(_posted(hook, node_name)) == 1

        up = backend(wiki, path="/healthz", host="127.0.0.4", port=ports[wiki])
        try:
            # haproxy sees the server back on its own checks: the front answers before the walk.
            wait_for(lambda: _routes(ports["front"], domains[wiki]), timeout=30, interval=0.3,
                     what="the front to route {} again".format(domains[wiki]))
            passed = _walk_done(corpus_cli, node_name, hook, 2)
        finally:
            up.shutdown()
            up.server_close()
        assert passed["status"] == "ok"
        assert _posted(hook, node_name)[1] == "OK: site walk {} of {} (was CRITICAL). All 6 targets answered.".format(
            passed["id"], node_name)

        # A silence on the dead backend's host: the failure is recorded as suppressed, not sent.
        corpus_cli("silence", "add", "--host", wiki, "--why", "disk replaced", "--minutes", "10")
        silenced = _walk_done(corpus_cli, node_name, hook, 2)
        assert silenced["status"] == "failed" and len(_posted(hook, node_name)) == 2
    told = json.loads(corpus_cli("--json", "handlers", "notifications", "--check", "site walk", "--host",
                                 node_name).stdout)
    assert [(item["previous"], item["state"], item["status"]) for item in reversed(told["items"])] == [
        ("PENDING", "CRITICAL", "sent"), ("CRITICAL", "OK", "sent"), ("OK", "CRITICAL", "suppressed")]
    assert "disk replaced" in told["items"][0]["detail"]
