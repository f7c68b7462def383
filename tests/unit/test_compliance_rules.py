"""Compliance rules without Salt: the vocabulary checked in one sentence per bad input and
compiled to Salt's highstate data, Salt's answers read into one result per rule (audit:
drifted, enforce: fixed), and which waiver covers a rule on a host until when."""

import datetime
import types

import pytest

from mc_project.errors import CorpusError
from mc_project.health import compliance_rules, compliance_runs

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def test_a_file_rule_compiles_to_an_existence_check_then_its_permissions_never_its_content():
    params = compliance_rules.check_params("file", {"path": "/etc/shadow", "mode": 640, "user": "root"})
    assert params == {"path": "/etc/shadow", "mode": "0640", "user": "root"}
    high = compliance_rules.compile_rule("shadow", "file", params)
    assert high == {
        "compliance/shadow/1": {"file": ["exists", {"name": "/etc/shadow"}], "__sls__": "compliance/shadow",
                                "__env__": "base"},
        "compliance/shadow/2": {"file": ["managed", {"name": "/etc/shadow"}, {"replace": False}, {"create": False},
                                         {"mode": "0640"}, {"user": "root"},
                                         {"require": [{"file": "compliance/shadow/1"}]}],
                                "__sls__": "compliance/shadow", "__env__": "base"}}


@pytest.mark.parametrize("kind, params, state", [
    ("pkg_present", {"name": "openssh-server", "version": "1:9.2p1-2"}, ("pkg", "installed")),
    ("pkg_absent", {"name": "telnetd"}, ("pkg", "removed")),
    ("service_running", {"name": "sshd", "enable": True}, ("service", "running")),
    ("user_present", {"name": "deploy", "uid": 1500, "shell": "/bin/bash", "groups": ["www-data"]},
     ("user", "present")),
    ("sysctl", {"name": "net.ipv4.ip_forward", "value": 0}, ("sysctl", "present")),
])
def test_each_kind_of_the_vocabulary_is_one_salt_state(kind, params, state):
    checked = compliance_rules.check_params(kind, params)
    high = compliance_rules.compile_rule("r1", kind, checked)
    assert list(high) == ["compliance/r1/1"]
    body = high["compliance/r1/1"]
    module, function = state
    assert body[module][0] == function and body["__sls__"] == "compliance/r1"
    assert {"name": checked["name"]} in body[module][1:]


def test_a_raw_salt_state_keeps_its_ids_and_is_marked_as_the_rules():
    sls = "motd:\n  file.managed:\n    - name: /etc/motd\n    - contents: hello\n"
    params = compliance_rules.check_params("sls", {"sls": sls})
    assert params == {"sls": sls}
    high = compliance_rules.compile_rule("motd", "sls", params)
    assert high == {"motd": {"file.managed": [{"name": "/etc/motd"}, {"contents": "hello"}],
                             "__sls__": "compliance/motd", "__env__": "base"}}


def test_two_rules_with_one_state_id_on_a_host_the_second_is_not_applied():
    sls = {"sls": "motd:\n  file.absent:\n    - name: /etc/motd\n"}
    high, clashes = compliance_rules.compile_host([("a", "sls", sls), ("b", "sls", sls),
                                                   ("c", "pkg_absent", {"name": "telnetd"})])
    assert set(high) == {"motd", "compliance/c/1"} and high["motd"]["__sls__"] == "compliance/a"
    assert clashes == {"b": "State id motd is also in rule a: rename one of them."}


@pytest.mark.parametrize("kind, params, sentence", [
    ("file", {"path": "etc/passwd", "mode": "0644"}, "params.path is an absolute path; got 'etc/passwd'."),
    ("file", {"path": "/etc/passwd"}, "A file rule says the file's mode, user or group (at least one)."),
    ("file", {"path": "/etc/passwd", "mode": "rw-r--r--"},
     "params.mode is an octal file mode such as 0644; got 'rw-r--r--'."),
    ("file", {"path": "/etc/passwd", "mode": "0644", "owner": "root"},
     "A file rule takes params path, mode, user, group; not owner."),
    ("pkg_present", {"name": "bad name"}, "params.name is a package name; got 'bad name'."),
    ("service_running", {"name": "sshd", "enable": "yes"}, "params.enable is true or false."),
    ("user_present", {"name": "Root!"}, "params.name is a user name; got 'Root!'."),
    ("sysctl", {"name": "net.ipv4.ip_forward"}, "params.value is the kernel parameter's value, such as 0."),
    ("sls", {"sls": "a: [unclosed"}, "params.sls is not valid YAML (line 1)."),
    ("sls", {"sls": "include:\n  - other\n"},
     "params.sls: 'include' is not a state id a rule may hold (no include, extend or __ names)."),
    ("sls", {"sls": "x:\n  managed:\n    - name: /a\n"},
     "params.sls: state x names 'managed', not a module.function such as file.managed."),
    ("firewall", {}, "A rule's kind is one of file, pkg_present, pkg_absent, service_running, user_present, "
                     "sysctl, sls; got 'firewall'."),
])
def test_bad_params_are_one_sentence(kind, params, sentence):
    with pytest.raises(CorpusError) as caught:
        compliance_rules.check_params(kind, params)
    assert str(caught.value) == sentence


def test_names_modes_and_impacts_are_checked():
    with pytest.raises(CorpusError, match="^A rule's name is letters"):
        compliance_rules.rule_name("no spaces")
    with pytest.raises(CorpusError, match=r"^A rule's mode is audit or enforce, not 'fix'\.$"):
        compliance_rules.mode_of("fix")
    with pytest.raises(CorpusError, match=r"^A rule's impact is a number from 0\.0"):
        compliance_rules.impact_of(1.5)


# --------------------------------------------------------------------------- Salt's answer

def item(result, changes=None, sls="compliance/perm", run=0, comment=""):
    return {"result": result, "changes": changes or {}, "comment": comment, "__sls__": sls, "__run_num__": run}


def test_an_audit_that_would_change_is_a_drift_and_an_enforce_that_changed_is_fixed():
    would = {"file_|-compliance/perm/1_|-/etc/x_|-exists": item(True, run=0),
             "file_|-compliance/perm/2_|-/etc/x_|-managed": item(None, {"mode": "0600"}, run=1,
                                                                 comment="will be updated with permissions 0600")}
    found = compliance_runs.outcomes(would, {"perm": {"mode": "audit"}})
    assert found == {"perm": ("drifted", [{"state": "compliance/perm/2: file.managed",
                                           "comment": "will be updated with permissions 0600",
                                           "changes": {"mode": "0600"}}])}
    changed = dict(would)
    changed["file_|-compliance/perm/2_|-/etc/x_|-managed"] = item(True, {"mode": "0600"}, run=1)
    assert compliance_runs.outcomes(changed, {"perm": {"mode": "enforce"}})["perm"][0] == "fixed"
    same = {key: item(True, run=value["__run_num__"]) for key, value in would.items()}
    assert compliance_runs.outcomes(same, {"perm": {"mode": "audit"}}) == {"perm": ("passed", [])}


def test_a_failed_state_a_missing_rule_and_a_refused_run_are_failures():
    answer = {"file_|-compliance/perm/1_|-/etc/x_|-exists": item(False, comment="Specified path /etc/x does not exist"),
              "pkg_|-compliance/other/1_|-vim_|-installed": item(True, sls="compliance/other")}
    found = compliance_runs.outcomes(answer, {"perm": {"mode": "audit"}, "gone": {"mode": "audit"}})
    assert found["perm"][0] == "failed"
    assert found["perm"][1][0]["comment"] == "Specified path /etc/x does not exist"
    assert found["gone"] == ("failed", [{"state": None, "comment": "Salt returned no result for the rule's states.",
                                         "changes": {}}])
    busy = compliance_runs.outcomes(['The function "state.apply" is running as PID 42'], {"perm": {"mode": "audit"}})
    assert busy["perm"][0] == "failed" and "running as PID 42" in busy["perm"][1][0]["comment"]


# --------------------------------------------------------------------------- waivers

def waiver(waiver_id, rule_id=1, host_id=None, group_id=None, hours=1):
    return types.SimpleNamespace(id=waiver_id, rule_id=rule_id, host_id=host_id, group_id=group_id,
                                 until=NOW + datetime.timedelta(hours=hours))


def test_a_waiver_covers_its_rule_on_its_host_or_its_groups_hosts_until_it_expires():
    on_host = waiver(1, host_id=7)
    on_group = waiver(2, group_id=3, hours=5)
    other_rule = waiver(3, rule_id=2, host_id=7)
    expired = waiver(4, host_id=8, hours=-1)
    waivers = [on_host, on_group, other_rule, expired]
    assert compliance_rules.waiver_for(waivers, 1, 7, {9}, NOW) is on_host
    assert compliance_rules.waiver_for(waivers, 1, 7, {3}, NOW) is on_group  # the one that lasts longest
    assert compliance_rules.waiver_for(waivers, 1, 8, {9}, NOW) is None  # its waiver expired
    assert compliance_rules.waiver_for(waivers, 1, 7, {9}, NOW + datetime.timedelta(hours=2)) is None
    # SQLite gives the expiry back without its zone: it is UTC.
    naive = waiver(5, host_id=9)
    naive.until = naive.until.replace(tzinfo=None)
    assert compliance_rules.waiver_for([naive], 1, 9, set(), NOW) is naive


@pytest.mark.parametrize("reason, until, host, group, sentence", [
    ("kernel 6.1 needs it", NOW + datetime.timedelta(days=1), None, None,
     "A waiver is on a host or on a group: name one of them."),
    (" ", NOW + datetime.timedelta(days=1), "web1", None, "A waiver needs a reason."),
    ("too late", NOW - datetime.timedelta(seconds=1), "web1", None,
     "A waiver expires after now: give until, a time to come."),
])
def test_a_bad_waiver_is_one_sentence(reason, until, host, group, sentence):
    with pytest.raises(CorpusError) as caught:
        compliance_rules.check_waiver(reason, until, NOW, host, group)
    assert str(caught.value) == sentence


def test_a_files_diff_is_not_kept_in_a_result():
    answer = {"file_|-motd_|-/etc/motd_|-managed": item(None, {"diff": "-old secret\n+new", "mode": "0644"},
                                                         sls="compliance/motd")}
    [entry] = compliance_runs.outcomes(answer, {"motd": {"mode": "audit"}})["motd"][1]
    assert entry["changes"] == {"diff": "(a diff, not kept)", "mode": "0644"}
