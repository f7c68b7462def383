"""A playbook run by ansible-runner (ansible-core) over SSH on some of the inventory's hosts.

The playbook is the text the caller sent (the CLI reads the caller's own file): the
controller never opens a path a caller names. It runs in a private directory (0700,
removed afterwards) with a generated inventory of just the hosts of the run -- the
Ansible export's hosts, variables and groups (``ansible_export``), restricted to them.
Host keys are learnt on first contact and kept in the controller's own
``known_hosts`` (``<cachedir>/corpus-known_hosts``, 0600): a key that changes later is refused.
"""

import os
import shutil
import sys
import tempfile

import yaml

from mc_project.errors import CorpusError

MAX_BYTES = 256 * 1024
KNOWN_HOSTS = "corpus-known_hosts"
PLAYBOOK = "site.yml"
TIMEOUT = 3600
# How ansible-core begins the line saying why a playbook did not run (2.19, and before).
ERROR_PREFIXES = ("[ERROR]:", "ERROR!")


def check_playbook(content):
    """Refuse, in one sentence, a text that is not a playbook (a YAML list of plays)."""
    if not isinstance(content, str) or not content.strip():
        raise CorpusError("The playbook is empty.")
    if len(content.encode("utf-8")) > MAX_BYTES:
        raise CorpusError("The playbook is over {} KiB; send a smaller one.".format(MAX_BYTES // 1024))
    try:
        plays = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = " at line {}".format(where.line + 1) if where is not None else ""
        raise CorpusError("The playbook is not valid YAML{}: {}.".format(
            at, getattr(exc, "problem", None) or "it does not parse")) from None
    if not isinstance(plays, list) or not plays or not all(isinstance(play, dict) for play in plays):
        raise CorpusError("The playbook must be a YAML list of plays.")
    return content


def inventory_for(export, names):
    """Ansible's YAML-inventory structure of the hosts ``names`` of ``export`` (the
    ``--list`` JSON), with every group they are in (empty groups stay, so that a play
    naming one matches nothing rather than failing)."""
    wanted = set(names)
    hostvars = export.get("_meta", {}).get("hostvars", {})
    children = {}
    for group, body in export.items():
        if group in ("_meta", "all"):
            continue
        children[group] = {"hosts": {host: None for host in body.get("hosts", ()) if host in wanted},
                           "children": {child: None for child in body.get("children", ())}}
    return {"all": {"hosts": {name: hostvars.get(name, {}) for name in names}, "children": children}}


def _environment(ctl, private):
    known_hosts = os.path.join(ctl.opts["cachedir"], KNOWN_HOSTS)
    os.makedirs(ctl.opts["cachedir"], exist_ok=True)
    if not os.path.exists(known_hosts):
        os.close(os.open(known_hosts, os.O_WRONLY | os.O_CREAT, 0o600))
    return {
        # ansible-playbook beside this Python (a virtualenv's bin is not always on PATH).
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o StrictHostKeyChecking=accept-new "
                            "-o UserKnownHostsFile={}".format(known_hosts),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_LOCAL_TEMP": os.path.join(private, "tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    }


def run(ctl, content, inventory, check, on_event, timeout=TIMEOUT):
    """Run ``content`` on ``inventory``; ``on_event(event)`` sees each runner event as it
    comes. Returns ``(status, rc, error)``: runner's status, the exit code, and one line
    saying why nothing ran when the playbook failed before any host did."""
    import ansible_runner  # the controller's; the CLI and the nodes never need it

    private = tempfile.mkdtemp(prefix="corpus-playbook-")
    try:
        os.makedirs(os.path.join(private, "project"))
        with open(os.path.join(private, "project", PLAYBOOK), "w", encoding="utf-8") as fh:
            fh.write(content)

        def handler(event):
            on_event(event)
            return True

        runner = ansible_runner.run(
            private_data_dir=private, playbook=PLAYBOOK, inventory=inventory, cmdline="--check" if check else None,
            envvars=_environment(ctl, private), suppress_env_files=True, event_handler=handler, quiet=True,
            timeout=timeout)
        error = None
        if runner.status != "successful":
            output = runner.stdout.read() if runner.stdout else ""
            error = next((line.strip().split(None, 1)[-1] for line in output.splitlines()
                          if line.strip().startswith(ERROR_PREFIXES)), None)
        return runner.status, runner.rc, error
    finally:
        shutil.rmtree(private, ignore_errors=True)
