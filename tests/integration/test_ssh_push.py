"""``git push`` over ``ssh://`` to a real sshd deploys, streams, and fails like a local push.

The hook runs as the ssh user with the small environment sshd gives a session (no
venv on PATH, no TMPDIR), so this also checks the hook finds salt-call and its
configuration from ``corpus.conf`` alone.
"""

import getpass
import os

import pytest

from support import git, needs
from support.git import head

pytestmark = pytest.mark.needs("sshd")


@pytest.fixture(scope="module")
def sshd(salt_factories):
    if os.geteuid() == 0:
        # sshd refuses to start without its privilege separation directory, which
        # only the service's init script creates.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    daemon = salt_factories.get_sshd_daemon(
        script_name=needs.command("sshd"),
        # The key files live under the world-writable TMPDIR, which StrictModes rejects.
        sshd_config_dict={"StrictModes": "no", "PermitUserEnvironment": "no"})
    with daemon.started():
        yield daemon


@pytest.fixture
def ssh_push(sshd):
    """``ssh_push(src, repo_path)``: git push over ssh://user@127.0.0.1:port/ABS/PATH."""
    user = getpass.getuser()
    ssh_cmd = ("ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o BatchMode=yes -o LogLevel=ERROR".format(sshd.client_key, sshd.listen_port))

    def push(src, repo, refspec="HEAD:main"):
        url = "ssh://{}@127.0.0.1:{}{}".format(user, sshd.listen_port, repo)
        return git.push(src, url, refspec, env={"GIT_SSH_COMMAND": ssh_cmd})

    return push


def test_push_over_ssh_deploys_and_streams_phases(corpus, ssh_push):
    paths = corpus.init("sshapp")
    src = corpus.source("wsgi-app", name="sshapp")
    proc = ssh_push(src, paths["project_git"])
    assert proc.returncode == 0, proc.stderr
    # the phases' progress came back through ssh as git's "remote:" lines
    for phase in ("backup", "build", "deploy", "post_deploy"):
        assert "remote: -----> {}".format(phase) in proc.stderr
    assert "sshapp is live" in proc.stderr
    status, body = corpus.get("sshapp")
    assert status == 200 and '"version": "1"' in body
    record = corpus.history("sshapp")[-1]
    assert record["status"] == "success" and record["commit"] == head(src)
    assert "from 127.0.0.1" in record["who"]  # the pusher came through sshd

    # A second push over ssh updates the app in place.
    new = corpus.commit(src, {"VERSION": "2\n"}, "v2")
    proc = ssh_push(src, paths["project_git"])
    assert proc.returncode == 0, proc.stderr
    assert '"version": "2"' in corpus.get("sshapp")[1]
    assert head(paths["project_git"], "refs/heads/main") == new


def test_failing_deploy_over_ssh_fails_the_push(corpus, ssh_push):
    paths = corpus.init("sshfail", env="staging")
    src = corpus.source("wsgi-app", name="sshfail")
    first = ssh_push(src, paths["project_git"])
    assert first.returncode == 0, first.stderr
    good = head(src)
    live = os.path.realpath(paths["current"])

    corpus.commit(src, {".salt/build.sls": "sshfail-broken-build:\n  cmd.run:\n    - name: exit 3\n",
                        "VERSION": "2\n"}, "broken build")
    proc = ssh_push(src, paths["project_git"])
    assert proc.returncode != 0, proc.stderr
    assert "remote: -----> build" in proc.stderr
    assert "rolled back" in proc.stderr
    assert "pre-receive hook declined" in proc.stderr
    # nothing changed: branch, live release, app
    assert head(paths["project_git"], "refs/heads/main") == good
    assert os.path.realpath(paths["current"]) == live
    status, body = corpus.get("sshfail")
    assert status == 200 and '"version": "1"' in body
    assert corpus.history("sshfail")[-1]["status"] == "failed"
