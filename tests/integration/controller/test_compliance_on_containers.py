"""Compliance on a real LXC container made by the controller, through its own minion: the
mode of /etc/motd (0644 as the highstate leaves it) drifts from a rule asking 0600; an audit
reports it and leaves the file as it is, enforce sets it (read back inside the container), a
waiver shows the drift waived until it expires."""

import datetime
import subprocess

import pytest
from sqlalchemy import select

from mc_project.api import users
from mc_project.health import compliance_runs, compliance_store
from mc_project.inventory import db
from mc_project.inventory.compliance_models import ComplianceWaiver
from mc_project.inventory.models import Environment, utcnow

ENV = "comply"
RULE = "motd-private"


@pytest.fixture(scope="module")
def env(salt_run, node1, ctl):
    created = salt_run.run("mc_cloud.init_env", ENV, "dev", "host=node1")
    assert created.returncode == 0, created
    tenant_id = users.ensure_default(ctl.url)  # as corpus-api does when it starts
    with db.session(ctl.url) as sess:
        assert sess.scalar(select(Environment.tenant_id).where(Environment.name == ENV)) == tenant_id
    yield {"tenant_id": tenant_id, "lxc_path": node1["lxc_path"]}
    assert salt_run.run("mc_cloud.destroy_env", ENV).returncode == 0


def mode_inside(env, path):
    """The mode of ``path`` as the container itself shows it."""
    shown = subprocess.run(["lxc-attach", "-n", ENV, "-P", env["lxc_path"], "--", "stat", "-c", "%a", path],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def run(ctl, env, mode):
    result = compliance_runs.run(ctl, compliance_runs.request(ctl, env["tenant_id"], RULE, mode))
    assert result["result"], result
    return status(ctl, env)


def status(ctl, env, now=None):
    with db.session(ctl.url) as sess:
        found = compliance_store.state(sess, [env["tenant_id"]], rule=RULE, now=now)
    assert [item["host"] for item in found] == [ENV]
    return found[0]["status"]


def test_audit_reports_the_drift_enforce_fixes_it_and_a_waiver_hides_it_until_it_ends(env, ctl):
    assert mode_inside(env, "/etc/motd") == "644"
    with db.session(ctl.url) as sess:
        compliance_store.create_rule(sess, env["tenant_id"], RULE, "file", host=ENV,
                                     params={"path": "/etc/motd", "mode": "0600"}, mode="audit")
    assert run(ctl, env, "audit") == "drifted"
    assert mode_inside(env, "/etc/motd") == "644"  # an audit changes nothing

    until = utcnow() + datetime.timedelta(hours=1)
    with db.session(ctl.url) as sess:
        compliance_store.create_waiver(sess, env["tenant_id"], RULE, "ops", "motd is public here", until, host=ENV)
    assert status(ctl, env) == "waived"
    assert status(ctl, env, now=until + datetime.timedelta(seconds=1)) == "drifted"  # once it ended

    with db.session(ctl.url) as sess:  # the waiver ends now: enforce may fix the file
        for waiver in sess.scalars(select(ComplianceWaiver)).all():
            waiver.until = utcnow()
    assert run(ctl, env, "enforce") == "fixed"
    assert mode_inside(env, "/etc/motd") == "600"
    assert run(ctl, env, "audit") == "passed"
