"""Names, commits and release ids are text, whatever Salt's YAML made of them.

``salt-call mc_project.status 123`` hands the function the int 123; the module takes
back the text typed on the command line (``__opts__["arg"]``, or ``__pub_arg`` for a
job from a master). Loaded here as a plain module with fake Salt dunders.
"""

import importlib.util
import os

import pytest
import salt.utils.args

MODULE_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "_modules", "mc_project.py")


@pytest.fixture
def mod():
    spec = importlib.util.spec_from_file_location("mc_project_module_under_test", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__context__ = {}
    module.__opts__ = {}
    module.__pillar__ = {}
    module.__grains__ = {}
    module.__salt__ = {"config.get": lambda key, default=None: default}
    return module


def salt_call(mod, fun, *argv):
    """Set the module up as ``salt-call FUN ARGV...`` would; returns (args, kwargs) as parsed."""
    mod.__opts__ = {"fun": fun, "arg": list(argv)}
    func = getattr(mod, fun.split(".", 1)[1])
    return salt.utils.args.parse_input(list(argv), condition=False), func


def run(mod, fun, *argv):
    """What ``salt-call FUN ARGV...`` passes the function: parsed args, the raw line kept."""
    (args, kwargs), func = salt_call(mod, fun, *argv)
    if "kwargs" in func.__code__.co_varnames[func.__code__.co_argcount:]:
        kwargs = dict(kwargs, __pub_fun=fun, __pub_jid="1", __pub_pid=1, __pub_tgt="salt-call")
    return func(*args, **kwargs)


class Recorder:
    """A stand-in for ``mc_project.project.engine``: records what each call received."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, attr):
        def record(*args, **kwargs):
            self.calls.append((attr, args, kwargs))
            return {"called": attr}
        return record


@pytest.fixture
def engine(mod, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(mod, "engine", recorder)
    monkeypatch.setattr(mod, "_bindings", lambda: "bindings")
    return recorder


# --------------------------------------------------------------------------- _text

@pytest.mark.parametrize("typed", ["123", "0123", "007", "true", "True", "yes", "on", "null",
                                   "None", "~", "1.5e+10", "12:30", "0x1f", "1e5", "myapp"])
def test_text_gives_back_what_was_typed(mod, typed):
    salt_call(mod, "mc_project.status", typed)
    value = salt.utils.args.yamlify_arg(typed)
    assert mod._text(value, "name") == typed


def test_text_finds_keyword_arguments_and_later_positions(mod):
    salt_call(mod, "mc_project.rollback", "0042", "20261122", "data=True")
    assert mod._text(42, "name") == "0042"
    assert mod._text(20261122, "release_id") == "20261122"
    salt_call(mod, "mc_project.rollback", "release_id=0017", "name=true")
    assert mod._text(True, "name") == "true"
    assert mod._text(17, "release_id") == "0017"


def test_text_without_the_command_line(mod):
    assert mod._text(123, "name") == "123"
    assert mod._text(True, "name") == "true"
    assert mod._text(False, "name") == "false"
    assert mod._text(None, "rev") is None
    assert mod._text(1.5, "rev") == "1.5"
    assert mod._text("already text", "name") == "already text"


def test_text_ignores_a_command_line_that_is_not_this_call(mod):
    # A state run (salt-call state.apply web) calling mc_project.status 123 itself.
    mod.__opts__ = {"fun": "state.apply", "arg": ["0123"]}
    assert mod._text(123, "name") == "123"
    # The same function, but the typed text does not read as the value received.
    salt_call(mod, "mc_project.status", "0456")
    assert mod._text(123, "name") == "123"
    # Arguments that do not fit the function's signature: no guess.
    salt_call(mod, "mc_project.status", "1", "2", "3", "4")
    assert mod._text(1, "name") == "1"


def test_text_reads_a_job_published_by_a_master(mod):
    mod.__opts__ = {"fun": "state.apply", "arg": ["nothing"]}
    kwargs = {"__pub_fun": "mc_project.deploy", "__pub_jid": "2026",
              "__pub_arg": [123, "rev=0012345", {"__kwarg__": True, "old": "00ab"}]}
    assert mod._text(123, "name", kwargs) == "123"
    assert mod._text(12345, "rev", kwargs) == "0012345"
    assert mod._text(None, "old", kwargs) is None  # "00ab" does not read as None


# --------------------------------------------------------------------------- _sha

@pytest.mark.parametrize("typed", ["1234567", "0123456", "1234567890" * 4, "0" * 39 + "1",
                                   "abc1234", "HEAD~1", "1e10"])
def test_sha_keeps_the_typed_commit(mod, typed):
    salt_call(mod, "mc_project.deploy", "app", "rev=" + typed)
    value = salt.utils.args.yamlify_arg(typed)
    assert mod._sha(value, "rev") == typed


def test_a_short_all_digit_sha_is_not_padded(mod):
    assert mod._sha(1234567, "rev") == "1234567"
    assert mod._sha(None, "rev") is None


def test_the_null_sha_of_a_new_branch(mod):
    zero = "0" * 40
    salt_call(mod, "mc_project.deploy", "app", "old=" + zero, "rev=0000")
    assert mod._sha(0, "old") == zero
    assert mod._sha(0, "rev") == "0000"  # as typed: a 4-digit abbreviation
    mod.__opts__ = {}
    assert mod._sha(0, "old") == zero  # nothing typed to go by: 0 is no abbreviation


# --------------------------------------------------------------------------- the functions

def test_status_of_a_project_named_123(mod, engine):
    run(mod, "mc_project.status", "123")
    (fun, args, _), = engine.calls
    assert fun == "status" and args[0] == "123"


def test_status_of_a_project_named_true_and_007(mod, engine):
    run(mod, "mc_project.status", "true")
    run(mod, "mc_project.stop", "007")
    run(mod, "mc_project.releases", "null")
    assert [call[1][0] for call in engine.calls] == ["true", "007", "null"]


def test_deploy_passes_the_typed_name_and_commits(mod, engine):
    run(mod, "mc_project.deploy", "2024", "rev=1234567", "old=0099887")
    (fun, args, kwargs), = engine.calls
    assert fun == "deploy" and args[0] == "2024"
    assert kwargs["rev"] == "1234567" and kwargs["old"] == "0099887"


def test_deploy_pillar_and_rollback(mod, engine):
    run(mod, "mc_project.deploy_pillar", "12", "archive=/tmp/p.tar", "rev=0000001")
    run(mod, "mc_project.rollback", "12", "0001")
    (_, args, kwargs), (_, rargs, rkwargs) = engine.calls
    assert args[0] == "12" and kwargs["rev"] == "0000001"
    assert rargs[0] == "12" and rkwargs["release_id"] == "0001"


def test_a_bad_typed_name_is_still_one_sentence(mod, engine):
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError) as err:
        run(mod, "mc_project.status", "[1, 2]")
    assert str(err.value).startswith("Project name '[1, 2]' is invalid: ")
    assert engine.calls == []


# --------------------------------------------------------------------------- the pillar

def test_pillar_keys_typed_by_yaml_are_found(mod):
    mod.__pillar__ = {"makina-projects": {123: {"env": "prod"}, True: {"env": "staging"},
                                          "app": {"env": "dev"}, 7: ""}}
    assert mod._pillar("123") == {"env": "prod"}
    assert mod._pillar("true") == {"env": "staging"}
    assert mod._pillar("app") == {"env": "dev"}
    assert mod._pillar("7") == {}
    assert mod._pillar("1") == {}  # True == 1, but 1 is not the key true


def test_the_settings_function_sees_the_typed_pillar(mod, tmp_path):
    mod.__pillar__ = {"makina-projects": {123: {"data": {"from": "pillar"}}}}
    cfg = run(mod, "mc_project.settings", "123", "projects_root=" + str(tmp_path))
    assert cfg["name"] == "123" and cfg["data"] == {"from": "pillar"}
    assert cfg["paths"]["root"] == os.path.join(str(tmp_path), "123")

