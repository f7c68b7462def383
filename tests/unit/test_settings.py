"""The common mapping: merge order, env and mode, ``{var}`` references, validation."""

import os

import pytest

from mc_project.errors import CorpusError
from mc_project.project import settings


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def dirs(tmp_path):
    """A projects root, a source tree (for .salt/PILLAR.sample) and a private pillar dir."""
    root = tmp_path / "projects"
    src = tmp_path / "src"
    private = tmp_path / "private"
    for d in (root, src, private):
        d.mkdir()
    return str(root), str(src), str(private)


def build(dirs, sample=None, private=None, pillar=None, overrides=None, name="app", **kw):
    root, src, priv = dirs
    if sample is not None:
        write(os.path.join(src, ".salt", "PILLAR.sample"), sample)
    if private is not None:
        write(os.path.join(priv, "init.sls"), private)
    return settings.build(name, root, pillar=pillar, overrides=overrides, source_dir=src,
                          private_pillar_dir=priv, **kw)


# --------------------------------------------------------------------------- merge order

def test_defaults_alone(dirs):
    cfg = build(dirs)
    assert cfg["name"] == "app"
    assert cfg["env"] == "dev" and cfg["mode"] == "editable"
    assert cfg["deploy_branch"] == "main"
    assert cfg["keep_releases"] == 5
    assert cfg["lock_timeout"] == 60
    assert cfg["port"] == settings.default_port("app")
    assert 20000 <= cfg["port"] < 32000
    # env default for dev overrides the built-in default, other health keys survive
    assert cfg["health"] == {"path": "/", "timeout": 20, "status": 200}
    assert cfg["paths"]["root"] == os.path.join(dirs[0], "app")
    assert cfg["paths"]["data"] == os.path.join(dirs[0], "app", "data")
    assert cfg["app_root"] == cfg["paths"]["project"]


def test_default_port_is_stable_and_differs_between_names():
    assert settings.default_port("app") == settings.default_port("app")
    assert settings.default_port("app") != settings.default_port("other")


def test_each_layer_overrides_the_one_below(dirs):
    sample = "data: {level: sample, from_sample: 1}\nhealth: {timeout: 7}\nkeep_releases: 2\n"
    private = "data: {level: private, from_private: 1}\nkeep_releases: 3\n"
    pillar = {"data": {"level": "pillar", "from_pillar": 1}, "keep_releases": 4}
    args = {"data": {"level": "args"}}
    cfg = build(dirs, sample=sample, private=private, pillar=pillar, overrides=args)
    assert cfg["data"] == {"level": "args", "from_sample": 1, "from_private": 1, "from_pillar": 1}
    assert cfg["keep_releases"] == 4
    # PILLAR.sample beats the env default (dev: 20) and the built-in default (30)
    assert cfg["health"]["timeout"] == 7
    assert cfg["health"]["path"] == "/"

    cfg = build(dirs, pillar={"data": {"level": "pillar"}})
    assert cfg["data"]["level"] == "pillar"
    cfg = build(dirs, pillar={})
    assert cfg["data"]["level"] == "private"
    os.unlink(os.path.join(dirs[2], "init.sls"))
    cfg = build(dirs)
    assert cfg["data"]["level"] == "sample"
    assert cfg["keep_releases"] == 2


def test_env_defaults_sit_between_defaults_and_sample(dirs):
    assert build(dirs, overrides={"env": "prod"})["health"]["timeout"] == 60
    assert build(dirs, overrides={"env": "staging"})["health"]["timeout"] == 30
    # a lower layer names the env, a higher one overrides it: the env defaults follow the winner
    cfg = build(dirs, sample="env: prod\n", pillar={"env": "dev"})
    assert cfg["env"] == "dev" and cfg["health"]["timeout"] == 20


def test_lists_are_replaced_not_merged(dirs):
    cfg = build(dirs, sample="editable_keep: [a, b]\n", overrides={"editable_keep": ["c"]})
    assert cfg["editable_keep"] == ["c"]


def test_merge_does_not_alias_its_inputs():
    base = {"a": {"b": [1]}}
    out = settings.merge(base, {"a": {"c": 2}})
    out["a"]["b"].append(2)
    assert base == {"a": {"b": [1]}}


@pytest.mark.parametrize("env,mode", [("dev", "editable"), ("staging", "cooking"), ("prod", "final")])
def test_env_gives_mode(dirs, env, mode):
    cfg = build(dirs, pillar={"env": env})
    assert (cfg["env"], cfg["mode"]) == (env, mode)


def test_mode_can_be_overridden(dirs):
    cfg = build(dirs, sample="env: prod\n", overrides={"mode": "editable"})
    assert cfg["env"] == "prod" and cfg["mode"] == "editable"
    assert cfg["app_root"] == cfg["paths"]["project"]
    cfg = build(dirs, pillar={"env": "dev", "mode": "cooking"}, release_id="r1")
    assert cfg["mode"] == "cooking"
    assert cfg["app_root"] == os.path.join(cfg["paths"]["build"], "r1")


def test_release_paths_follow_release_id(dirs):
    cfg = build(dirs, release_id="20240101T000000-abc", commit="abc" * 13 + "a")
    releases_dir = cfg["paths"]["releases"]
    assert cfg["paths"]["release"] == os.path.join(releases_dir, "20240101T000000-abc")
    assert cfg["paths"]["snapshot"] == os.path.join(cfg["paths"]["snapshots"], "20240101T000000-abc")
    assert cfg["commit"] == "abc" * 13 + "a"
    cfg = build(dirs)
    assert cfg["paths"]["release"] == "" and cfg["release_id"] == ""


def test_pillar_hash_tracks_private_and_salt_pillar_only(dirs):
    a = build(dirs, pillar={"data": {"x": 1}})["pillar_hash"]
    assert build(dirs, pillar={"data": {"x": 1}})["pillar_hash"] == a
    assert build(dirs, pillar={"data": {"x": 2}})["pillar_hash"] != a
    assert build(dirs, pillar={"data": {"x": 1}}, private="data: {y: 1}\n")["pillar_hash"] != a


# --------------------------------------------------------------------------- references

def test_dotted_references(dirs):
    cfg = build(dirs, pillar={"data": {"db": "{name}_db", "dump": "{paths.data}/{data.db}.sql",
                                       "nested": {"deep": "x"}, "use": "v={data.nested.deep}"}})
    assert cfg["data"]["db"] == "app_db"
    assert cfg["data"]["dump"] == os.path.join(cfg["paths"]["data"], "app_db.sql")
    assert cfg["data"]["use"] == "v=x"


def test_whole_string_reference_keeps_the_type(dirs):
    cfg = build(dirs, pillar={"data": {"port": 8123, "flags": ["a", "b"], "p": "{data.port}",
                                       "copy": "{data.flags}", "s": "port {data.port}"},
                              "port": "{data.port}"})
    assert cfg["port"] == 8123
    assert cfg["data"]["p"] == 8123
    assert cfg["data"]["copy"] == ["a", "b"]
    assert cfg["data"]["s"] == "port 8123"


def test_references_inside_lists_and_env(dirs):
    cfg = build(dirs, pillar={"environment": {"DB": "{paths.data}/db.json"},
                              "data": {"items": ["{name}", "x-{env}"]}})
    assert cfg["environment"]["DB"] == os.path.join(cfg["paths"]["data"], "db.json")
    assert cfg["data"]["items"] == ["app", "x-dev"]


def test_double_braces_are_literal(dirs):
    cfg = build(dirs, pillar={"data": {"tpl": "{{name}} is {name}", "json": '{{"a": 1}}',
                                       "lone": "a } b"}})
    assert cfg["data"]["tpl"] == "{name} is app"
    assert cfg["data"]["json"] == '{"a": 1}'
    assert cfg["data"]["lone"] == "a } b"


def test_unknown_reference(dirs):
    with pytest.raises(CorpusError) as err:
        build(dirs, pillar={"data": {"a": "x{data.nope}"}})
    assert str(err.value) == "Reference {data.nope} in data.a names no known setting."


def test_reference_to_a_mapping_inside_a_string(dirs):
    with pytest.raises(CorpusError, match=r"Reference \{health\} in data.a points to a dict"):
        build(dirs, pillar={"data": {"a": "h={health}"}})


def test_reference_that_is_not_a_key_name(dirs):
    with pytest.raises(CorpusError, match="is not a dotted key name"):
        build(dirs, pillar={"data": {"a": "{no spaces here}"}})


def test_cyclic_reference(dirs):
    with pytest.raises(CorpusError) as err:
        build(dirs, pillar={"data": {"a": "{data.b}", "b": "x{data.c}", "c": "{data.a}"}})
    msg = str(err.value)
    assert msg.startswith("Settings reference a value through a cycle: ")
    assert msg.endswith(".")
    chain = msg[len("Settings reference a value through a cycle: "):-1].split(" -> ")
    assert chain[0] == chain[-1]
    assert set(chain) == {"data.a", "data.b", "data.c"}


def test_self_reference_is_a_cycle(dirs):
    with pytest.raises(CorpusError, match=r"cycle: data.a -> data.a\."):
        build(dirs, pillar={"data": {"a": "again {data.a}"}})


# --------------------------------------------------------------------------- validation

BAD_NAMES = ["", "/", "a/b", "..", "a..b", "../etc", "my app", " app", "app;rm", "a$b", "a`id`",
             "a|b", "a&b", "a>b", "a*", "-app", ".app", "_app", "app\n", "é", "a" * 65, None, 5]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_project_names(dirs, name):
    with pytest.raises(CorpusError) as err:
        settings.build(name, dirs[0])
    assert str(err.value).startswith(f"Project name {name!r} is invalid")
    with pytest.raises(CorpusError):
        settings.project_paths(dirs[0], name)
    assert os.listdir(dirs[0]) == []


@pytest.mark.parametrize("name", ["a", "A1", "my-app", "my_app.v2", "0app", "a" * 64])
def test_good_project_names(dirs, name):
    assert settings.validate_name(name) == name
    assert settings.build(name, dirs[0])["paths"]["root"] == os.path.join(dirs[0], name)


@pytest.mark.parametrize("layer", ["sample", "pillar", "overrides"])
def test_unknown_env(dirs, layer):
    kwargs = {"sample": "env: qa\n"} if layer == "sample" else {layer: {"env": "qa"}}
    with pytest.raises(CorpusError) as err:
        build(dirs, **kwargs)
    assert str(err.value) == "Unknown env 'qa': use one of dev, staging, prod."


def test_unknown_mode(dirs):
    with pytest.raises(CorpusError) as err:
        build(dirs, overrides={"mode": "turbo"})
    assert str(err.value) == "Unknown mode 'turbo': use one of editable, cooking, final."


@pytest.mark.parametrize("port", [70000, 65536, -1, "80", "abc", True, 1.5, [80]], ids=repr)
def test_bad_port(dirs, port):
    with pytest.raises(CorpusError, match=r"Setting port must be a whole number from 0 to 65535 "):
        build(dirs, pillar={"port": port})


def test_port_bounds_accepted(dirs):
    assert build(dirs, pillar={"port": 1})["port"] == 1
    assert build(dirs, pillar={"port": 65535})["port"] == 65535


@pytest.mark.parametrize("key,value", [("keep_releases", 0), ("keep_releases", "5"),
                                       ("keep_failed", -1), ("lock_timeout", -2),
                                       ("lock_timeout", True)])
def test_bad_numbers(dirs, key, value):
    with pytest.raises(CorpusError, match=f"Setting {key} must be a (whole )?number"):
        build(dirs, pillar={key: value})


@pytest.mark.parametrize("branch", ["", "a..b", "/main", "main/", "a//b", "main.", "ma in",
                                    "main;x", "main\n", 5])
def test_bad_deploy_branch(dirs, branch):
    with pytest.raises(CorpusError, match="Setting deploy_branch must be a git branch name"):
        build(dirs, pillar={"deploy_branch": branch})


def test_good_deploy_branch(dirs):
    assert build(dirs, pillar={"deploy_branch": "release/v1.2"})["deploy_branch"] == "release/v1.2"


def test_bad_health_path_and_data(dirs):
    with pytest.raises(CorpusError, match="health.path must be a URL path"):
        build(dirs, pillar={"health": {"path": "health"}})
    with pytest.raises(CorpusError, match="Setting data must be a mapping"):
        build(dirs, pillar={"data": ["x"]})


@pytest.mark.parametrize("key", settings.COMPUTED)
@pytest.mark.parametrize("layer", ["sample", "private", "pillar", "overrides"])
def test_computed_keys_cannot_be_set(dirs, key, layer):
    if layer in ("sample", "private"):
        kwargs = {layer: f"{key}: x\n"}
        what = "PILLAR.sample" if layer == "sample" else "Private pillar"
    else:
        kwargs = {layer: {key: "x"}}
        what = "Pillar makina-projects:app" if layer == "pillar" else "Call arguments"
    with pytest.raises(CorpusError) as err:
        build(dirs, **kwargs)
    assert str(err.value) == f"{what} sets {key!r}, which corpus computes itself."


def test_malformed_sample_yaml(dirs):
    with pytest.raises(CorpusError) as err:
        build(dirs, sample="data:\n  a: [1, 2\n  b: 3\n")
    path = os.path.join(dirs[1], ".salt", "PILLAR.sample")
    assert str(err.value).startswith(f"PILLAR.sample {path} is not valid YAML at line ")
    assert str(err.value).endswith(".")


def test_malformed_private_pillar_yaml(dirs):
    with pytest.raises(CorpusError, match=r"Private pillar .*init.sls is not valid YAML at line 2\."):
        build(dirs, private="data:\n\t- bad tab\n")


@pytest.mark.parametrize("text,kind", [("- a\n- b\n", "list"), ("just a string\n", "str"),
                                       ("42\n", "int")])
def test_sample_must_be_a_mapping(dirs, text, kind):
    with pytest.raises(CorpusError) as err:
        build(dirs, sample=text)
    assert str(err.value) == "PILLAR.sample {} must be a YAML mapping, not a {}.".format(
        os.path.join(dirs[1], ".salt", "PILLAR.sample"), kind)


def test_empty_sample_is_an_empty_layer(dirs):
    cfg = build(dirs, sample="# only a comment\n")
    assert cfg["data"] == {}


def test_salt_pillar_must_be_a_mapping(dirs):
    with pytest.raises(CorpusError, match="Pillar makina-projects:app must be a mapping"):
        build(dirs, pillar=["env", "dev"])


def test_settings_default_source_is_the_live_release(tmp_path):
    root = str(tmp_path)
    paths = settings.project_paths(root, "app")
    release = os.path.join(paths["releases"], "r1")
    write(os.path.join(release, ".salt", "PILLAR.sample"), "data: {live: yes}\n")
    os.makedirs(paths["pillar"])
    os.symlink(os.path.relpath(release, paths["root"]), paths["current"])
    assert settings.build("app", root)["data"] == {"live": True}


# --------------------------------------------------------------------------- the schema at work

@pytest.mark.parametrize("where", ["sample", "private"])
def test_a_settings_file_that_is_not_utf8_is_one_sentence(dirs, where):
    path = os.path.join(dirs[1], ".salt", "PILLAR.sample") if where == "sample" else \
        os.path.join(dirs[2], "init.sls")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"data:\n  greeting: caf\xe9\n")
    with pytest.raises(CorpusError) as err:
        build(dirs)
    what = "PILLAR.sample" if where == "sample" else "Private pillar"
    assert str(err.value) == f"{what} {path} is not UTF-8 text (line 2)."


@pytest.mark.parametrize("where", ["sample", "private"])
def test_a_settings_file_that_is_a_directory_is_one_sentence(dirs, where):
    path = os.path.join(dirs[1], ".salt", "PILLAR.sample") if where == "sample" else \
        os.path.join(dirs[2], "init.sls")
    os.makedirs(path)
    with pytest.raises(CorpusError) as err:
        build(dirs)
    what = "PILLAR.sample" if where == "sample" else "Private pillar"
    assert str(err.value) == f"{what} {path} is a directory, not a YAML file."


def test_a_utf8_file_with_a_byte_order_mark_is_read(dirs):
    path = os.path.join(dirs[1], ".salt", "PILLAR.sample")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as fh:
        fh.write("\ufeffdata: {greeting: café}\n".encode())
    assert build(dirs)["data"] == {"greeting": "café"}


@pytest.mark.parametrize("layer", ["sample", "private", "pillar", "overrides"])
def test_unknown_keys_are_refused_from_every_layer(dirs, layer):
    kwargs = {layer: "keep_release: 3\n"} if layer in ("sample", "private") else \
        {layer: {"keep_release": 3}}
    with pytest.raises(CorpusError) as err:
        build(dirs, **kwargs)
    assert str(err.value).startswith("Setting keep_release is unknown; known settings are env, ")
    assert str(err.value).endswith("; put your own values under data.")


@pytest.mark.parametrize("text,message", [
    ("environment: [1, 2]\n", ("Setting environment must be a mapping of environment variable "
     "names to strings, numbers or true/false, not [1, 2].")),
    ("health: {timeout: abc}\n", ("Setting health.timeout must be a number of seconds greater "
     "than 0 and at most 3600, not 'abc'.")),
    ("keep_releases: .inf\n", ("Setting keep_releases must be a whole number from 1 to 1000, "
     "not inf.")),
])
def test_bad_values_in_a_sample_are_one_sentence(dirs, text, message):
    with pytest.raises(CorpusError) as err:
        build(dirs, sample=text)
    assert str(err.value) == message


def test_values_are_checked_after_references_resolve(dirs):
    with pytest.raises(CorpusError) as err:
        build(dirs, pillar={"data": {"t": "abc"}, "health": {"timeout": "{data.t}"}})
    assert str(err.value).startswith("Setting health.timeout must be a number of seconds")
    cfg = build(dirs, pillar={"data": {"t": 12}, "health": {"timeout": "{data.t}"}})
    assert cfg["health"]["timeout"] == 12


def test_a_port_reference_to_zero_still_derives_the_port(dirs):
    cfg = build(dirs, pillar={"data": {"port": 0}, "port": "{data.port}"})
    assert cfg["port"] == settings.default_port("app")


def test_the_mapping_stays_a_plain_dict_with_values_as_given(dirs):
    cfg = build(dirs, pillar={"environment": {"WORKERS": 4, "DEBUG": True, "RATIO": 0.5},
                              "lock_timeout": 7, "drain_timeout": 2.5})
    assert type(cfg) is dict and type(cfg["health"]) is dict
    assert cfg["environment"] == {"WORKERS": 4, "DEBUG": True, "RATIO": 0.5}
    assert type(cfg["lock_timeout"]) is int and cfg["drain_timeout"] == 2.5
    cfg["added_by_a_phase"] = 1  # phases may add keys after the build


def test_new_settings_have_their_defaults(dirs):
    cfg = build(dirs)
    assert cfg["run_as"] == "" and cfg["drain_timeout"] == 30
    assert cfg["keep_failed"] == 5 and cfg["bind"] == "127.0.0.1"
    assert cfg["bundle"] == {"source": ""} and cfg["environment"] == {}
    assert cfg["editable_keep"] == [".venv", "node_modules", "__pycache__"]
    assert cfg["web"] == "" and cfg["static_dir"] == ""
    assert build(dirs, pillar={"run_as": "app_1"})["run_as"] == "app_1"


def test_defaults_are_not_shared_between_builds(dirs):
    cfg = build(dirs)
    cfg["editable_keep"].append("x")
    cfg["health"]["path"] = "/changed"
    again = build(dirs)
    assert again["editable_keep"] == [".venv", "node_modules", "__pycache__"]
    assert again["health"]["path"] == "/"
