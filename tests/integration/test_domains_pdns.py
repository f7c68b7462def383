"""Domains and records through the real ``corpus`` command, the API (uvicorn, an SQLite
inventory) and a real PowerDNS (gsqlite3): records answer over DNS (dnspython queries to
that PowerDNS), a change made in PowerDNS behind the inventory's back is drift that
``corpus dns check`` reports with exit 1, and PowerDNS refusing or down changes nothing."""

import json
import threading

import httpx
import pytest
import uvicorn

from mc_project.api import users
from mc_project.api.app import create_app
from mc_project.controller.pdns import PowerDns
from mc_project.controller.runtime import Controller
from mc_project.inventory import db
from support.api_stub import run_corpus
from support.ports import LOOPBACK, free_port
from support.services import PdnsServer, dns_query
from support.wait import wait_for

DOMAIN = "example.test"
SSHFP = "1 2 " + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def pdns(tmp_path_factory):
    server = PdnsServer(tmp_path_factory.mktemp("domains-pdns"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(pdns, tmp_path_factory):
    root = tmp_path_factory.mktemp("domains-api")
    opts = {"corpus": {"db_url": "sqlite:///{}".format(root / "inventory.sqlite"),
                       "secrets_key": str(root / "secrets.key"), "master_address": LOOPBACK,
                       "dns": {"api_url": pdns.api_url, "api_key": pdns.api_key}},
            "cachedir": str(root / "cache"), "sock_dir": str(root / "sock")}
    ctl = Controller(opts)
    app = create_app(opts, ctl=ctl)
    users.add_local_user(ctl.url, "ada", "ada-pw", "default", "admin")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="the API to start")
    yield "http://{}:{}".format(LOOPBACK, port)
    server.should_exit = True
    thread.join(10)
    db.dispose()


@pytest.fixture(scope="module")
def home(api, tmp_path_factory):
    token = httpx.post(api + "/v1/login", json={"username": "ada", "password": "ada-pw"}, timeout=30).json()["token"]
    home = tmp_path_factory.mktemp("domains-home")
    (home / ".makinastates.conf").write_text("[corpus]\nurl = {}\ntoken = {}\n".format(api, token))
    return home


def corpus(home, *args):
    result = run_corpus(list(args), home)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def done(home, *args):
    result = corpus(home, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def listed(home):
    return sorted((r["name"], r["type"], r["content"]) for r in json.loads(done(
        home, "--json", "dns", "list", DOMAIN, "--limit", "500").stdout)["items"])


def test_records_answer_over_dns_and_drift_is_reported(pdns, home):
    port = pdns.dns_port
    assert "Domain example.test added." in done(home, "domains", "add", DOMAIN, "--ns", "ns1.example.test",
                                                "--ns", "ns2.example.test").stdout
    assert dns_query(DOMAIN, "NS", port) == ["ns1.example.test.", "ns2.example.test."]
    for args in (("www.example.test", "A", "192.0.2.10"), ("www.example.test", "A", "192.0.2.11"),
                 ("www.example.test", "AAAA", "2001:DB8::10"), ("ftp.example.test", "CNAME", "www.example.test"),
                 ("@", "TXT", "v=spf1 mx -all"), ("@", "MX", "10 mail.example.test"),
                 ("mail.example.test", "A", "192.0.2.20"),
                 ("_imaps._tcp.example.test", "SRV", "0 5 993 mail.example.test"),
                 ("www.example.test", "SSHFP", SSHFP)):
        done(home, "dns", "add", DOMAIN, *args, "--ttl", "120")
    assert dns_query("www.example.test", "A", port) == ["192.0.2.10", "192.0.2.11"]
    assert dns_query("www.example.test", "AAAA", port) == ["2001:db8::10"]
    assert dns_query("ftp.example.test", "CNAME", port) == ["www.example.test."]
    assert dns_query(DOMAIN, "TXT", port) == ['"v=spf1 mx -all"']
    assert dns_query(DOMAIN, "MX", port) == ["10 mail.example.test."]
    assert dns_query("_imaps._tcp.example.test", "SRV", port) == ["0 5 993 mail.example.test."]
    assert dns_query("www.example.test", "SSHFP", port) == [SSHFP]
    checked = done(home, "dns", "check", DOMAIN)
    assert checked.stdout.strip() == "example.test: in step with PowerDNS."

    # Bad input: exit 2, one sentence, nothing changed in either place.
    before = listed(home)
    bad = corpus(home, "dns", "add", DOMAIN, "ftp.example.test", "A", "192.0.2.30")
    assert bad.returncode == 2
    assert bad.stderr == ("corpus: ftp.example.test already is a CNAME; a CNAME must be the only record of its "
                          "name.\n")
    bad = corpus(home, "dns", "add", DOMAIN, "www.other.test", "A", "192.0.2.30")
    assert bad.returncode == 2 and "is not inside domain example.test" in bad.stderr
    assert corpus(home, "dns", "add", DOMAIN, "x.example.test", "AAAA", "192.0.2.1").returncode == 2
    assert listed(home) == before and dns_query("ftp.example.test", "A", port) == []

    # Changes and removals reach DNS.
    done(home, "dns", "change", DOMAIN, "www.example.test", "A", "192.0.2.11", "--content", "192.0.2.12")
    assert dns_query("www.example.test", "A", port) == ["192.0.2.10", "192.0.2.12"]
    ambiguous = corpus(home, "dns", "remove", DOMAIN, "www.example.test", "A")
    assert ambiguous.returncode == 2 and "give the CONTENT" in ambiguous.stderr
    done(home, "dns", "remove", DOMAIN, "www.example.test", "A", "192.0.2.10")
    assert dns_query("www.example.test", "A", port) == ["192.0.2.12"]

    # Drift: PowerDNS changed directly, behind the inventory's back.
    direct = PowerDns(pdns.api_url, pdns.api_key)
    direct.add_records(DOMAIN, [{"name": "www.example.test", "type": "A", "contents": ["192.0.2.99"], "ttl": 120},
                                {"name": "rogue.example.test", "type": "TXT", "contents": ['"hello"'], "ttl": 60}])
    direct.remove_records(DOMAIN, [("mail.example.test", "A")])
    drift = corpus(home, "dns", "check", DOMAIN)
    assert drift.returncode == 1
    assert drift.stdout.splitlines() == [
        "example.test: drift.",
        "  - mail.example.test A not in PowerDNS: inventory 192.0.2.20 (ttl 120), PowerDNS -",
        "  + rogue.example.test TXT not in the inventory: inventory -, PowerDNS \"hello\" (ttl 60)",
        "  ~ www.example.test A differs: inventory 192.0.2.12 (ttl 120), PowerDNS 192.0.2.99 (ttl 120)",
    ]
    assert drift.stderr == "corpus: 1 domain(s) drifted from PowerDNS: example.test.\n"
    report = json.loads(corpus(home, "--json", "dns", "check").stdout)
    assert report["in_sync"] is False and report["error"]["exit_code"] == 1
    [domain] = report["domains"]
    assert [(e["name"], e["type"]) for e in domain["differing"]] == [("www.example.test", "A")]
    # Putting PowerDNS back as the inventory says ends the drift.
    direct.add_records(DOMAIN, [{"name": "www.example.test", "type": "A", "contents": ["192.0.2.12"], "ttl": 120},
                                {"name": "mail.example.test", "type": "A", "contents": ["192.0.2.20"], "ttl": 120}])
    direct.remove_records(DOMAIN, [("rogue.example.test", "TXT")])
    assert done(home, "dns", "check").returncode == 0


def test_powerdns_refusing_changes_nothing(pdns, home):
    # A name PowerDNS holds but the inventory does not: the CNAME passes the inventory's
    # checks and PowerDNS refuses it (a CNAME beside other records).
    PowerDns(pdns.api_url, pdns.api_key).add_records(DOMAIN, [
        {"name": "clash.example.test", "type": "TXT", "contents": ['"x"'], "ttl": 60}])
    before = listed(home)
    refused = corpus(home, "dns", "add", DOMAIN, "clash.example.test", "CNAME", "www.example.test")
    assert refused.returncode == 1
    assert refused.stderr.startswith("corpus: PowerDNS at {} refused to set records in zone example.test: "
                                     "HTTP 422".format(pdns.api_url))
    assert refused.stderr.count("\n") == 1
    assert listed(home) == before
    assert dns_query("clash.example.test", "CNAME", pdns.dns_port) == []
    PowerDns(pdns.api_url, pdns.api_key).remove_records(DOMAIN, [("clash.example.test", "TXT")])


def test_powerdns_down_changes_nothing(pdns, home):
    """Last: it stops the module's PowerDNS."""
    before = listed(home)
    pdns.stop()
    down = "corpus: PowerDNS at {} did not answer: Connection refused.\n".format(pdns.api_url)
    for args in (("dns", "add", DOMAIN, "new.example.test", "A", "192.0.2.40"),
                 ("dns", "remove", DOMAIN, "mail.example.test", "A"),
                 ("dns", "change", DOMAIN, "mail.example.test", "A", "--ttl", "30"),
                 ("domains", "add", "other.test", "--ns", "ns1.other.test"),
                 ("domains", "remove", DOMAIN),
                 ("dns", "check", DOMAIN)):
        result = corpus(home, *args)
        assert (result.returncode, result.stderr) == (1, down), args
    assert listed(home) == before
    assert [d["name"] for d in json.loads(done(home, "--json", "domains", "list").stdout)["items"]] == [DOMAIN]
