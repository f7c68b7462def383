"""The commented samples in pillar-samples/ are valid against the schemas they document."""

import importlib.util
import inspect
import os

import pytest
import yaml

from mc_project.common import vocabulary
from mc_project.controller import config as controller_config
from mc_project.controller import nodes
from mc_project.errors import CorpusError
from mc_project.node import schema as node_schema
from mc_project.project import schema as project_schema
from mc_project.project import settings

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "pillar-samples")


def load(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as fh:
        text = fh.read()
    return text, yaml.safe_load(text)


def assert_commented(text, keys, indent):
    """Each of ``keys`` at ``indent`` spaces has a comment on the line(s) just above it."""
    lines = text.splitlines()
    for key in keys:
        found = [i for i, line in enumerate(lines) if line.startswith(" " * indent + key + ":")]
        assert found, f"{key} is not in the sample"
        above = lines[found[0] - 1].strip()
        assert above.startswith("#"), f"{key} has no comment above it"


def test_the_samples_are_there():
    assert sorted(os.listdir(SAMPLES)) == ["compute-node.sls", "controller.sls", "project.sls"]


# --------------------------------------------------------------------------- project

def test_the_project_sample_is_valid():
    _text, sample = load("project.sls")
    projects = sample["makina-projects"]
    assert list(projects) == ["myapp"]
    layer = projects["myapp"]
    assert project_schema.validate(layer) is layer
    assert os.path.isabs(sample["mc_project"]["projects_root"])


def test_the_project_sample_sets_every_setting_with_a_comment():
    text, sample = load("project.sls")
    layer = sample["makina-projects"]["myapp"]
    assert list(layer) == list(project_schema.ProjectSettings.model_fields)
    assert_commented(text, layer, indent=4)
    assert_commented(text, project_schema.HealthSettings.model_fields, indent=6)
    assert set(layer["health"]) == set(project_schema.HealthSettings.model_fields)
    assert set(layer["bundle"]) == set(project_schema.BundleSettings.model_fields)


def test_the_project_sample_builds_a_mapping(tmp_path):
    _, sample = load("project.sls")
    cfg = settings.build("myapp", str(tmp_path), pillar=sample["makina-projects"]["myapp"])
    assert cfg["env"] == "prod" and cfg["mode"] == "final"
    assert cfg["environment"]["DATABASE_PATH"] == os.path.join(cfg["paths"]["data"], "db.sqlite3")
    assert cfg["data"]["db_name"] == "myapp"
    assert cfg["port"] == settings.default_port("myapp")


def test_the_project_sample_says_the_defaults():
    """Where the sample keeps a default, its value is the default."""
    _, sample = load("project.sls")
    layer = sample["makina-projects"]["myapp"]
    defaults = project_schema.defaults()
    for key in ("mode", "deploy_branch", "keep_releases", "keep_failed", "lock_timeout", "port",
                "bind", "web", "static_dir", "editable_keep", "run_as", "drain_timeout"):
        assert layer[key] == defaults[key], key
    prod = settings.merge(defaults, project_schema.ENV_DEFAULTS["prod"])
    assert layer["health"]["timeout"] == prod["health"]["timeout"]
    assert layer["health"]["status"] == defaults["health"]["status"]


def test_a_broken_project_sample_is_refused():
    _, sample = load("project.sls")
    layer = sample["makina-projects"]["myapp"]
    layer["health"]["timeout"] = "abc"
    with pytest.raises(CorpusError, match=r"^Setting health\.timeout must be a number"):
        project_schema.validate(layer)


# --------------------------------------------------------------------------- controller

def controller(sample):
    return controller_config.controller_settings({"cachedir": "/var/cache/salt/master",
                                                  "corpus": sample["corpus"]})


def test_the_controller_sample_is_valid():
    _, sample = load("controller.sls")
    result = controller(sample)
    for key, value in sample["corpus"].items():
        assert result[key] == value, key
    assert sample["ext_pillar"] == [{"corpus_inventory": {}}]
    assert sample["pillar_opts"] is False


def test_the_controller_sample_sets_every_option_with_a_comment():
    text, sample = load("controller.sls")
    corpus = sample["corpus"]
    assert set(corpus) == set(controller_config.TOP_LEVEL) | set(controller_config.SECTIONS)
    assert_commented(text, corpus, indent=2)
    for section, keys in controller_config.SECTIONS.items():
        assert set(corpus[section]) == set(keys), section
        assert_commented(text, keys, indent=4)


def test_the_controller_sample_says_the_section_defaults_where_it_keeps_them():
    _, sample = load("controller.sls")
    corpus = sample["corpus"]
    for section, key in (("dns", "server_id"), ("dns", "ttl"), ("smtp", "port"),
                         ("smtp", "timeout"), ("lxc", "mirror"), ("lxc", "suite"),
                         ("lxc", "disk_size_mb"), ("lxc", "spare")):
        assert corpus[section][key] == controller_config.SECTIONS[section][key][1]


def test_a_broken_controller_sample_is_refused():
    _, sample = load("controller.sls")
    sample["corpus"]["smtp"]["port"] = "25"
    with pytest.raises(CorpusError, match="corpus:smtp:port must be an integer"):
        controller(sample)


# --------------------------------------------------------------------------- compute node

def test_the_compute_node_sample_is_valid():
    _, sample = load("compute-node.sls")
    options = sample["link_node"]
    node_schema.validate(options, node_schema.LinkNodeOptions, "Node option")
    node_schema.validate(sample["mc_lxc"], node_schema.NodeMinionOptions, "Minion option mc_lxc:")
    # The minion options are what link_node writes from its options.
    paths = nodes.node_paths(options["prefix"])
    written = yaml.safe_load(nodes.minion_config(
        paths, "node1", "192.0.2.1", {"ret_port": 4506, "publish_port": 4505},
        options["lxc_path"], options["nft_table"]))
    assert written["mc_lxc"] == sample["mc_lxc"]
    # Calls run in threads of the node's minion, not a process each; no Salt mine.
    assert written["multiprocessing"] is False and written["mine_enabled"] is False


def test_the_compute_node_sample_sets_every_option_with_a_comment():
    text, sample = load("compute-node.sls")
    assert list(sample["link_node"]) == list(node_schema.LinkNodeOptions.model_fields)
    assert list(sample["mc_lxc"]) == list(node_schema.NodeMinionOptions.model_fields)
    assert_commented(text, sample["link_node"], indent=2)


def test_the_node_options_are_link_nodes_arguments_with_its_defaults():
    runner = os.path.join(os.path.dirname(__file__), "..", "..", "_runners", "mc_cloud.py")
    spec = importlib.util.spec_from_file_location("mc_cloud_runner_under_test", runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = inspect.signature(module.link_node).parameters
    fields = node_schema.LinkNodeOptions.model_fields
    assert list(params) == list(fields)
    for name, param in params.items():
        if param.default is inspect.Parameter.empty:
            assert fields[name].is_required(), name
        else:
            assert fields[name].default == param.default, name


def test_the_node_schema_applies_link_nodes_rules():
    for ours, theirs in ((node_schema.NAME_RE, vocabulary.NODE_NAME_RE), (node_schema.BRIDGE_RE, vocabulary.BRIDGE_RE),
                         (node_schema.PATH_RE, vocabulary.PATH_RE)):
        assert ours.pattern == theirs.pattern


@pytest.mark.parametrize("key,value,message", [
    ("host", "a b", "Node option host must be an address or a DNS name without spaces, not 'a b'."),
    ("port", "22", "Node option port must be a port from 1 to 65535, not '22'."),
    ("port", True, "Node option port must be a port from 1 to 65535, not True."),
    ("slots", -1, "Node option slots must be a whole number from 0 to 100000, not -1."),
    ("subnet", "10.0.0.0/30", ("Node option subnet must be an IPv4 network from /8 to /29 such as "
                              "10.20.0.0/24, or empty, not '10.0.0.0/30'.")),
    ("prefix", "srv/corpus", ("Node option prefix must be an absolute path of plain characters, "
                             "not 'srv/corpus'.")),
    ("bridge", "a-very-long-bridge", ("Node option bridge must be a bridge name of 1 to 15 letters, "
                                     "digits, '.', '_' or '-', not 'a-very-long-bridge'.")),
    ("nft_table", "1x", ("Node option nft_table must be an nftables table name (a letter, then "
                        "letters, digits or '_'), or empty, not '1x'.")),
    ("nat_ports", "80-90", ("Node option nat_ports must be a port range MIN-MAX within 1024-65535, "
                           "not '80-90'.")),
    ("colour", "blue", ("Node option colour is unknown; known options are host, user, key, port, "
                       "name, slots, subnet, http_port, prefix, lxc_path, dns_name, bridge, "
                       "nft_table, nat_ports.")),
])
def test_bad_node_options_are_one_sentence(key, value, message):
    _, sample = load("compute-node.sls")
    options = dict(sample["link_node"], **{key: value})
    with pytest.raises(CorpusError) as err:
        node_schema.validate(options, node_schema.LinkNodeOptions, "Node option")
    assert str(err.value) == message


def test_a_node_needs_its_host():
    with pytest.raises(CorpusError) as err:
        node_schema.validate({}, node_schema.LinkNodeOptions, "Node option")
    assert str(err.value) == \
        "Node option host is required: an address or a DNS name without spaces."
