"""Checks through a real salt-master, minion and ``corpus-api``: a real HTTP service on
127.0.0.1 goes down and comes back, the minion's scheduled check reports it, the
controller changes the check's state after its retries, and an SMTP sink and a
webhook sink each receive exactly one notification per state change -- none while
a silence covers the host, where the notifications are recorded as suppressed.
A TTL check goes CRITICAL when its pass does not come in time."""

import configparser
import http.server
import json
import threading
import time
import uuid

import httpx
import pytest
import salt.config

from support.ports import LOOPBACK, free_port
from support.services import SmtpSink
from support.wait import wait_for
from support.webhook import WebhookSink

INTERVAL = 1
RETRIES = 1
# Long enough for a few more results of a steady state: a duplicate would show by then.
SETTLE = 2 * INTERVAL + 1


class ToggledService:
    """An HTTP service on 127.0.0.1 that answers ``/health`` while started."""

    def __init__(self):
        self.port = free_port()
        self._server = None

    def start(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                body = b"healthy"
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def health_parts(master):
    smtp = salt.config.master_config(master.config_file)["corpus"]["smtp"]
    service = ToggledService()
    service.start()
    minion = master.salt_minion_daemon("corpus-health-" + uuid.uuid4().hex[:6])
    sink = SmtpSink(port=smtp["port"])  # the controller's relay
    hook = WebhookSink()
    try:
        with minion.started():
            yield minion, service, sink, hook
    finally:
        service.stop()
        sink.stop()
        hook.stop()


def _cli_json(corpus_cli, *args):
    return json.loads(corpus_cli("--json", *args).stdout)


@pytest.fixture
def states(api, cli_env):
    """``states(check, host)``: that check's state record, read from the API (polled
    often: the CLI's own start would be most of each poll)."""
    config = configparser.ConfigParser()
    config.read(cli_env["CORPUS_CONFIG"])
    headers = {"Authorization": "Bearer " + config["corpus"]["token"]}

    def read(check, host):
        answer = httpx.get(api + "/v1/checks", params={"check": check, "host": host}, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        return items[0] if items else None

    return read


def _wait_state(states, check, host, wanted, timeout=45):
    found = {}

    def reached():
        found["state"] = states(check, host)
        return found["state"] is not None and found["state"]["state"] == wanted

    wait_for(reached, timeout=timeout, interval=0.2, what="check {} on {} to be {} (last: {})".format(
        check, host, wanted, found))
    return found["state"]


def _told(sink, hook, check):
    """``(states mailed, states posted)`` for ``check``, in order."""
    mailed = [message["Subject"].split(":")[0].split()[-1] for message in sink.messages
              if check in message["Subject"]]
    posted = [body["text"].split(":")[0] for _path, body in hook.posts if check in body["text"]]
    return mailed, posted


def _wait_told(sink, hook, check, count, timeout=20):
    wait_for(lambda: all(len(told) >= count for told in _told(sink, hook, check)), timeout=timeout, interval=0.2,
             what="{} notifications of {} on each sink (got {})".format(count, check, _told(sink, hook, check)))


def test_one_notification_per_state_change_and_none_during_a_silence(health_parts, corpus_cli, states):
    minion, service, sink, hook = health_parts
    tag = minion.id[-6:]
    host, group, check = "health-" + tag, "checked-" + tag, "web-" + tag
    corpus_cli("inventory", "add", "group", group)
    corpus_cli("inventory", "add", "host", host, "--minion", minion.id, "--group", group)
    corpus_cli("handlers", "add", "mail-" + tag, "--mail", "ops@example.test", "--group", group)
    corpus_cli("handlers", "add", "hook-" + tag, "--webhook", hook.url("/hooks/T0/B0/" + tag), "--group", group)
    listed = corpus_cli("handlers", "list").stdout
    assert "/hooks/T0" not in listed  # the webhook's path is its credential
    corpus_cli("checks", "define", check, "--kind", "http", "--group", group,
               "--param", "url=http://{}:{}/health".format(LOOPBACK, service.port), "--param", "body=healthy",
               "--interval", str(INTERVAL), "--timeout", "1", "--retries", str(RETRIES))

    # The API refreshed the minion's pillar: its schedule runs the check; a first OK tells no one.
    _wait_state(states, check, host, "OK")
    time.sleep(SETTLE)
    assert _told(sink, hook, check) == ([], [])

    service.stop()
    down = _wait_state(states, check, host, "CRITICAL")
    assert "refused" in down["output"] or "Connection" in down["output"]
    _wait_told(sink, hook, check, 1)
    time.sleep(SETTLE)
    assert _told(sink, hook, check) == (["CRITICAL"], ["CRITICAL"])
    [message] = [message for message in sink.messages if check in message["Subject"]]
    assert message["X-Envelope-To"] == "ops@example.test" and host in message.get_content()
    assert hook.posts[0][0] == "/hooks/T0/B0/" + tag

    service.start()
    _wait_state(states, check, host, "OK")
    _wait_told(sink, hook, check, 2)
    time.sleep(SETTLE)
    assert _told(sink, hook, check) == (["CRITICAL", "OK"], ["CRITICAL", "OK"])

    # A silence on the host: the changes are recorded as suppressed and nothing is sent.
    silence = _cli_json(corpus_cli, "silence", "add", "--host", host, "--why", "kernel upgrade", "--minutes", "10")
    assert silence["who"] == "ada"
    service.stop()
    _wait_state(states, check, host, "CRITICAL")
    service.start()
    _wait_state(states, check, host, "OK")
    time.sleep(SETTLE)
    assert _told(sink, hook, check) == (["CRITICAL", "OK"], ["CRITICAL", "OK"])
    suppressed = _cli_json(corpus_cli, "handlers", "notifications", "--check", check, "--status", "suppressed")
    assert suppressed["total"] == 4 and "kernel upgrade" in suppressed["items"][0]["detail"]

    # The silence ended: the next change is told again, once.
    corpus_cli("silence", "end", str(silence["id"]))
    service.stop()
    _wait_state(states, check, host, "CRITICAL")
    _wait_told(sink, hook, check, 3)
    time.sleep(SETTLE)
    assert _told(sink, hook, check) == (["CRITICAL", "OK", "CRITICAL"], ["CRITICAL", "OK", "CRITICAL"])
    sent = _cli_json(corpus_cli, "handlers", "notifications", "--check", check, "--status", "sent")
    assert sent["total"] == 6

    state = states(check, host)
    shown = _cli_json(corpus_cli, "checks", "show", str(state["id"]), "--limit", "50")
    hard = [entry["state"] for entry in reversed(shown["history"]) if entry["hard"]]
    assert hard == ["OK", "CRITICAL", "OK", "CRITICAL", "OK", "CRITICAL"]
    [listed] = _cli_json(corpus_cli, "checks", "list", "--check", check)["items"]
    assert listed["host"] == host and listed["state"] == "CRITICAL"

    # A TTL check: OK after a pass, CRITICAL (and told) when the next one does not come in time.
    ttl = "alive-" + tag
    corpus_cli("checks", "define", ttl, "--kind", "ttl", "--host", host, "--interval", "6")
    # Its state appears with its deadline (PENDING; CRITICAL already if the machine is slow).
    row = wait_for(lambda: states(ttl, host), timeout=15, interval=0.5, what="the TTL check's state")
    passed = _cli_json(corpus_cli, "checks", "pass", str(row["id"]), "--output", "ready")
    assert passed["state"] == "OK" and passed["output"] == "ready"
    _wait_state(states, ttl, host, "CRITICAL", timeout=20)
    _wait_told(sink, hook, ttl, 1)
    mailed, posted = _told(sink, hook, ttl)
    assert mailed == posted and mailed[-1] == "CRITICAL"

    bad = corpus_cli("checks", "define", "bad/" + tag, "--kind", "tcp", "--host", host, "--param", "port=1",
                     check=False)
    assert bad.returncode == 2 and "name" in bad.stderr
