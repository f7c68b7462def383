"""The haproxy configuration generated from the routes, and route input checks (no daemon)."""

import json
import subprocess

import pytest

from mc_project.errors import CorpusError
from mc_project.node import proxy
from support import needs

ROUTES = {
    "app.test": {"address": "10.77.0.10", "port": 80},
    "api.app.test": {"address": "10.77.0.11", "port": 8000},
}


def test_each_route_matches_its_domain_and_names_under_it_by_host_without_port():
    text = proxy.render_config(ROUTES, 8080, "/state/haproxy.pid")
    assert "bind :8080" in text
    assert "http-request set-var(txn.host) req.hdr(host),field(1,:),lower" in text
    assert "acl host_app.test var(txn.host) -m str app.test" in text
    assert "acl host_app.test var(txn.host) -m end .app.test" in text
    assert "use_backend route_app.test if host_app.test" in text
    assert "backend route_app.test\n    server container 10.77.0.10:80" in text


def test_a_more_specific_domain_is_tried_before_its_parent():
    text = proxy.render_config(ROUTES, 80, "/p")
    assert text.index("use_backend route_api.app.test") < text.index("use_backend route_app.test")


def test_no_route_means_no_backend_so_haproxy_answers_503():
    text = proxy.render_config({}, 80, "/p", bind="127.0.0.1")
    assert "bind 127.0.0.1:80" in text
    assert "backend" not in text.replace("use_backend", "")
    assert "default_backend" not in text


@pytest.mark.needs("haproxy")
def test_haproxy_accepts_the_generated_config(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(proxy.render_config(ROUTES, 8080, str(tmp_path / "haproxy.pid")))
    proc = subprocess.run([needs.command("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("domain", ["", "a..b", "-a.test", "a_b.test", "app.test/x", "a b", None])
def test_bad_domains_are_refused(domain, tmp_path):
    with pytest.raises(CorpusError, match="not a domain name"):
        proxy.add_route(domain, "10.0.0.1", 80, str(tmp_path))


def test_domains_are_compared_lower_case_without_trailing_dot():
    assert proxy.check_domain("App.Test.") == "app.test"


@pytest.mark.parametrize("address, port", [("10.0.0.300", 80), ("10.0.0.1", 0), ("10.0.0.1", "http")])
def test_bad_targets_are_refused_and_change_nothing(tmp_path, address, port):
    (tmp_path / "routes.json").write_text(json.dumps(ROUTES))
    with pytest.raises(CorpusError):
        proxy.add_route("new.test", address, port, str(tmp_path))
    assert json.loads((tmp_path / "routes.json").read_text()) == ROUTES


def test_add_route_before_setup_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="run mc_lxc.setup_node first"):
        proxy.add_route("app.test", "10.0.0.1", 80, str(tmp_path))


def test_a_config_haproxy_refuses_replaces_nothing(tmp_path, monkeypatch):
    (tmp_path / "haproxy.cfg").write_text("live config\n")

    def refuse(args, what, **kwargs):
        raise CorpusError("{} failed: bad config.".format(what))

    monkeypatch.setattr(proxy, "run", refuse)
    with pytest.raises(CorpusError, match="Checking the proxy configuration failed"):
        proxy.apply(str(tmp_path), ROUTES, {"http_port": 80, "bind": ""})
    assert (tmp_path / "haproxy.cfg").read_text() == "live config\n"
    assert not (tmp_path / "routes.json").exists()
    assert not (tmp_path / "haproxy.cfg.new").exists()


def test_routes_lists_the_saved_routes_by_domain(tmp_path):
    (tmp_path / "routes.json").write_text(json.dumps(ROUTES))
    assert [r["domain"] for r in proxy.routes(str(tmp_path))] == ["api.app.test", "app.test"]
    assert proxy.routes(str(tmp_path / "none")) == []
