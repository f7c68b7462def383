"""Runs on the inventory through the real ``corpus`` command, the API and a real controller:
a Salt state applied to a group's minions (a dry run first, changing nothing), and a
playbook run by ansible-runner on two network-namespace hosts over SSH (``--check``
first). Each shows a line per host event as it happens and a summary per host; a host
without a minion, or without an address, is reported unreachable, not a crash."""

import json
import time
import uuid

import httpx
import pytest

from support.netns import NetnsHost

PAUSE_SECONDS = 2
SLOW_SECONDS = 6

# Every minion pauses a moment (the event stream is connected by then); the slow one pauses
# longer, so that the fast one's results are seen while the job still runs. The pause
# changes nothing (a stateful command that says so); in a dry run it would run: "changed".
SLS = """
marker:
  file.managed:
    - name: {out}/{{{{ grains['id'] }}}}.txt
    - contents: applied by corpus run
    - makedirs: true
checked:
  test.succeed_without_changes: []
pause:
  cmd.run:
    - name: sleep {{{{ {slow_pause} if grains['id'] == '{slow}' else {pause} }}}}; echo changed=no
    - stateful: true
    - require:
      - file: marker
"""

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: write a marker
      copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
        content: "played on {{ inventory_hostname }}\\n"
    - name: answer
      ping:
"""


def lines_of(result):
    return [line.strip() for line in (result.stdout + result.stderr).splitlines()]


def recap_row(result, host):
    """``[status, ok, changed, failed, unreachable, skipped]`` of ``host`` in the recap."""
    rows = [line.split() for line in lines_of(result) if line.split()[:1] == [host] and len(line.split()) == 7]
    assert rows, result.stdout + result.stderr
    return rows[-1][1:2] + [int(count) for count in rows[-1][2:]]


def token_in(cli_env):
    """The API token of the ``corpus`` command's configuration (ada's)."""
    with open(cli_env["CORPUS_CONFIG"], encoding="utf-8") as fh:
        return next(line.split("=", 1)[1].strip() for line in fh if line.startswith("token"))


def sse_frames(api, token, job_id):
    """``[(seconds since the stream began, event, data)]`` of a job's event stream."""
    frames, event, began = [], None, time.monotonic()
    with httpx.stream("GET", "{}/v1/jobs/{}/events".format(api, job_id), timeout=httpx.Timeout(30, read=None),
                      headers={"Authorization": "Bearer " + token}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                frames.append((time.monotonic() - began, event, json.loads(line[len("data: "):])))
                if event == "end":
                    break
    return frames


@pytest.fixture
def minions(master):
    tag = uuid.uuid4().hex[:6]
    first = master.salt_minion_daemon("corpus-run-a-" + tag)
    second = master.salt_minion_daemon("corpus-run-b-" + tag)
    with first.started(), second.started():
        yield first, second


def test_a_state_runs_on_a_groups_minions_with_per_host_events_and_a_summary(
        master, minions, corpus_cli, cli_env, api, tmp_path):
    first, second = minions
    tag = first.id[-6:]
    group = "runweb-" + tag
    out = tmp_path / "applied"
    corpus_cli("inventory", "add", "group", group)
    corpus_cli("inventory", "add", "host", "run-a-" + tag, "--minion", first.id, "--group", group,
               "--label", "salted=" + tag)
    corpus_cli("inventory", "add", "host", "run-b-" + tag, "--minion", second.id, "--group", group,
               "--label", "salted=" + tag)
    corpus_cli("inventory", "add", "host", "run-c-" + tag, "--group", group)  # no minion
    sls_name = "corpus_run_" + tag
    sls = SLS.format(out=out, slow=second.id, pause=PAUSE_SECONDS, slow_pause=PAUSE_SECONDS + SLOW_SECONDS)
    with master.state_tree.base.temp_file(sls_name + ".sls", sls):
        # The dry run: every host reported, the one without a minion unreachable, nothing written.
        dry = corpus_cli("run", group, "state.apply", sls_name, "test=True", check=False)
        assert dry.returncode == 1, dry.stdout + dry.stderr
        shown = lines_of(dry)
        assert "run-a-{} changed: marker: file.managed".format(tag) in shown
        assert "run-a-{} ok: checked: test.succeed_without_changes".format(tag) in shown
        assert any(line.startswith("run-c-{} unreachable -- it has no minion".format(tag)) for line in shown), shown
        assert "Recap (dry run: nothing was changed):" in shown
        assert "run-a-{} changed: pause: cmd.run".format(tag) in shown
        assert recap_row(dry, "run-a-" + tag) == ["changed", 1, 2, 0, 0, 0]
        assert recap_row(dry, "run-c-" + tag) == ["unreachable", 0, 0, 0, 1, 0]
        assert dry.stderr.strip().endswith("state.apply (test=True) failed on 1 of 3 hosts: run-c-{} "
                                           "(unreachable).".format(tag))
        assert not out.exists()

        # The real run on the label: started without waiting, watched over the API's event stream.
        started = json.loads(corpus_cli("--json", "run", "salted=" + tag, "state.apply", sls_name,
                                        "--no-wait").stdout)
        frames = sse_frames(api, token_in(cli_env), started["job_id"])
        hosts = [(seconds, data) for seconds, event, data in frames if event == "host"]
        end_seconds, _event, end = frames[-1]
        assert end["status"] == "success", end
        assert [data["seq"] for _seconds, data in hosts] == sorted(data["seq"] for _seconds, data in hosts)
        fast = [seconds for seconds, data in hosts if data["host"] == "run-a-" + tag]
        # The fast minion's results arrive while the slow one still sleeps: as they happen, not at the end.
        assert fast and end_seconds - max(fast) > SLOW_SECONDS / 2, frames
        for host in ("run-a-" + tag, "run-b-" + tag):
            assert end["result"]["hosts"][host] == {"ok": 2, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 0,
                                                    "status": "changed"}
        assert (out / (first.id + ".txt")).read_text() == "applied by corpus run\n"
        assert (out / (second.id + ".txt")).exists()

        # Applied again (the SLS is still there): nothing left to change.
        again = corpus_cli("run", "group:" + group, "state.apply", sls_name, "--tenant", "default", check=False)
        assert again.returncode == 1  # run-c still has no minion
        assert recap_row(again, "run-a-" + tag) == ["ok", 3, 0, 0, 0, 0]


@pytest.fixture
def two_hosts(tmp_path):
    tag = uuid.uuid4().hex[:4]
    first = NetnsHost("runa-" + tag, "10.95.0.1/24", "10.95.0.2/24", workdir=tmp_path / "a")
    try:
        second = NetnsHost("runb-" + tag, "10.96.0.1/24", "10.96.0.2/24", workdir=tmp_path / "b")
    except BaseException:
        first.close()
        raise
    try:
        yield first, second
    finally:
        second.close()
        first.close()


@pytest.mark.needs("root", "ip", "sshd")
def test_a_playbook_runs_on_two_hosts_with_per_host_events_and_check_changes_nothing(
        two_hosts, corpus_cli, tmp_path):
    first, second = two_hosts
    tag = uuid.uuid4().hex[:4]
    group = "runlab-" + tag
    out_dir = tmp_path / "played"
    out_dir.mkdir()
    corpus_cli("inventory", "add", "group", group)
    for name, host in (("play-a-" + tag, first), ("play-b-" + tag, second)):
        corpus_cli("inventory", "add", "host", name, "--address", host.address, "--user", "root", "--group", group,
                   "--label", "played=" + tag)
        corpus_cli("inventory", "set", "host", name, "ansible_ssh_private_key_file=" + host.key_path)
    corpus_cli("inventory", "add", "host", "play-c-" + tag, "--group", group)  # no address
    corpus_cli("inventory", "set", "group", group, "out_dir=" + str(out_dir),
               "ansible_python_interpreter=/usr/bin/python3")
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)

    dry = corpus_cli("playbook", group, str(playbook), "--check", check=False)
    assert dry.returncode == 1, dry.stdout + dry.stderr
    shown = lines_of(dry)
    for name in ("play-a-" + tag, "play-b-" + tag):
        assert "{} changed: write a marker".format(name) in shown, shown
        assert "{} ok: answer".format(name) in shown
        assert recap_row(dry, name) == ["changed", 1, 1, 0, 0, 0]
    assert recap_row(dry, "play-c-" + tag) == ["unreachable", 0, 0, 0, 1, 0]
    assert "Recap (dry run: nothing was changed):" in shown
    assert list(out_dir.iterdir()) == []

    played = corpus_cli("--json", "playbook", "played=" + tag, str(playbook))
    result = json.loads(played.stdout)
    assert result["status"] == "success"
    assert set(result["result"]["hosts"]) == {"play-a-" + tag, "play-b-" + tag}
    for name in ("play-a-" + tag, "play-b-" + tag):
        assert result["result"]["hosts"][name]["status"] == "changed"
        assert (out_dir / (name + ".txt")).read_text() == "played on {}\n".format(name)
    assert "{} changed: write a marker".format("play-a-" + tag) in lines_of(played)  # stderr, beside the JSON

    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks:\n    - no_such_module_here: {}\n")
    refused = corpus_cli("playbook", "played=" + tag, str(broken), check=False)
    assert refused.returncode == 1
    assert "ansible-playbook failed before any host ran: couldn't resolve module/action 'no_such_module_here'" \
        in refused.stderr

    missing = corpus_cli("playbook", group, str(tmp_path / "nope.yml"), check=False)
    assert missing.returncode == 2
    assert missing.stderr.startswith("corpus: Cannot read ")
