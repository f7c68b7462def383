"""Compliance through the real ``corpus`` command, ``corpus-api``, a salt-master and a
salt-minion (pytest-salt-factories): a file whose mode drifted is reported drifted by an
audit (Salt's test=True: its mode on disk unchanged) and a webhook is told once; an
enforce fixes it on disk; a waiver that expires a few seconds later shows the drift
waived (``corpus compliance state`` exits 0) until it expires, then drifted again."""

import datetime
import json
import os
import stat
import time
import uuid

import pytest

from support.wait import wait_for
from support.webhook import WebhookSink

# The waiver outlives the audit run it covers (a few seconds on a busy machine), then expires.
WAIVER_SECONDS = 40
QUIET = 2  # seconds in which a second notification would have come


@pytest.fixture
def minion(master):
    minion = master.salt_minion_daemon("corpus-comply-" + uuid.uuid4().hex[:6])
    with minion.started():
        yield minion


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def state_of(corpus_cli, rule):
    """``(exit code, {host: status})`` of ``corpus compliance state --rule RULE``."""
    result = corpus_cli("--json", "compliance", "state", "--rule", rule, check=False)
    document = json.loads(result.stdout)
    return result.returncode, {item["host"]: item["status"] for item in document["items"]}


def test_an_audit_reports_a_drifted_mode_enforce_fixes_it_and_a_waiver_hides_it_until_it_expires(
        minion, corpus_cli, tmp_path):
    tag = minion.id[-6:]
    group, host, rule = "comply-" + tag, "comply-a-" + tag, "conf-mode-" + tag
    conf = tmp_path / "app.conf"
    conf.write_text("secret = 1\n")
    os.chmod(conf, 0o644)
    corpus_cli("inventory", "add", "group", group)
    corpus_cli("inventory", "add", "host", host, "--minion", minion.id, "--group", group)
    with WebhookSink() as hook:
        corpus_cli("handlers", "add", "comply-hook-" + tag, "--webhook", hook.url("/hooks/C0/" + tag),
                   "--group", group)
        corpus_cli("compliance", "rules", "add", rule, "--kind", "file", "--group", group,
                   "--param", "path={}".format(conf), "--param", "mode=0600", "--impact", "0.9")
        bad = corpus_cli("compliance", "rules", "add", "bad-" + tag, "--kind", "file", "--group", group,
                         "--param", "path=relative", "--param", "mode=0600", check=False)
        assert bad.returncode == 2 and bad.stderr.strip() == "corpus: params.path is an absolute path; got 'relative'."

        # The audit (the rule's own mode): drift reported, the file untouched, the webhook told once.
        audit = corpus_cli("compliance", "run", "--rule", rule)
        shown = [line.strip() for line in (audit.stdout + audit.stderr).splitlines()]
        assert "{} changed: rule {}".format(host, rule) in shown, shown
        assert "Recap:" in shown
        assert mode_of(conf) == 0o644
        code, states = state_of(corpus_cli, rule)
        assert (code, states) == (1, {host: "drifted"})
        wait_for(lambda: hook.posts, timeout=30, what="the webhook to be told of the drift")
        time.sleep(QUIET)
        [(path, body)] = hook.posts
        assert path == "/hooks/C0/" + tag
        assert body["text"].startswith("drifted: check compliance/{} on host {}".format(rule, host))

        # Enforce: fixed on disk, the state says so, compliant.
        corpus_cli("compliance", "run", "--rule", rule, "--enforce")
        assert mode_of(conf) == 0o600
        assert state_of(corpus_cli, rule) == (0, {host: "fixed"})

        # Drifted again, but waived for a while: waived, compliant, nobody told.
        os.chmod(conf, 0o644)
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=WAIVER_SECONDS)
        corpus_cli("compliance", "waive", rule, "--host", host, "--reason", "the vendor's agent reads it",
                   "--until", until.isoformat())
        corpus_cli("compliance", "run", "--rule", rule)
        assert mode_of(conf) == 0o644
        assert state_of(corpus_cli, rule) == (0, {host: "waived"})
        shown = " ".join(corpus_cli("compliance", "state", "--rule", rule).stdout.split())  # the table wraps
        assert "the vendor's agent reads it" in shown
        assert len(hook.posts) == 1

        # The waiver expired: the drift shows again, without another run.
        wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) > until, timeout=WAIVER_SECONDS + 5,
                 what="the waiver to expire")
        assert state_of(corpus_cli, rule) == (1, {host: "drifted"})
        statuses = [item["status"] for item in json.loads(corpus_cli(
            "--json", "compliance", "history", "--rule", rule).stdout)["items"]]
        assert statuses == ["waived", "fixed", "drifted"]
