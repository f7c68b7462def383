"""Project names that YAML would type stay the text typed, through a real salt-call.

``salt-call mc_project.init_project 123`` makes project "123", not an error about the
int 123; ``mc_project.status true`` speaks of project "true".
"""

import os


def test_a_project_named_123_is_created_and_read_with_its_pillar(tmp_path, salt_local):
    root = tmp_path / "projects"
    root.mkdir()
    run = salt_local(projects_root=root,
                     pillar={"makina-projects": {123: {"data": {"from": "pillar"}}}})
    created = run("mc_project.init_project", "123", check=True).local
    assert os.path.join(str(root), "123", "git", "project.git") in created
    assert sorted(os.listdir(root)) == ["123"]

    cfg = run("mc_project.settings", "123", check=True).local
    assert cfg["name"] == "123"
    assert cfg["paths"]["root"] == os.path.join(str(root), "123")
    assert cfg["data"] == {"from": "pillar"}  # the pillar key 123 is an int in YAML

    status = run("mc_project.status", "123", check=True).local
    assert status is not None


def test_status_true_and_0123_speak_of_those_projects(tmp_path, salt_local):
    root = tmp_path / "projects"
    root.mkdir()
    run = salt_local(projects_root=root)
    for typed in ("true", "0123", "null"):
        res = run("mc_project.status", typed)
        assert res.returncode != 0
        expected = f"Project layout under {os.path.join(str(root), typed)} is missing"
        assert expected in res.stdout + res.stderr, res.stdout + res.stderr
        assert "Traceback" not in res.stdout + res.stderr


def test_a_short_all_digit_commit_is_not_padded(tmp_path, salt_local):
    root = tmp_path / "projects"
    root.mkdir()
    run = salt_local(projects_root=root)
    run("mc_project.init_project", "app", check=True)
    res = run("mc_project.deploy", "app", "rev=1234567")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    # git was asked for 1234567 as typed (it is no commit of this empty repository).
    assert "Commit 1234567 is not in " in out and "0001234567" not in out, out
