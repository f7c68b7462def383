"""The package makes corpus visible to Salt, from a checkout and once built.

These run the real ``salt-call --local`` of the test environment with a
configuration written by ``mc_project.localsalt``: no master, no sync, no root.
"""

import json
import os
import stat
import subprocess
import sys
from importlib import metadata

import pytest

from mc_project import resources

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE_TYPES = ("modules", "states", "runners")


def tree_files(top):
    """Map each file under ``top`` (bytecode aside) to its permission bits."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            if filename.endswith((".pyc", ".pyo", ".swp", "~")):
                continue
            path = os.path.join(dirpath, filename)
            found[os.path.relpath(path, top)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def test_loader_dirs_hold_the_mc_project_modules():
    dirs = resources.loader_dirs()
    for loader_type in CORE_TYPES:
        assert len(dirs[loader_type]) == 1
        path = dirs[loader_type][0]
        assert os.path.isabs(path)
        assert os.path.isfile(os.path.join(path, "mc_project.py")), path
    for paths in dirs.values():
        assert not isinstance(paths, str)  # Salt refuses a bare string


def test_state_tree_and_hooks_are_found():
    assert os.path.isdir(os.path.join(resources.salt_tree(), "makina-projects"))
    assert os.path.isfile(os.path.join(resources.hooks_dir(), "pre-receive"))


def test_salt_loader_entry_point_is_declared():
    points = metadata.entry_points(group="salt.loader")
    ours = [point for point in points if point.name == "corpus"]
    assert len(ours) == 1
    assert ours[0].value == "mc_project.resources:loader_dirs"
    assert ours[0].load()() == resources.loader_dirs()


def test_salt_call_lists_the_mc_project_module_without_sync(salt_local, tmp_path):
    run = salt_local(projects_root=tmp_path / "projects")

    result = run("sys.list_modules", check=True)
    assert "mc_project" in result.local

    result = run("sys.list_functions", "mc_project", check=True)
    for function in ("settings", "init_project", "deploy"):
        assert "mc_project." + function in result.local

    result = run("sys.list_state_modules", check=True)
    assert "mc_project" in result.local
    # Nothing was synced: the modules came from the entry point.
    extmods = os.path.join(run.base_dir, "var", "cache", "salt", "minion", "extmods")
    assert not os.path.exists(os.path.join(extmods, "modules", "mc_project.py"))


def test_runner_dirs_come_from_the_entry_point(tmp_path):
    import salt.config
    import salt.loader

    opts = salt.config.master_config(str(tmp_path / "master"))
    dirs = salt.loader._module_dirs(opts, "runners", "runner")
    assert resources.loader_dirs()["runners"][0] in dirs


def test_local_minion_config_stays_under_its_base_dir(salt_local, tmp_path):
    projects_root = tmp_path / "projects"
    run = salt_local(
        base_dir=tmp_path / "salt",
        projects_root=projects_root,
        pillar={"makina-projects": {"demo": {"port": 8080}}},
        extra={"mc_project": {"keep_releases": 3}},
    )
    assert run.config_dir == str(tmp_path / "salt" / "etc" / "salt")

    rc, data, _, stderr = run("test.ping")
    assert rc == 0, stderr
    assert data == {"local": True}

    assert run("config.get", "mc_project:projects_root").local == str(projects_root)
    assert run("config.get", "mc_project:keep_releases").local == 3
    cachedir = run("config.get", "cachedir").local
    assert cachedir == str(tmp_path / "salt" / "var" / "cache" / "salt" / "minion")
    assert run("pillar.get", "makina-projects:demo:port", "unmask=True").local == 8080


def test_salt_local_reports_failures(salt_local, tmp_path):
    run = salt_local()
    result = run("mc_project.no_such_function")
    assert result.returncode != 0


def test_build_ships_loader_modules_state_tree_and_hooks(tmp_path):
    """A regular (non-editable) build copies the trees into mc_project/_data."""
    build_lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build_lib)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    data_dir = build_lib / "mc_project" / "_data"
    for name in ("_modules", "_states", "_runners"):
        assert (data_dir / name / "mc_project.py").is_file()
    assert (data_dir / "hooks" / "pre-receive").is_file()
    for name in ("_modules", "_states", "_runners", "salt", "hooks"):
        source_files = tree_files(os.path.join(REPO_ROOT, name))
        assert tree_files(str(data_dir / name)) == source_files, name
        for relative, mode in source_files.items():
            if mode & stat.S_IXUSR:  # hooks must stay executable
                assert os.access(data_dir / name / relative, os.X_OK), relative

    # The built copy of mc_project.resources points at its own _data copies.
    probe = (
        "import json, mc_project.resources as r; "
        "print(json.dumps([r.loader_dirs(), r.salt_tree(), r.hooks_dir()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ, PYTHONPATH=str(build_lib)),
        cwd=str(tmp_path),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    loader, tree, hooks = json.loads(out)
    for loader_type in CORE_TYPES:
        assert loader[loader_type] == [str(data_dir / ("_" + loader_type))]
    assert tree == str(data_dir / "salt")
    assert hooks == str(data_dir / "hooks")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
