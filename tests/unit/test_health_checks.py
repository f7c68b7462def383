"""The fleet health without Salt: the state machine (retries, flapping, TTL deadlines),
the checks a minion runs, signed reports, and the controller's side over an SQLite
inventory -- routing, silences, repeats, every notification recorded. Sending is
replaced by a recorder here; the integration test sends real mail and webhooks."""

import datetime
import http.server
import socket
import sys
import threading
import time
import types

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.health import check_pillar, check_states, checks, definitions, handlers, reports, results, silences
from mc_project.inventory import db, fleet
from mc_project.inventory.health_models import PENDING, CheckHistory, CheckState, Notification
from mc_project.api.users import ensure_tenant

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def fresh_row():
    return types.SimpleNamespace(state=PENDING, since=T0, last_state=None, attempts=0, output=None, checked=None,
                                 expires=None, notified=None)


def feed(row, states, retries):
    """Apply ``states`` one second apart; the hard changes they made."""
    changes = []
    for second, state in enumerate(states):
        outcome = check_states.apply(row, state, state.lower(), retries, at(second))
        if outcome.change:
            changes.append(outcome.change)
    return changes


# --------------------------------------------------------------------------- state machine

def test_the_first_result_is_hard_and_a_first_ok_tells_no_one():
    row = fresh_row()
    assert feed(row, ["OK"], retries=3) == [(PENDING, "OK")]
    assert not check_states.notifies((PENDING, "OK"))
    assert check_states.notifies((PENDING, "CRITICAL"))
    assert row.state == "OK" and row.since == at(0)


def test_the_state_changes_after_its_retries_and_only_then():
    row = fresh_row()
    assert feed(row, ["OK", "CRITICAL", "CRITICAL"], retries=2) == [(PENDING, "OK")]
    assert row.state == "OK" and row.last_state == "CRITICAL" and row.attempts == 2
    outcome = check_states.apply(row, "CRITICAL", "down", 2, at(10))
    assert outcome.change == ("OK", "CRITICAL") and outcome.history["hard"]
    assert row.state == "CRITICAL" and row.since == at(10) and row.attempts == 0


def test_a_flapping_check_never_changes_state():
    row = fresh_row()
    changes = feed(row, ["OK"] + ["CRITICAL", "OK"] * 20, retries=1)
    assert changes == [(PENDING, "OK")]
    assert row.state == "OK"


def test_soft_changes_are_in_the_history_but_steady_results_are_not():
    row = fresh_row()
    entries = []
    for second, state in enumerate(["OK", "OK", "CRITICAL", "OK", "OK", "OK"]):
        outcome = check_states.apply(row, state, "", 2, at(second))
        if outcome.history:
            entries.append((outcome.history["state"], outcome.history["hard"]))
    assert entries == [("OK", True), ("CRITICAL", False), ("OK", False)]


def test_warning_then_critical_in_a_row_count_together():
    row = fresh_row()
    assert feed(row, ["OK", "WARNING", "CRITICAL"], retries=1)[-1] == ("OK", "CRITICAL")


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError):
        check_states.apply(fresh_row(), "DOWN", "", 0, T0)


def test_a_ttl_check_is_ok_after_a_pass_and_critical_once_past_its_deadline():
    row = fresh_row()
    assert check_states.passed(row, 10, at(0)).change == (PENDING, "OK")
    assert check_states.expire(row, 10, at(9)) is None
    outcome = check_states.expire(row, 10, at(10))
    assert outcome.change == ("OK", "CRITICAL") and "10 s" in row.output
    assert check_states.expire(row, 10, at(30)) is None  # once, until the next pass
    assert check_states.passed(row, 10, at(31)).change == ("CRITICAL", "OK")


# --------------------------------------------------------------------------- checks on a minion

def test_script_checks_take_the_nagios_exit_codes_and_keep_the_output():
    for code, state in ((0, "OK"), (1, "WARNING"), (2, "CRITICAL"), (3, "UNKNOWN"), (7, "UNKNOWN")):
        found = checks.run({"kind": "script", "params": {"command": [
            sys.executable, "-c", "print('load is fine'); raise SystemExit({})".format(code)]}, "timeout": 20})
        assert found["state"] == state and found["output"] == "load is fine"
    slow = checks.run({"kind": "script", "params": {"command": [sys.executable, "-c", "import time; time.sleep(5)"]},
                       "timeout": 0.5})
    assert slow["state"] == "UNKNOWN" and "did not end" in slow["output"]
    missing = checks.run({"kind": "script", "params": {"command": "/nonexistent/check_thing -w 1"}})
    assert missing["state"] == "UNKNOWN" and "could not be run" in missing["output"]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            status = 500 if self.path == "/broken" else 200
            body = b"all good" if status == 200 else b"oops"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:{}".format(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_http_and_tcp_checks(web_server):
    def http_check(**params):
        return checks.run({"kind": "http", "params": params, "timeout": 5})

    assert http_check(url=web_server + "/")["state"] == "OK"
    assert http_check(url=web_server + "/", body="all g..d")["state"] == "OK"
    assert http_check(url=web_server + "/", body="nope")["state"] == "CRITICAL"
    assert http_check(url=web_server + "/broken")["state"] == "CRITICAL"
    assert http_check(url=web_server + "/broken", status=500)["state"] == "OK"
    assert http_check(url="http://127.0.0.1:{}/".format(_closed_port()))["state"] == "CRITICAL"
    port = int(web_server.rsplit(":", 1)[1])
    assert checks.run({"kind": "tcp", "params": {"port": port}})["state"] == "OK"
    assert checks.run({"kind": "tcp", "params": {"port": _closed_port()}, "timeout": 2})["state"] == "CRITICAL"
    assert checks.run({"kind": "ttl", "params": {}})["state"] == "UNKNOWN"


# --------------------------------------------------------------------------- signed reports

def _key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_a_report_is_believed_only_signed_by_the_minion_its_tag_names_and_fresh():
    private, public = _key_pair()
    _other_private, other_public = _key_pair()
    tag = reports.tag("web1", "http")
    body = reports.sign(private, tag, {"state": "OK", "output": "fine", "duration": 0.1, "at": time.time()})
    assert reports.verify(public, tag, body)
    assert not reports.verify(other_public, tag, body)
    assert not reports.verify(public, reports.tag("web2", "http"), body)
    assert not reports.verify(public, tag, dict(body, state="CRITICAL"))
    assert not reports.verify(public, tag, dict(body, signature="bm9wZQ=="))
    assert not reports.verify(public, tag, body, now=time.time() + 3600)
    assert not reports.verify(None, tag, body)
    assert reports.parse_tag("corpus/check/web1/http") == ("web1", "http")
    assert reports.parse_tag("corpus/check/web1") is None and reports.parse_tag("salt/job/1") is None


# --------------------------------------------------------------------------- the controller's side

@pytest.fixture
def fleet_db(tmp_path):
    """An inventory with tenant default, groups web > front, host web1 (minion m-web1)
    in front, host db1 (minion m-db1) in no group."""
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    with db.session(url) as sess:
        tenant = ensure_tenant(sess, "default").id
        fleet.create_group(sess, "ada", tenant, "front")
        fleet.create_group(sess, "ada", tenant, "web", children=["front"])
        fleet.create_host(sess, "ada", tenant, {"name": "web1", "minion_id": "m-web1", "groups": ["front"]})
        fleet.create_host(sess, "ada", tenant, {"name": "db1", "minion_id": "m-db1"})
    yield types.SimpleNamespace(url=url, tenant=tenant)
    db.dispose()


@pytest.fixture
def sent(monkeypatch):
    """What would have been sent: ``(handler, state, repeat)`` in order."""
    found = []

    def send(delivery, smtp):
        if delivery["handler"] == "broken":
            raise CorpusError("The webhook https://hooks.example/… answered 500.")
        found.append((delivery["handler"], delivery["host"], delivery["state"], delivery["repeat"]))
        return "sent"

    monkeypatch.setattr(handlers, "send", send)
    return found


def _result(url, minion, check, state, now):
    with db.session(url) as sess:
        deliveries = results.record_result(sess, minion, check, {"state": state, "output": state.lower()}, now=now)
    return handlers.dispatch(url, deliveries, {})


def _notifications(url):
    with db.session(url) as sess:
        return [(n.handler_name, n.host_name, n.previous, n.state, n.status)
                for n in sess.scalars(select(Notification).order_by(Notification.id))]


def test_checks_reach_the_hosts_of_a_group_and_the_groups_inside_it_through_the_pillar(fleet_db):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "http", "http", group="web",
                                 params={"url": "http://127.0.0.1:8080/"}, interval=2)
        definitions.create_check(sess, fleet_db.tenant, "alive", "ttl", host="db1", interval=30)
        web1 = fleet.host_by_name(sess, fleet_db.tenant, "web1")
        db1 = fleet.host_by_name(sess, fleet_db.tenant, "db1")
        served = check_pillar.checks_pillar(sess, web1)
        assert served["corpus_checks"]["http"]["kind"] == "http"
        assert served["schedule"]["corpus-check-http"]["function"] == "mc_health.run"
        assert served["schedule"]["corpus-check-http"]["seconds"] == 2
        assert check_pillar.checks_pillar(sess, db1) == {}  # a TTL check runs on no minion


def test_bad_definitions_are_one_sentence(fleet_db):
    with db.session(fleet_db.url) as sess:
        for args, kwargs, words in (
                (("bad/name", "tcp"), {"host": "web1", "params": {"port": 1}}, "name"),
                (("x", "tcp"), {"host": "web1", "group": "web", "params": {"port": 1}}, "one of them"),
                (("x", "tcp"), {"host": "web1", "params": {"port": 70000}}, "port"),
                (("x", "http"), {"host": "web1", "params": {"url": "ftp://a"}}, "URL"),
                (("x", "http"), {"host": "web1", "params": {"url": "http://a", "body": "("}}, "regular expression"),
                (("x", "script"), {"host": "web1", "params": {}}, "command"),
                (("x", "ttl"), {"host": "web1", "params": {"port": 1}}, "no params"),
                (("x", "ping"), {"host": "web1"}, "kind"),
                (("x", "tcp"), {"host": "nohost", "params": {"port": 1}}, "No host")):
            with pytest.raises(CorpusError, match=words):
                definitions.create_check(sess, fleet_db.tenant, *args, **kwargs)


def test_one_notification_per_hard_change_routed_per_group(fleet_db, sent):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "http", "http", group="web",
                                 params={"url": "http://127.0.0.1/"}, retries=1)
        definitions.create_check(sess, fleet_db.tenant, "disk", "script", host="db1", params={"command": "true"})
        definitions.create_handler(sess, fleet_db.tenant, "ops", "webhook", "https://hooks.example/secret")
        definitions.create_handler(sess, fleet_db.tenant, "web-team", "mail", "web@example.org", group="web")
    for second, state in enumerate(["OK", "CRITICAL", "CRITICAL", "CRITICAL", "OK", "OK"]):
        _result(fleet_db.url, "m-web1", "http", state, at(second))
    _result(fleet_db.url, "m-db1", "disk", "WARNING", at(10))
    assert sent == [("ops", "web1", "CRITICAL", False), ("web-team", "web1", "CRITICAL", False),
                    ("ops", "web1", "OK", False), ("web-team", "web1", "OK", False),
                    ("ops", "db1", "WARNING", False)]
    with db.session(fleet_db.url) as sess:
        row = sess.scalar(select(CheckState).where(CheckState.host_id == fleet.host_by_name(
            sess, fleet_db.tenant, "web1")["id"]))
        history = [(h.state, h.hard) for h in sess.scalars(select(CheckHistory).where(
            CheckHistory.state_id == row.id).order_by(CheckHistory.id))]
    assert history == [("OK", True), ("CRITICAL", False), ("CRITICAL", True), ("OK", False), ("OK", True)]


def test_a_minion_reports_only_its_own_hosts_checks(fleet_db):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "disk", "script", host="db1", params={"command": "true"})
        definitions.create_check(sess, fleet_db.tenant, "alive", "ttl", host="web1", interval=5)
    for minion, check in (("m-web1", "disk"), ("m-nobody", "disk"), ("m-web1", "alive")):
        with pytest.raises(CorpusError):
            with db.session(fleet_db.url) as sess:
                results.record_result(sess, minion, check, {"state": "CRITICAL"})


def test_a_silence_suppresses_and_records_and_its_end_lets_the_next_change_through(fleet_db, sent):
    with db.session(fleet_db.url) as sess:
        check = definitions.create_check(sess, fleet_db.tenant, "http", "http", group="web",
                                         params={"url": "http://127.0.0.1/"})
        definitions.create_handler(sess, fleet_db.tenant, "ops", "webhook", "https://hooks.example/secret")
        web = fleet.group_by_name(sess, fleet_db.tenant, "web").id
        silences.create(sess, fleet_db.tenant, "ada", "kernel upgrade", until=at(60), starts=at(0), group_id=web)
        with pytest.raises(CorpusError, match="name at least one"):
            silences.create(sess, fleet_db.tenant, "ada", "why", until=at(60), starts=at(0))
        with pytest.raises(CorpusError, match="after it starts"):
            silences.create(sess, fleet_db.tenant, "ada", "why", until=at(0), starts=at(10), check_id=check.id)
    _result(fleet_db.url, "m-web1", "http", "OK", at(1))
    _result(fleet_db.url, "m-web1", "http", "CRITICAL", at(2))
    _result(fleet_db.url, "m-web1", "http", "OK", at(3))
    assert sent == []
    _result(fleet_db.url, "m-web1", "http", "CRITICAL", at(61))
    assert sent == [("ops", "web1", "CRITICAL", False)]
    found = _notifications(fleet_db.url)
    assert [status for *_rest, status in found] == ["suppressed", "suppressed", "sent"]
    with db.session(fleet_db.url) as sess:
        detail = sess.scalars(select(Notification.detail).order_by(Notification.id)).first()
    assert "ada" in detail and "kernel upgrade" in detail


def test_a_handler_with_a_repeat_is_told_again_while_the_state_stays_bad(fleet_db, sent):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "http", "http", host="web1",
                                 params={"url": "http://127.0.0.1/"})
        definitions.create_handler(sess, fleet_db.tenant, "pager", "webhook", "https://hooks.example/p", repeat=10)
        definitions.create_handler(sess, fleet_db.tenant, "once", "mail", "ops@example.org")
    _result(fleet_db.url, "m-web1", "http", "CRITICAL", at(0))
    for second in (5, 9, 10, 15, 21):
        with db.session(fleet_db.url) as sess:
            deliveries = results.repeats(sess, now=at(second))
        handlers.dispatch(fleet_db.url, deliveries, {})
    assert sent == [("once", "web1", "CRITICAL", False), ("pager", "web1", "CRITICAL", False),
                    ("pager", "web1", "CRITICAL", True), ("pager", "web1", "CRITICAL", True)]
    _result(fleet_db.url, "m-web1", "http", "OK", at(22))
    with db.session(fleet_db.url) as sess:
        assert results.repeats(sess, now=at(100)) == []


def test_a_ttl_check_without_a_pass_goes_critical_and_a_pass_brings_it_back(fleet_db, sent):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "alive", "ttl", host="db1", interval=5)
        definitions.create_handler(sess, fleet_db.tenant, "ops", "webhook", "https://hooks.example/secret")
    with db.session(fleet_db.url) as sess:
        assert results.expire_ttls(sess, now=at(0)) == []
        row = sess.scalar(select(CheckState))
        assert row.state == PENDING
    with db.session(fleet_db.url) as sess:
        deliveries = results.expire_ttls(sess, now=at(6))
    handlers.dispatch(fleet_db.url, deliveries, {})
    with db.session(fleet_db.url) as sess:
        row = sess.scalar(select(CheckState))
        assert row.state == "CRITICAL"
        deliveries = results.record_pass(sess, row, "ready", now=at(7))
    handlers.dispatch(fleet_db.url, deliveries, {})
    assert sent == [("ops", "db1", "CRITICAL", False), ("ops", "db1", "OK", False)]


def test_a_failed_delivery_is_recorded_with_its_reason(fleet_db, sent):
    with db.session(fleet_db.url) as sess:
        definitions.create_check(sess, fleet_db.tenant, "disk", "script", host="db1", params={"command": "true"})
        definitions.create_handler(sess, fleet_db.tenant, "broken", "webhook", "https://hooks.example/secret")
    assert _result(fleet_db.url, "m-db1", "disk", "CRITICAL", at(0)) == ["failed"]
    with db.session(fleet_db.url) as sess:
        note = sess.scalar(select(Notification))
    assert note.status == "failed" and "500" in note.detail and "secret" not in note.detail


def test_a_webhooks_url_is_shown_without_its_path():
    assert handlers.masked_target("webhook", "https://user:pw@hooks.example/services/T0/B0/XYZ") == \
        "https://hooks.example/…"
    assert handlers.masked_target("mail", "ops@example.org") == "ops@example.org"
