"""The schema of a project's settings: types, bounds, defaults and one-sentence errors."""

import pytest

from mc_project.errors import CorpusError
from mc_project.project import schema, settings

INF = float("inf")
NAN = float("nan")
ENV_MAP = "a mapping of environment variable names to strings, numbers or true/false"
USER_NAME = ("empty or a Linux user name (a lowercase letter or '_', then up to 31 lowercase "
             "letters, digits, '_' or '-')")


def refused(mapping):
    """The sentence ``schema.validate`` raises for ``mapping``."""
    with pytest.raises(CorpusError) as err:
        schema.validate(mapping)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    assert "pydantic" not in message and "validation error" not in message.lower()
    return message


def nested(dotted, value):
    """``{"a": {"b": value}}`` for ``"a.b"``."""
    head, _, rest = dotted.partition(".")
    return {head: nested(rest, value) if rest else value}


# --------------------------------------------------------------------------- defaults

def test_defaults():
    assert schema.defaults() == {
        "env": "dev",
        "mode": "",
        "deploy_branch": "main",
        "keep_releases": 5,
        "keep_failed": 5,
        "lock_timeout": 60,
        "port": 0,
        "bind": "127.0.0.1",
        "environment": {},
        "web": "",
        "static_dir": "",
        "health": {"path": "/", "timeout": 30, "status": 200},
        "bundle": {"source": ""},
        "editable_keep": [".venv", "node_modules", "__pycache__"],
        "data": {},
        "run_as": "",
        "drain_timeout": 30,
        "database": "",
        "database_server": "",
        "keep_snapshots": 0,
    }
    assert schema.ENV_DEFAULTS == {"dev": {"health": {"timeout": 20}}, "staging": {},
                                   "prod": {"health": {"timeout": 60}}}


def test_settings_take_their_defaults_from_the_schema():
    assert settings.DEFAULTS == schema.defaults()
    assert settings.ENV_DEFAULTS is schema.ENV_DEFAULTS


def test_defaults_are_fresh_copies():
    first = schema.defaults()
    first["editable_keep"].append("x")
    first["health"]["timeout"] = 1
    assert schema.defaults()["editable_keep"] == [".venv", "node_modules", "__pycache__"]
    assert schema.defaults()["health"]["timeout"] == 30


def test_the_defaults_pass_and_every_field_is_documented():
    assert schema.validate(schema.defaults()) == schema.defaults()
    for model in (schema.ProjectSettings, schema.HealthSettings, schema.BundleSettings):
        for name, field in model.model_fields.items():
            assert field.description and field.description.endswith("."), name
            assert field.json_schema_extra["allowed"], name


def test_validate_hands_back_the_same_plain_dict():
    mapping = {"port": 8080, "environment": {"N": 1}, "health": {"timeout": 5}}
    assert schema.validate(mapping) is mapping
    assert mapping == {"port": 8080, "environment": {"N": 1}, "health": {"timeout": 5}}


def test_ignored_keys_are_not_checked():
    schema.validate({"name": "app", "paths": {}, "pillar_hash": "x"},
                    ignore=("name", "paths", "pillar_hash"))


# --------------------------------------------------------------------------- good values

GOOD = [
    ("env", "dev"), ("env", "staging"), ("env", "prod"),
    ("mode", ""), ("mode", "editable"), ("mode", "cooking"), ("mode", "final"),
    ("deploy_branch", "main"), ("deploy_branch", "release/v1.2"), ("deploy_branch", "a_b-c"),
    ("keep_releases", 1), ("keep_releases", 1000), ("keep_failed", 0), ("keep_failed", 1000),
    ("lock_timeout", 0), ("lock_timeout", 86400), ("lock_timeout", 0.5),
    ("port", 0), ("port", 1), ("port", 65535),
    ("bind", "127.0.0.1"), ("bind", "0.0.0.0"), ("bind", "::1"), ("bind", "fe80::1"),
    ("environment", {}), ("environment", {"A": "x", "_B2": 1, "c": 1.5, "D": False, "E": ""}),
    ("web", "gunicorn app:app"), ("static_dir", "public"),
    ("health.path", "/"), ("health.path", "/health?full=1"), ("health.path", "/caf\u00e9"),
    ("health.timeout", 0.1), ("health.timeout", 3600), ("health.timeout", 1),
    ("health.status", 100), ("health.status", 599), ("health.status", 204),
    ("bundle.source", "http://staging:8080/bundles/"), ("bundle.source", ""),
    ("editable_keep", []), ("editable_keep", ["vendor"]),
    ("data", {}), ("data", {"any": [1, {"x": None}], 3: "int key", "f": INF}),
    ("run_as", ""), ("run_as", "app"), ("run_as", "_svc"), ("run_as", "web-1"),
    ("run_as", "a" * 32),
    ("drain_timeout", 0), ("drain_timeout", 3600), ("drain_timeout", 2.5),
]


@pytest.mark.parametrize("key,value", GOOD, ids=lambda v: repr(v))
def test_good_values_pass(key, value):
    schema.validate(nested(key, value))


# --------------------------------------------------------------------------- bad values

BAD = [
    # (key, value, what the sentence says is allowed)
    ("deploy_branch", "a..b", "a git branch name such as main or release/v1"),
    ("deploy_branch", 5, "a git branch name such as main or release/v1"),
    ("keep_releases", 0, "a whole number from 1 to 1000"),
    ("keep_releases", 1001, "a whole number from 1 to 1000"),
    ("keep_releases", INF, "a whole number from 1 to 1000"),
    ("keep_releases", 5.0, "a whole number from 1 to 1000"),
    ("keep_releases", "5", "a whole number from 1 to 1000"),
    ("keep_releases", True, "a whole number from 1 to 1000"),
    ("keep_failed", -1, "a whole number from 0 to 1000"),
    ("keep_failed", None, "a whole number from 0 to 1000"),
    ("lock_timeout", -1, "a number of seconds from 0 to 86400"),
    ("lock_timeout", 86401, "a number of seconds from 0 to 86400"),
    ("lock_timeout", INF, "a number of seconds from 0 to 86400"),
    ("lock_timeout", NAN, "a number of seconds from 0 to 86400"),
    ("lock_timeout", "60", "a number of seconds from 0 to 86400"),
    ("lock_timeout", False, "a number of seconds from 0 to 86400"),
    ("port", -1, "a whole number from 0 to 65535 (0: a port derived from the name)"),
    ("port", 65536, "a whole number from 0 to 65535 (0: a port derived from the name)"),
    ("port", 80.0, "a whole number from 0 to 65535 (0: a port derived from the name)"),
    ("port", "8080", "a whole number from 0 to 65535 (0: a port derived from the name)"),
    ("bind", "localhost", "an IP address such as 127.0.0.1 or 0.0.0.0"),
    ("bind", "300.1.1.1", "an IP address such as 127.0.0.1 or 0.0.0.0"),
    ("bind", 2130706433, "an IP address such as 127.0.0.1 or 0.0.0.0"),
    ("environment", [1, 2], ENV_MAP),
    ("environment", "A=1", ENV_MAP),
    ("environment.A", [1], "a string, a number or true/false"),
    ("environment.A", {"b": 1}, "a string, a number or true/false"),
    ("environment.A", None, "a string, a number or true/false"),
    ("web", ["gunicorn"], "a command line (a string)"),
    ("static_dir", 1, "a directory (a string)"),
    ("health", "/health", "a mapping with path, timeout and status"),
    ("health.path", "health", "a URL path starting with '/' without spaces or control characters"),
    ("health.path", "/a b", "a URL path starting with '/' without spaces or control characters"),
    ("health.path", "/a\tb", "a URL path starting with '/' without spaces or control characters"),
    ("health.path", "/a\x00", "a URL path starting with '/' without spaces or control characters"),
    ("health.path", "/a\x7f", "a URL path starting with '/' without spaces or control characters"),
    ("health.path", "", "a URL path starting with '/' without spaces or control characters"),
    ("health.timeout", "abc", "a number of seconds greater than 0 and at most 3600"),
    ("health.timeout", 0, "a number of seconds greater than 0 and at most 3600"),
    ("health.timeout", 3601, "a number of seconds greater than 0 and at most 3600"),
    ("health.timeout", INF, "a number of seconds greater than 0 and at most 3600"),
    ("health.timeout", True, "a number of seconds greater than 0 and at most 3600"),
    ("health.status", 99, "an HTTP status code from 100 to 599"),
    ("health.status", 600, "an HTTP status code from 100 to 599"),
    ("health.status", "200", "an HTTP status code from 100 to 599"),
    ("health.status", 200.0, "an HTTP status code from 100 to 599"),
    ("bundle", "http://x/", "a mapping with source"),
    ("bundle.source", 1, "a path or URL (a string)"),
    ("editable_keep", ".venv", "a list of file or directory names"),
    ("editable_keep", {"a": 1}, "a list of file or directory names"),
    ("data", ["x"], "a mapping"),
    ("data", "x", "a mapping"),
    ("run_as", "Root", USER_NAME),
    ("run_as", "1app", USER_NAME),
    ("run_as", "a" * 33, USER_NAME),
    ("run_as", "app;id", USER_NAME),
    ("run_as", 1000, USER_NAME),
    ("drain_timeout", -0.5, "a number of seconds from 0 to 3600"),
    ("drain_timeout", 3601, "a number of seconds from 0 to 3600"),
    ("drain_timeout", NAN, "a number of seconds from 0 to 3600"),
    ("drain_timeout", "30", "a number of seconds from 0 to 3600"),
]


@pytest.mark.parametrize("key,value,allowed", BAD, ids=lambda v: repr(v)[:40])
def test_a_bad_value_is_one_sentence_naming_the_key(key, value, allowed):
    assert refused(nested(key, value)) == f"Setting {key} must be {allowed}, not {value!r}."


def test_the_examples_word_for_word():
    assert refused({"health": {"timeout": "abc"}}) == (
        "Setting health.timeout must be a number of seconds greater than 0 and at most 3600, "
        "not 'abc'.")
    assert refused({"environment": [1, 2]}) == (
        "Setting environment must be a mapping of environment variable names to strings, "
        "numbers or true/false, not [1, 2].")
    assert refused({"keep_releases": INF}) == (
        "Setting keep_releases must be a whole number from 1 to 1000, not inf.")


@pytest.mark.parametrize("value", ["qa", "", "Dev", 1, None, ["dev"]], ids=repr)
def test_bad_env(value):
    assert refused({"env": value}) == f"Unknown env {value!r}: use one of dev, staging, prod."


@pytest.mark.parametrize("value", ["turbo", "Final", 0, None, True], ids=repr)
def test_bad_mode(value):
    assert refused({"mode": value}) == \
        f"Unknown mode {value!r}: use one of editable, cooking, final."


@pytest.mark.parametrize("name", ["my var", "1ABC", "A-B", "", "É", 1, None], ids=repr)
def test_bad_environment_variable_name(name):
    assert refused({"environment": {name: "x"}}) == (
        f"Setting environment names the variable {name!r}, which is not a variable name: "
        "use letters, digits and '_', not starting with a digit.")


def test_a_bad_list_item_is_named_by_its_index():
    assert refused({"editable_keep": [".venv", 3]}) == \
        "Setting editable_keep[1] must be a file or directory name (a string), not 3."


def test_unknown_top_level_key():
    assert refused({"foo": 1}) == (
        "Setting foo is unknown; known settings are env, mode, deploy_branch, keep_releases, "
        "keep_failed, lock_timeout, port, bind, environment, web, static_dir, health, bundle, "
        "editable_keep, run_as, drain_timeout, database, database_server, keep_snapshots and data; "
        "put your own values under data.")


@pytest.mark.parametrize("section,known", [("health", "path, timeout and status"),
                                           ("bundle", "source")])
def test_unknown_nested_key(section, known):
    assert refused({section: {"colour": 1}}) == (
        f"Setting {section}.colour is unknown; known settings under {section} are {known}.")


def test_computed_keys_are_unknown_unless_ignored():
    assert refused({"paths": {}}).startswith("Setting paths is unknown")
    for key in settings.COMPUTED:
        schema.validate({key: object()}, ignore=settings.COMPUTED)


def test_several_bad_values_name_the_first():
    assert refused({"keep_releases": 0, "port": -1}).startswith("Setting keep_releases ")


def test_a_long_value_is_shortened():
    message = refused({"web": ["x" * 500]})
    assert len(message) < 200 and "..." in message


def test_a_mapping_is_required():
    with pytest.raises(CorpusError) as err:
        schema.validate(["env"])
    assert str(err.value) == "Settings must be a mapping, not ['env']."
