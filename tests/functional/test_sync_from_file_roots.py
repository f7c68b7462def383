"""The loader modules also work when a master serves them from file_roots."""

import os
import shutil

from mc_project import resources


def test_sync_all_installs_modules_from_file_roots(tmp_path, salt_local):
    run = salt_local(base_dir=tmp_path / "salt", projects_root=tmp_path / "projects")
    file_root = os.path.join(run.base_dir, "srv", "salt")
    for kind in ("modules", "states", "runners"):
        shutil.copytree(resources.resource_path("_" + kind), os.path.join(file_root, "_" + kind))

    synced = run("saltutil.sync_all", check=True).local
    assert "modules.mc_project" in synced["modules"]
    assert "states.mc_project" in synced["states"]
    extmods = os.path.join(run.base_dir, "var", "cache", "salt", "minion", "extmods")
    assert os.path.isfile(os.path.join(extmods, "modules", "mc_project.py"))
    assert os.path.isfile(os.path.join(extmods, "states", "mc_project.py"))

    settings = run("mc_project.settings", "synced", check=True).local
    assert settings["name"] == "synced"
    assert settings["paths"]["root"] == os.path.join(str(tmp_path / "projects"), "synced")
