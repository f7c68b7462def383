"""Detectors through a real salt-master, minion and corpus-api: the rules reach the host's
minion in its pillar, ``corpus detectors run`` writes the groups it found to the
inventory (and so to the Ansible export and a Salt target), a highstate runs them
again, and the minion's own schedule keeps them current."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from support.wait import wait_for

BIN = os.path.dirname(sys.executable)


@pytest.fixture
def detected_host(master, corpus_cli):
    """Host detect-<tag> with its minion (made after the host: its first pillar has the schedule)."""
    tag = uuid.uuid4().hex[:6]
    name = "detect-" + tag
    minion = master.salt_minion_daemon("corpus-inv-detect-" + tag)
    corpus_cli("inventory", "add", "host", name, "--minion", minion.id)
    with minion.started():
        yield name, minion


def groups_of(corpus_cli, name):
    state = json.loads(corpus_cli("--json", "detectors", "state").stdout)
    return next(item["groups"] for item in state["items"] if item["host"] == name)


def test_detectors_put_a_real_hosts_minion_in_groups(master, detected_host, detect_marker, corpus_cli, cli_env):
    name, minion = detected_host
    interval = master.config["corpus_detectors"]["interval"]
    if os.path.exists(detect_marker):
        os.unlink(detect_marker)
    listed = json.loads(corpus_cli("--json", "detectors", "list").stdout)
    assert [rule["name"] for rule in listed["items"]] == ["linux", "marked"]
    pillar = minion.salt_call_cli(timeout=120).run("pillar.raw", "key=schedule")
    assert pillar.returncode == 0, pillar
    assert pillar.data["corpus_detectors"]["seconds"] == interval

    ran = json.loads(corpus_cli("--json", "detectors", "run", name).stdout)
    assert ran["items"][0]["status"] == "done", ran
    assert ran["items"][0]["groups"] == ["linux"] and ran["items"][0]["detectors"]["marked"]["matched"] is False
    assert groups_of(corpus_cli, name) == ["linux"]
    host = json.loads(corpus_cli("--json", "inventory", "show", "host", name).stdout)
    assert "linux" in host["groups"] and "detected:linux" in host["labels"]

    # The group is an Ansible group and a Salt target (the inventory's list, and the grain).
    export = json.loads(subprocess.run([os.path.join(BIN, "corpus-inventory"), "--list"], env=cli_env,
                                       capture_output=True, text=True, timeout=60, check=True).stdout)
    assert name in export["linux"]["hosts"]
    # The grain target is matched on the master's grains cache: a minion an earlier test of
    # this package stopped may still be listed there, and not answer (exit 1); this host does.
    pinged = master.salt_cli(timeout=60).run("-C", "test.ping", minion_tgt="G@corpus_detected_groups:linux")
    # (one JSON document per minion then: this host's is looked for in the output)
    assert '"{}": true'.format(minion.id) in pinged.stdout, pinged

    # A highstate's return makes the controller run the detectors on that minion.
    with open(detect_marker, "w", encoding="utf-8") as fh:
        fh.write("here\n")
    master.salt_cli(timeout=120).run("state.highstate", minion_tgt=minion.id)
    wait_for(lambda: groups_of(corpus_cli, name) == ["linux", "marked"], timeout=60,
             what="the highstate's detectors to add group marked", interval=1)

    # The minion's schedule takes the group back once the marker is gone, with no call.
    os.unlink(detect_marker)
    wait_for(lambda: groups_of(corpus_cli, name) == ["linux"], timeout=6 * interval,
             what="the scheduled detectors to remove group marked", interval=1)
    bad = corpus_cli("detectors", "run", "no-such-host", check=False)
    assert bad.returncode != 0 and "No host named no-such-host with a minion" in bad.stderr
