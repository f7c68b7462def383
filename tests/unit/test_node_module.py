"""The mc_lxc execution module: the functions the controller calls, documented, errors as sentences."""

import importlib.util
import inspect
import os

import pytest
from salt.exceptions import CommandExecutionError

from mc_project.errors import CorpusError

MODULE_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "_modules", "mc_lxc.py")

# The node interface the controller's steps call (architecture of the controller, "Node side").
INTERFACE = {
    "setup_node": ["bridge", "subnet", "http_port", "lxc_path"],
    "teardown_node": ["bridge", "subnet", "lxc_path", "state_dir", "table"],
    "golden": ["lxc_path", "mirror", "suite", "disk_size_mb"],
    "clone": ["name", "lxc_path", "disk_size_mb", "exist_ok", "spare", "golden", "image"],
    "build_image": ["name", "version", "lxc_path", "states", "golden"],
    "remove_image": ["name", "version", "lxc_path"],
    "configure": ["name", "hostname", "address", "gateway", "bridge", "lxc_path"],
    "start": ["name", "lxc_path", "wait"],
    "stop": ["name"],
    "destroy": ["name"],
    "info": ["name"],
    "list_containers": ["lxc_path"],
    "resize": ["name", "size_mb"],
    "set_root_password": ["name", "password_hash"],
    "authorize_key": ["name", "public_key"],
    "host_keys": ["name"],
    "map_port": ["external_port", "address", "internal_port", "protocol"],
    "unmap_port": ["external_port", "protocol"],
    "ports": [],
    "add_route": ["domain", "address", "port"],
    "remove_route": ["domain"],
    "routes": [],
    "install_minion": ["name", "master", "minion_id", "wheelhouse", "lxc_path"],
    "attach": ["name", "cmd"],
}


@pytest.fixture
def mc_lxc():
    spec = importlib.util.spec_from_file_location("mc_lxc_under_test", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__context__ = {}
    module.__salt__ = {"config.get": lambda key, default=None: default}
    return module


def test_the_module_offers_the_node_interface_with_its_arguments_and_docs(mc_lxc):
    public = {
        name
        for name, value in vars(mc_lxc).items()
        if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == mc_lxc.__name__
    }
    assert public == set(INTERFACE)
    for name, arguments in INTERFACE.items():
        parameters = list(inspect.signature(getattr(mc_lxc, name)).parameters)
        assert parameters[: len(arguments)] == arguments, name
        assert "CLI Example:" in getattr(mc_lxc, name).__doc__, name
    assert mc_lxc.__virtual__() == "mc_lxc"


def test_a_corpus_error_becomes_one_sentence_and_a_failing_retcode(mc_lxc, tmp_path):
    with pytest.raises(CommandExecutionError) as info:
        mc_lxc.info("ct-missing", lxc_path=str(tmp_path))
    assert str(info.value) == "There is no container ct-missing in {}.".format(tmp_path)
    assert not isinstance(info.value, CorpusError)
    assert mc_lxc.__context__["retcode"] == 1


def test_paths_default_to_the_minion_options(mc_lxc):
    mc_lxc.__salt__ = {
        "config.get": lambda key, default=None: {"mc_lxc:state_dir": "/srv/node"}.get(key, default)
    }
    assert mc_lxc._state_dir(None) == "/srv/node"
    assert mc_lxc._state_dir("/tmp/x") == "/tmp/x"
    assert mc_lxc._lxc_path(None) == "/var/lib/lxc"
    assert mc_lxc._table(None) == "corpus"
