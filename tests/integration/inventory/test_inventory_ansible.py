"""A real ``ansible-playbook`` over two hosts (network namespaces with a private sshd)
that are only in the corpus inventory: added, placed and given variables with the
real ``corpus`` command, read by Ansible through ``corpus-inventory``."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from support.netns import NetnsHost

pytestmark = pytest.mark.needs("root", "ip", "sshd")

PLAYBOOK = """
- hosts: region_lab
  gather_facts: false
  tasks:
    - name: write what the inventory says about this host
      copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
        content: "{{ greeting }} from {{ inventory_hostname }}, disk {{ hardware.disk }}, tier {{ tier }}\\n"
    - name: no secret reaches Ansible
      assert:
        that: db_password is not defined
"""


@pytest.fixture
def two_hosts(tmp_path):
    tag = uuid.uuid4().hex[:4]
    first = NetnsHost("inva-" + tag, "10.87.0.1/24", "10.87.0.2/24", workdir=tmp_path / "a")
    try:
        second = NetnsHost("invb-" + tag, "10.88.0.1/24", "10.88.0.2/24", workdir=tmp_path / "b")
    except BaseException:
        first.close()
        raise
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def test_ansible_playbook_runs_on_the_inventorys_hosts_with_their_resolved_variables(
        two_hosts, corpus_cli, cli_env, tmp_path):
    first, second = two_hosts
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    corpus_cli("inventory", "add", "region", "lab")
    corpus_cli("inventory", "add", "group", "web")
    for name, host in (("inv-a", first), ("inv-b", second)):
        corpus_cli("inventory", "add", "host", name, "--address", host.address, "--user", "root",
                   "--region", "lab", "--group", "web", "--label", "netns")
        corpus_cli("inventory", "set", "host", name, "ansible_ssh_private_key_file=" + host.key_path)
    corpus_cli("inventory", "set", "tenant", "default", "greeting=hello", "out_dir=" + str(out_dir),
               "ansible_python_interpreter=/usr/bin/python3", 'hardware={"disk": "hdd"}', "tier=any")
    corpus_cli("inventory", "set", "group", "web", "tier=web", "--secret", "db_password=never-exported")
    corpus_cli("inventory", "set", "host", "inv-b", 'hardware={"disk": "ssd"}')

    found = corpus_cli("--json", "inventory", "list", "host", "--var", "hardware.disk:ssd")
    assert [host["name"] for host in json.loads(found.stdout)["items"]] == ["inv-b"]
    resolved = json.loads(corpus_cli("--json", "inventory", "vars", "host", "inv-b", "--resolved").stdout)
    assert resolved["provenance"]["hardware"] == {"level": "host", "name": "inv-b"}
    assert resolved["provenance"]["tier"] == {"level": "group", "name": "web"}
    assert resolved["variables"]["db_password"] == "********"

    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(cli_env, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
               ANSIBLE_REMOTE_TMP=str(tmp_path / "ansible-remote"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_SSH_ARGS="-o ControlMaster=no -o UserKnownHostsFile=/dev/null")
    inventory_script = shutil.which("corpus-inventory", path=env["PATH"])
    result = subprocess.run(["ansible-playbook", "-i", inventory_script, str(playbook)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    recap = result.stdout[result.stdout.index("PLAY RECAP"):]
    for name in ("inv-a", "inv-b"):
        line = next(line for line in recap.splitlines() if line.startswith(name))
        assert "ok=2" in line and "changed=1" in line and "failed=0" in line and "unreachable=0" in line, line
    assert (out_dir / "inv-a.txt").read_text() == "hello from inv-a, disk hdd, tier web\n"
    assert (out_dir / "inv-b.txt").read_text() == "hello from inv-b, disk ssd, tier web\n"

    # The roster names the same hosts for salt-ssh; a bad import changes nothing.
    roster = corpus_cli("inventory", "roster").stdout
    assert "inv-a:" in roster and "host: {}".format(first.address) in roster
    bad = tmp_path / "hosts.csv"
    bad.write_text("name,region\ninv-c,lab\ninv-d,nowhere\n")
    refused = corpus_cli("inventory", "import", str(bad), check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("corpus: Nothing was imported. Row 3 (inv-d): No region named nowhere.")
    assert json.loads(corpus_cli("--json", "inventory", "list", "host", "--region", "lab").stdout)["total"] == 2
    assert os.path.exists(first.key_path)
