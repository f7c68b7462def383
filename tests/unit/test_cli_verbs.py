"""The corpus command's verbs against a stand-in of the REST API (tests/support/api_stub.py):
exit codes, --json documents, one-sentence errors, a job's steps as they happen."""

import json
import os
import signal
import subprocess
import sys

import pytest

from support.api_stub import INIT_ENV_STEPS, StubApi, run_corpus
from support.wait import read_lines_until


@pytest.fixture(scope="module")
def api():
    with StubApi() as stub:
        stub.state.add_env("web", "dev", project="shop")
        yield stub


@pytest.fixture
def home(tmp_path, api):
    token = api.token_for("alice")
    (tmp_path / ".makinastates.conf").write_text(f"[corpus]\nurl = {api.url}\nuser = alice\nenv = web\n"
                                                 f"token = {token}\n")
    return tmp_path


def corpus(home, *args, **kwargs):
    return run_corpus(list(args), home, **kwargs)


def one_sentence(result):
    text = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(text.splitlines()) == 1, text
    assert text.startswith("corpus: ") and text.endswith(".")
    return text[len("corpus: "):]


def test_listhosts(home):
    result = corpus(home, "listhosts")
    assert result.returncode == 0, result.stderr
    assert "node1" in result.stdout and "FREE SLOTS" in result.stdout
    page = json.loads(corpus(home, "listhosts", "--json").stdout)
    assert page["total"] == 1 and page["items"][0]["name"] == "node1"


def test_status_json_and_default_env(home):
    result = corpus(home, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "web"
    text = corpus(home, "status", "web").stdout
    assert "ssh" in text and "192.0.2.10:40001" in text


def test_init_env_follows_the_job_step_by_step(home, api):
    result = corpus(home, "init_env", "blog", "staging", "--disk", "1.5G")
    assert result.returncode == 0, result.stderr
    for step in INIT_ENV_STEPS:
        assert f"step {step} running" in result.stdout
        assert f"step {step} success" in result.stdout
    assert result.stdout.index("step env:register success") < result.stdout.index("step env:activate running")
    assert "Environment blog is ready" in result.stdout
    assert api.state.envs["blog"]["disk_size_mb"] == 1536
    assert api.state.envs["blog"]["status"] == "active"


def test_init_env_json(home):
    result = corpus(home, "--json", "init_env", "shop2", "prod", "--project", "shop")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)
    assert final["status"] == "success" and final["result"]["name"] == "shop2"
    assert "step env:activate success" in result.stderr  # progress goes to stderr with --json


def test_a_failing_job_is_exit_1_with_its_reason(home):
    result = corpus(home, "init_env", "failing", "dev")
    assert result.returncode == 1
    assert "step lxc:clone failed" in result.stdout
    assert "step ip:allocate undone" in result.stdout
    assert "No space left on device" in result.stdout  # the failed step's log
    message = one_sentence(result)
    assert message.startswith("Job ") and message.endswith("failed: Step lxc:clone failed: No space left on device.")
    as_json = json.loads(corpus(home, "init_env", "failing2", "dev", "--json").stdout)
    assert as_json["status"] == "failed" and as_json["error"]["exit_code"] == 1


def test_no_wait_prints_the_job(home, api):
    result = corpus(home, "init_env", "later", "dev", "--no-wait", "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert started["location"] == f"/v1/jobs/{started['job_id']}"
    followed = corpus(home, "job", started["job_id"], "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "step env:activate success" in followed.stdout  # the whole stream, from its start
    shown = json.loads(corpus(home, "job", started["job_id"], "--json").stdout)
    assert shown["status"] == "success" and [s["name"] for s in shown["steps"]] == INIT_ENV_STEPS


@pytest.mark.parametrize("args, code, words", [
    (["init_env", "web", "dev"], 2, "exists already"),
    (["init_env", "x", "qa"], 2, "'qa' is not one of"),
    (["status", "nowhere"], 2, "No environment nowhere"),
    (["enlarge", "web", "ten"], 2, "Bad size 'ten'"),
    (["enlarge", "web", "1G"], 2, "enlarge grows it"),
    (["job", "999"], 2, "No job 999"),
    (["frobnicate"], 2, "No such command"),
    (["rollback", "web/shop", "nope"], 2, "No release nope"),
    (["status", "../nodes"], 2, "Bad environment name '../nodes'"),
    (["releases", "web/a b"], 2, "Bad project name 'a b'"),
    (["job", "1/../2"], 2, "Bad job id '1/../2'"),
    (["init_env", "Bad_Name", "dev"], 2, "Bad environment name 'Bad_Name'"),
])
def test_bad_input_is_exit_2(home, args, code, words):
    result = corpus(home, *args)
    assert result.returncode == code, result.stderr
    assert words in one_sentence(result)


def test_not_allowed_is_exit_3(home, api):
    viewer = api.token_for("val")
    result = corpus(home, "init_env", "nope", "dev", "--token", viewer)
    assert result.returncode == 3
    assert "may not change" in one_sentence(result)
    expired = corpus(home, "status", "--token", "expired", "--json")
    assert expired.returncode == 3
    assert json.loads(expired.stdout)["error"] == {
        "status": 401, "exit_code": 3, "message": "The token has expired (run corpus login)."}
    assert corpus(home, "whoami", env={"CORPUS_TOKEN": ""}).returncode == 0  # the file's token
    (home / ".makinastates.conf").write_text(f"[corpus]\nurl = {api.url}\n")
    assert "Not logged in" in one_sentence(corpus(home, "whoami"))


def test_unreachable_controller_is_exit_1(home):
    result = corpus(home, "listhosts", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert one_sentence(result).startswith("Cannot reach the controller at http://127.0.0.1:9: ")


def test_enlarge_and_trim(home, api):
    api.state.add_env("grow", "dev")
    result = corpus(home, "enlarge", "grow", "20G")
    assert result.returncode == 0, result.stderr
    assert "step lxc:resize success" in result.stdout and "enlarged to 20480 MiB" in result.stdout
    assert api.state.envs["grow"]["disk_size_mb"] == 20480
    assert corpus(home, "trim", "grow", "512M").returncode == 0
    assert api.state.envs["grow"]["disk_size_mb"] == 512
    assert ("POST", "/v1/environments/grow/resize", f"Bearer {home_token(home)}",
            {"size_mb": 512, "grow": False}) in api.state.requests


def home_token(home):
    for line in (home / ".makinastates.conf").read_text().splitlines():
        if line.startswith("token = "):
            return line[len("token = "):]


def test_credentials(home, tmp_path):
    result = corpus(home, "credentials", "web")
    assert result.returncode == 0, result.stderr
    assert "r00t-pw" in result.stdout and "BEGIN OPENSSH PRIVATE KEY" in result.stdout
    key = tmp_path / "web.key"
    assert corpus(home, "credentials", "web", "--key-file", str(key)).returncode == 0
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_text().endswith("-----\n")
    assert json.loads(corpus(home, "credentials", "--json").stdout)["root_password"] == "r00t-pw"


def test_destroy_needs_yes_without_a_terminal(home, api):
    api.state.add_env("gone", "dev")
    refused = corpus(home, "destroy", "gone")
    assert refused.returncode == 2 and "--yes" in one_sentence(refused)
    assert "gone" in api.state.envs
    result = corpus(home, "destroy", "gone", "--yes")
    assert result.returncode == 0, result.stderr
    assert "step lxc:destroy success" in result.stdout and "gone" not in api.state.envs


def test_releases_and_rollback(home, api):
    result = corpus(home, "releases", "web/shop")
    assert result.returncode == 0, result.stderr
    assert "20260101-000001" in result.stdout and "LIVE" in result.stdout
    # NAME alone means the environment's project.
    assert json.loads(corpus(home, "releases", "web", "--json").stdout)["total"] == 2
    rolled = corpus(home, "rollback", "web/shop")
    assert rolled.returncode == 0, rolled.stderr
    assert "web/shop rolled back: 20260101-000001 is live." in rolled.stdout
    again = corpus(home, "rollback", "web/shop", "20260101-000002", "--json")
    assert rolled.stdout.index("step project:rollback success") < rolled.stdout.index("rolled back")
    assert json.loads(again.stdout)["result"]["release"] == "20260101-000002"  # the rollback job's result


def interruptible():
    """Ctrl-C as a terminal gives it: a pytest-xdist worker ignores SIGINT, and a child
    inherits that (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_logs_and_follow(home, api):
    result = corpus(home, "logs", "web/shop", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lines"][:2] == ["shop: started", "shop: listening on 8080"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CORPUS_")}
    environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    follower = subprocess.Popen([sys.executable, "-m", "mc_project.cli", "logs", "web/shop", "-f", "-n", "3"],
                                env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=interruptible)
    shown = read_lines_until(follower, lambda lines: sum(line.startswith("shop: request ") for line in lines) >= 3,
                             what="three polls' lines")
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=10)
    lines = "".join(shown + [out]).splitlines()
    requests = [line for line in lines if line.startswith("shop: request ")]
    # Each poll's new line is printed once, in order, none twice.
    assert len(requests) >= 3 and len(set(requests)) == len(requests)
    numbers = [int(line.rsplit(" ", 1)[1]) for line in requests]
    assert numbers == sorted(numbers)
    assert follower.returncode == 130 and "Traceback" not in err


def test_init_adds_the_git_remote(home, api, tmp_path):
    checkout = tmp_path / "myapp"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    result = corpus(home, "init", "myapp", "--env", "web", "--json", cwd=checkout)
    assert result.returncode == 0, result.stderr
    assert "step project:init success" in result.stderr and "Project myapp created in web" in result.stderr
    assert json.loads(result.stdout)["git_remote"] == "added"  # one document
    remote = subprocess.run(["git", "remote", "get-url", "corpus-web"], cwd=checkout, capture_output=True,
                            text=True).stdout.strip()
    assert remote == "ssh://root@192.0.2.10:40001/srv/projects/myapp/git/project.git"
    # Again: the project exists, the remote is set again.
    again = corpus(home, "init", "myapp", "--env", "web", "--json", cwd=checkout)
    assert again.returncode == 0 and json.loads(again.stdout)["git_remote"] == "updated"
    outside = tmp_path / "plain"
    outside.mkdir()
    result = corpus(home, "init", "other", "--env", "web", cwd=outside)
    assert result.returncode == 0, result.stderr
    assert "is not a git checkout" in result.stdout and "git remote add corpus-web ssh://" in result.stdout


def test_jobs_undo_resume(home, api):
    # Its own jobs: one that succeeds, one that fails (not those of the tests before it).
    assert corpus(home, "init_env", "undoable", "dev").returncode == 0
    assert corpus(home, "init_env", "failing-to-resume", "dev").returncode == 1
    listed = json.loads(corpus(home, "jobs", "--json", "--kind", "init_env", "--status", "failed").stdout)
    assert listed["items"] and all(job["status"] == "failed" for job in listed["items"])
    table = corpus(home, "jobs")
    assert table.returncode == 0 and "init_env" in table.stdout and "KIND" in table.stdout
    done_job = next(job for job in api.state.jobs.values() if job["kind"] == "init_env" and job["status"] == "success")
    undone = corpus(home, "undo", done_job["id"])
    assert undone.returncode == 0, undone.stderr
    assert "step undo env:activate success" in undone.stdout
    refused = corpus(home, "resume", done_job["id"])
    assert refused.returncode == 2 and "done already" in one_sentence(refused)
    failed = next(job for job in api.state.jobs.values() if job["status"] == "failed")
    resumed = corpus(home, "resume", failed["id"], "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["status"] == "success"


def test_ctrl_c_while_following_says_the_job_goes_on(home, api):
    api.state.step_delay = 2.0
    try:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CORPUS_")}
        environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
        watcher = subprocess.Popen([sys.executable, "-m", "mc_project.cli", "init_env", "slow", "dev"],
                                   env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=interruptible)
        shown = read_lines_until(watcher, lambda lines: "step env:register success" in lines[-1],
                                 what="the first step's success")
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=10)
        out = "".join(shown) + out
    finally:
        api.state.step_delay = 0.05
    assert watcher.returncode == 130
    assert "step env:register success" in out
    job_id = next(job["id"] for job in api.state.jobs.values() if job["target"] == "slow")
    assert err.strip() == (f"corpus: Stopped watching job {job_id}, which goes on: corpus job {job_id} --follow "
                           "watches it again.")


def test_destroy_forgets_the_host_key(home, api):
    api.state.add_env("again", "dev")
    known_hosts = home / ".config" / "corpus" / "known_hosts"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    line = "[192.0.2.10]:40001 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known_hosts.write_text(line + "\n[192.0.2.11]:40002 " + line.split(" ", 1)[1] + "\n")
    result = corpus(home, "destroy", "again", "--yes")
    assert result.returncode == 0, result.stderr
    if subprocess.run(["which", "ssh-keygen"], capture_output=True).returncode == 0:
        assert known_hosts.read_text().splitlines() == ["[192.0.2.11]:40002 " + line.split(" ", 1)[1]]
