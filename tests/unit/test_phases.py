"""Phases: rendering (project override or default), errors, high data shape, result lines."""

import os

import pytest

from mc_project import resources
from mc_project.project import phases, recipe, settings
from mc_project.errors import CorpusError

SALT_GLOBALS = {"salt": {"file.file_exists": os.path.isfile}, "grains": {"id": "unit"},
                "pillar": {}, "opts": {"corpus_python": "python3.11"}}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    return str(d)


@pytest.fixture
def cfg(tmp_path, src):
    c = settings.build("app", str(tmp_path / "projects"), overrides={"env": "staging"},
                       source_dir=src, release_id="r1", commit="c" * 40)
    os.makedirs(c["app_root"])
    return c


def sls(src, phase, text):
    write(os.path.join(src, ".salt", "{}.sls".format(phase)), text)


def test_every_phase_has_a_default(src):
    for phase in recipe.ALL_PHASES:
        path = phases.sls_path(phase, src)
        assert path == os.path.join(resources.salt_tree(), "makina-projects", "phases", phase + ".sls")
        assert os.path.isfile(path)


def test_defaults_render_nothing_for_an_empty_project(src, cfg):
    for phase in recipe.ALL_PHASES:
        assert phases.render(phase, cfg, src, SALT_GLOBALS) == {}


def test_default_build_leaves_dependencies_to_corpus(src, cfg):
    """The virtualenv is corpus's install_dependencies step, not a state of the phase."""
    write(os.path.join(cfg["app_root"], "requirements.txt"), "requests\n")
    assert phases.render("build", cfg, src, SALT_GLOBALS) == {}


def test_project_override_wins_over_the_default(src, cfg):
    write(os.path.join(cfg["app_root"], "requirements.txt"), "requests\n")
    sls(src, "build", "{{ cfg.name }}-assets:\n  cmd.run:\n    - name: make assets {{ phase }}\n")
    assert phases.sls_path("build", src) == os.path.join(src, ".salt", "build.sls")
    high = phases.render("build", cfg, src, SALT_GLOBALS)
    assert list(high) == ["app-assets"]
    assert high["app-assets"]["cmd"] == ["run", {"name": "make assets build"}, {"order": 1},
                                         {"failhard": True}]
    # other phases still come from corpus
    assert phases.sls_path("configure", src).startswith(resources.salt_tree())


def test_project_sls_can_call_the_corpus_macro(src, cfg):
    write(os.path.join(cfg["app_root"], "requirements.txt"), "requests\n")
    sls(src, "build", '{%- from "makina-projects/macros.jinja" import build with context %}\n'
                      "{{ build(cfg) }}\n"
                      "{{ cfg.name }}-after:\n  cmd.run:\n    - name: echo after\n")
    high = phases.render("build", cfg, src, SALT_GLOBALS)
    assert list(high) == ["app-after"]
    assert high["app-after"]["cmd"][-2:] == [{"order": 1}, {"failhard": True}]


def test_template_sees_cfg_salt_grains_pillar_opts(src, cfg):
    sls(src, "configure", "t:\n  test.nop:\n    - mode: {{ cfg.mode }}\n    - grain: {{ grains.id }}\n"
                          "    - py: {{ opts.corpus_python }}\n    - data: {{ cfg.paths.data }}\n"
                          "    - exists: {{ salt['file.file_exists'](cfg.paths.data) }}\n")
    high = phases.render("configure", cfg, src, SALT_GLOBALS)
    assert high["t"]["test"] == ["nop", {"mode": "cooking"}, {"grain": "unit"}, {"py": "python3.11"},
                                 {"data": cfg["paths"]["data"]}, {"exists": False}, {"order": 1},
                                 {"failhard": True}]


def test_phases_share_the_mapping_by_reference(src, cfg):
    sls(src, "gather_variables", "{% do cfg.data.update({'db_url': 'sqlite:///' ~ cfg.paths.data ~ '/db'}) %}\n")
    sls(src, "configure", "w:\n  file.managed:\n    - contents: {{ cfg.data.db_url }}\n")
    assert phases.render("gather_variables", cfg, src, SALT_GLOBALS) == {}
    assert cfg["data"]["db_url"] == "sqlite:///{}/db".format(cfg["paths"]["data"])
    high = phases.render("configure", cfg, src, SALT_GLOBALS)
    assert high["w"]["file"][1] == {"contents": cfg["data"]["db_url"]}


def test_undefined_variable_names_the_phase(src, cfg):
    sls(src, "configure", "x:\n  cmd.run:\n    - name: {{ cfg.nope }}\n")
    with pytest.raises(CorpusError) as err:
        phases.render("configure", cfg, src, SALT_GLOBALS)
    msg = str(err.value)
    assert msg.startswith("Phase configure (.salt/configure.sls) does not render")
    assert "nope" in msg


def test_jinja_syntax_error_names_the_phase_and_line(src, cfg):
    sls(src, "post_deploy", "a:\n  cmd.run:\n    - name: x\n{% if %}\n")
    with pytest.raises(CorpusError, match=r"^Phase post_deploy \(\.salt/post_deploy\.sls\) does not "
                                          r"render at line 4: "):
        phases.render("post_deploy", cfg, src, SALT_GLOBALS)


def test_missing_import_names_the_phase(src, cfg):
    sls(src, "build", '{% from "makina-projects/nope.jinja" import x %}\n')
    with pytest.raises(CorpusError, match=r"^Phase build \(\.salt/build\.sls\) does not render"):
        phases.render("build", cfg, src, SALT_GLOBALS)


def test_yaml_error(src, cfg):
    sls(src, "deploy", "a:\n  cmd.run:\n    - name: [unclosed\n")
    with pytest.raises(CorpusError, match=r"^Phase deploy \(\.salt/deploy\.sls\) renders invalid YAML: "):
        phases.render("deploy", cfg, src, SALT_GLOBALS)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "3\n"])
def test_non_mapping(src, cfg, text):
    sls(src, "configure", text)
    with pytest.raises(CorpusError) as err:
        phases.render("configure", cfg, src, SALT_GLOBALS)
    assert str(err.value) == "Phase configure (.salt/configure.sls) must render a mapping of states."


def test_state_that_is_not_a_mapping(src, cfg):
    sls(src, "configure", "a: just a string\n")
    with pytest.raises(CorpusError) as err:
        phases.render("configure", cfg, src, SALT_GLOBALS)
    assert str(err.value) == "Phase configure: state 'a' is not a mapping."


def test_state_arguments_must_be_a_list(src, cfg):
    sls(src, "configure", "a:\n  cmd.run:\n    name: x\n")
    with pytest.raises(CorpusError) as err:
        phases.render("configure", cfg, src, SALT_GLOBALS)
    assert str(err.value) == "Phase configure: the arguments of cmd.run in state 'a' must be a list."


def test_ordered_shapes_high_data():
    high = {
        "first": {"cmd.run": [{"name": "echo 1"}]},
        "second": {"file.managed": [{"name": "/x"}, {"order": 99}], "__sls__": "mine"},
        "third": {"test.nop": None},
        "fourth": {"pkg": ["installed", {"name": "curl"}]},
    }
    out = phases._ordered(high, "configure")
    assert out is high
    assert out == {
        "first": {"cmd": ["run", {"name": "echo 1"}, {"order": 1}, {"failhard": True}],
                  "__sls__": "corpus.configure", "__env__": "base"},
        "second": {"file": ["managed", {"name": "/x"}, {"order": 99}, {"failhard": True}], "__sls__": "mine",
                   "__env__": "base"},
        "third": {"test": ["nop", {"order": 3}, {"failhard": True}], "__sls__": "corpus.configure",
                  "__env__": "base"},
        "fourth": {"pkg": ["installed", {"name": "curl"}, {"order": 4}, {"failhard": True}],
                   "__sls__": "corpus.configure", "__env__": "base"},
    }


def test_runs_in_per_mode():
    assert [p for p in recipe.PHASES if not recipe.runs("editable", p)] == ["bundle"]
    assert [p for p in recipe.PHASES if not recipe.runs("final", p)] == ["build", "post_build"]
    assert all(recipe.runs("cooking", p) for p in recipe.PHASES)
    assert recipe.PHASES[0] == "backup" and recipe.PHASES[-1] == "post_install"
    assert recipe.ALL_PHASES[-1] == "rollback"


def ret(state_id, result, run_num, comment="", changes=None, duration=1.5):
    return {"__id__": state_id, "result": result, "__run_num__": run_num, "comment": comment,
            "changes": changes or {}, "duration": duration, "name": state_id}


RESULTS = {
    "cmd_|-b_|-false_|-run": ret("b", False, 1, "Command \"false\" run", {"retcode": 2, "stderr": "boom"}),
    "cmd_|-a_|-true_|-run": ret("a", True, 0, "ok", {"retcode": 0, "stdout": "line1\nline2"}),
    "file_|-c_|-/x_|-managed": ret("c", False, 2, "Parent directory not present"),
    "test_|-d_|-d_|-nop": ret("d", None, 3, "would change"),
}


def test_failures():
    assert phases.failures(RESULTS) == ["b exited 2", "c Parent directory not present"]
    assert phases.failures({k: v for k, v in RESULTS.items() if v["result"] is not False}) == []
    assert phases.failures({}) == []
    assert phases.failures(["Rendering SLS failed", "another"]) == ["Rendering SLS failed", "another"]
    assert phases.failures("weird") == ["unexpected state return: 'weird'"]


def test_describe():
    assert phases.describe(RESULTS) == [
        "  [ok] a (2 ms)",
        "      line1",
        "      line2",
        "  [FAILED] b (2 ms)",
        "      boom",
        '      Command "false" run',
        "  [FAILED] c (2 ms)",
        "      Parent directory not present",
        "  [--] d (2 ms)",
    ]
    assert phases.describe(["compile error"]) == ["compile error"]
    assert phases.describe("odd") == ["odd"]
