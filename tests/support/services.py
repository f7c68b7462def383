"""Real services for tests: PowerDNS with its HTTP API, an SMTP sink, DNS queries.

Each one listens on 127.0.0.1 on free ports, keeps its files under the given
directory and stops on ``stop()`` (or when its ``with`` block ends). Fixtures
for a test module: ``from support.services import pdns_server, smtp_sink  # noqa: F401``.

* ``PdnsServer(tmpdir)``: ``pdns_server`` (Debian pdns-server) with the gsqlite3
  backend; ``api_url``, ``api_key``, ``dns_port``.
* ``SmtpSink(refuse=False)``: aiosmtpd; ``host``, ``port``, ``messages`` (parsed
  ``email.message.EmailMessage``, with ``X-Envelope-To``/``X-Envelope-From``);
  ``refuse=True`` answers 550 to every recipient; ``port`` is the one a controller's
  relay setting names (default: a free one).
* ``dns_query(name, rdtype, port)``: the answer's records as text, sorted.
"""

import email
import email.policy
import os
import secrets
import sqlite3
import subprocess
import time

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests
from aiosmtpd.controller import Controller

from support import needs
from support.ports import LOOPBACK, free_port

PDNS_SERVER = needs.command("pdns_server") or "/usr/sbin/pdns_server"
# Where Debian's pdns-backend-sqlite3 puts the schema, newest layout first.
PDNS_SQLITE_SCHEMAS = needs.PDNS_SQLITE_SCHEMAS
# pdns_server starts in well under a second; this only stops a hung start.
START_TIMEOUT = 20


def pdns_schema():
    needs.require("pdns", group=__file__, what="a test PowerDNS")
    return next(path for path in PDNS_SQLITE_SCHEMAS if os.path.exists(path))


class PdnsServer:
    """A real PowerDNS Authoritative server with its API on, under ``tmpdir``."""

    def __init__(self, tmpdir):
        needs.require("pdns", group=__file__, what="a test PowerDNS")
        self.dir = os.path.join(str(tmpdir), "pdns")
        os.makedirs(self.dir, exist_ok=True)
        self.api_key = secrets.token_hex(16)
        self.dns_port = free_port(udp_too=True)
        self.api_port = free_port()
        self.api_url = "http://{}:{}".format(LOOPBACK, self.api_port)
        self.log_path = os.path.join(self.dir, "pdns.log")
        database = os.path.join(self.dir, "pdns.sqlite3")
        with open(pdns_schema(), encoding="utf-8") as fh, sqlite3.connect(database) as conn:
            conn.executescript(fh.read())
        config = {
            "launch": "gsqlite3",
            "gsqlite3-database": database,
            "local-address": "{}:{}".format(LOOPBACK, self.dns_port),
            "api": "yes",
            "api-key": self.api_key,
            "webserver": "yes",
            "webserver-address": LOOPBACK,
            "webserver-port": self.api_port,
            "webserver-allow-from": LOOPBACK,
            "socket-dir": self.dir,
            "disable-syslog": "yes",
            "loglevel": 4,
        }
        with open(os.path.join(self.dir, "pdns.conf"), "w", encoding="utf-8") as fh:
            fh.writelines("{}={}\n".format(k, v) for k, v in config.items())
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PDNS_SERVER, "--config-dir=" + self.dir, "--daemon=no", "--guardian=no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        url = "{}/api/v1/servers/localhost".format(self.api_url)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "pdns_server exited ({}):\n{}".format(self.process.returncode, self.log())
                )
            try:
                if requests.get(url, headers={"X-API-Key": self.api_key}, timeout=1).status_code == 200:
                    dns_query("ready.invalid.", "SOA", self.dns_port)
                    return
            except (requests.RequestException, OSError, dns.exception.DNSException):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "pdns_server did not answer within {}s:\n{}".format(START_TIMEOUT, self.log())
                )
            time.sleep(0.1)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-4000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _SinkHandler:
    def __init__(self, messages, refuse):
        self.messages = messages
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 <{}>: recipient refused by this test relay".format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # SMTP carries CRLF line ends; a mail reader shows plain lines.
        content = envelope.original_content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        message["X-Envelope-From"] = envelope.mail_from
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self, refuse=False, port=None):
        self.host = LOOPBACK
        self.port = port or free_port()
        self.messages = []
        handler = _SinkHandler(self.messages, refuse)
        self._controller = Controller(handler, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def dns_query(name, rdtype, port, host=LOOPBACK, timeout=2):
    """Ask the DNS server at ``host:port`` (UDP) for ``name``/``rdtype``.

    Returns the matching answer records as text (e.g. ``["10.5.0.2"]``), sorted;
    ``[]`` when the name or the type does not exist.
    """
    name = name if name.endswith(".") else name + "."
    query = dns.message.make_query(name, rdtype)
    reply = dns.query.udp(query, host, port=port, timeout=timeout)
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(
        rdata.to_text()
        for rrset in reply.answer
        if rrset.rdtype == wanted and rrset.name.to_text().lower() == name.lower()
        for rdata in rrset
    )


@pytest.fixture
def pdns_server(tmp_path):
    server = PdnsServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()
