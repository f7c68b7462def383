"""``corpus push``: the checkout's HEAD to the remote the API names, with the environment's
key in a 0600 file for ssh, the deploy's output (git's stderr) streamed, git's exit code."""

import json
import os
import subprocess

import pytest

from mc_project.cli.push import address_instead, ssh_command
from support.api_stub import StubApi, run_corpus

# The remote's hook stands for the deploy: it prints to the pusher, and records how ssh
# would have been run and the key file's mode while the push runs.
HOOK = """#!/bin/sh
echo "deploy: building release" >&2
printf '%s\\n' "$GIT_SSH_COMMAND" > "$RECORD"
key=$(printf '%s' "$GIT_SSH_COMMAND" | sed -n 's/^ssh -i \\([^ ]*\\) .*/\\1/p')
stat -c %a "$key" >> "$RECORD"
head -1 "$key" >> "$RECORD"
if [ -e "$FAIL_FLAG" ]; then echo "deploy: build failed, rolled back" >&2; exit 1; fi
echo "deploy: release is live" >&2
"""


@pytest.fixture(scope="module")
def api():
    with StubApi() as stub:
        yield stub


@pytest.fixture
def setup(tmp_path, api):
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    env = f"push{len(api.state.envs)}"
    api.state.remote_of[(env, "myapp")] = str(bare)
    api.state.add_env(env, "dev", project="myapp")
    checkout = tmp_path / "myapp"
    checkout.mkdir()
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(git[:3] + ["init", "-q", "-b", "work"], check=True)
    (checkout / "app.py").write_text("print('hi')\n")
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "first"], check=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".makinastates.conf").write_text(f"[corpus]\nurl = {api.url}\ntoken = {api.token_for()}\n")
    record = tmp_path / "record"
    extra = {"RECORD": str(record), "FAIL_FLAG": str(tmp_path / "fail")}
    return {"env": env, "bare": bare, "checkout": checkout, "home": home, "record": record, "extra": extra,
            "tmp": tmp_path}


def head(path, ref="HEAD"):
    command = ["git", "-C", str(path), "rev-parse", "-q", "--verify", ref]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def test_push_deploys_head_to_main(setup):
    result = run_corpus(["push", setup["env"]], setup["home"], env=setup["extra"], cwd=setup["checkout"])
    assert result.returncode == 0, result.stderr
    assert "deploy: building release" in result.stderr and "deploy: release is live" in result.stderr
    assert f"Deployed {setup['env']}/myapp." in result.stdout
    assert head(setup["bare"], "refs/heads/main") == head(setup["checkout"])
    ssh, mode, first_key_line = setup["record"].read_text().splitlines()
    assert ssh.startswith("ssh -i ") and "-o IdentitiesOnly=yes" in ssh
    assert "-o StrictHostKeyChecking=accept-new" in ssh
    assert f"UserKnownHostsFile={setup['home']}/.config/corpus/known_hosts" in ssh
    assert mode == "600" and first_key_line == "-----BEGIN OPENSSH PRIVATE KEY-----"
    key_file = ssh.split()[2]
    assert not os.path.exists(key_file)  # gone after the push


def test_a_failed_deploy_is_gits_exit_code(setup):
    (setup["tmp"] / "fail").touch()
    result = run_corpus(["push", setup["env"], "--json"], setup["home"], env=setup["extra"], cwd=setup["checkout"])
    assert result.returncode == 1
    assert "deploy: build failed, rolled back" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 1
    assert head(setup["bare"], "refs/heads/main") == ""


def test_default_env_branch_and_project(setup):
    conf = setup["home"] / ".makinastates.conf"
    conf.write_text(conf.read_text() + f"env = {setup['env']}\n")
    result = run_corpus(["push", "--branch", "staging"], setup["home"], env=setup["extra"], cwd=setup["checkout"])
    assert result.returncode == 0, result.stderr
    assert head(setup["bare"], "refs/heads/staging") == head(setup["checkout"])


def test_unknown_project_says_init(setup):
    result = run_corpus(["push", setup["env"], "--project", "other"], setup["home"], cwd=setup["checkout"])
    assert result.returncode == 2
    assert f"corpus init other --env {setup['env']}" in result.stderr
    assert "Traceback" not in result.stderr


def test_outside_a_checkout(setup):
    result = run_corpus(["push", setup["env"]], setup["home"], cwd=setup["home"])
    assert result.returncode == 2 and "is not a git checkout" in result.stderr


def test_a_remote_whose_name_does_not_resolve_goes_through_the_nodes_address():
    remote = "ssh://root@web.corpus.test:40001/srv/projects/shop/git/project.git"
    assert address_instead(remote, "192.0.2.1:40001", resolve=lambda host: False) == "192.0.2.1"
    assert address_instead(remote, "192.0.2.1:40001", resolve=lambda host: True) is None
    assert address_instead(remote, "192.0.2.1:40002", resolve=lambda host: False) is None  # another port
    assert address_instead("/srv/git/project.git", "192.0.2.1:40001", resolve=lambda host: False) is None
    assert address_instead(remote, None, resolve=lambda host: False) is None
    assert ssh_command("/k", "/kh", "192.0.2.1").endswith("-o UserKnownHostsFile=/kh -o HostName=192.0.2.1")
