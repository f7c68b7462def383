"""Golden images on a real node: an image built from a tiny state tree (a file with a known
content and mode, a package already there) with the image's own salt-call, listed; an
environment cloned from it holds the file; a failing state fails the build with the state's
message, keeps its log and leaves no image file; removal is refused while the environment
uses the image, and removes it from the node once the environment is destroyed."""

import glob
import os
import subprocess

import pytest

from mc_project.controller import images
from mc_project.errors import CorpusError
from mc_project.node import image_build

ENV = "imgenv"
TINY_SLS = """/etc/corpus-image-test.txt:
  file.managed:
    - contents: built by an image
    - mode: '0640'

python3:
  pkg.installed
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("states")
    (root / "top.sls").write_text("base:\n  '*':\n    - tiny\n")
    (root / "tiny.sls").write_text(TINY_SLS)
    return str(root)


@pytest.fixture(scope="module")
def built(ctl, node1, tree):
    result = images.build_image(ctl, "tiny", states=tree, node="node1", who="tests")
    assert result["result"], result
    return result


def attach(node, command):
    return subprocess.run(["lxc-attach", "-n", ENV, "-P", node["lxc_path"], "--"] + command,
                          capture_output=True, text=True, timeout=60)


def test_an_image_from_a_state_tree_an_environment_from_it_and_its_removal(ctl, salt_run, node1, built, tree):
    assert built["image"] == "tiny:1"
    listed = {row["ref"]: row for row in images.list_images(ctl.url)}
    tiny = listed["tiny:1"]
    assert tiny["status"] == "ready" and tiny["current"] and tiny["nodes"] == ["node1"]
    assert tiny["digest"].startswith("sha256:") and tiny["size_mb"] > 100 and tiny["states"] == tree
    log = images.get_image(ctl.url, "tiny:1", with_log=True)["log"]
    assert "changed /etc/corpus-image-test.txt" in log and "ok python3" in log
    image_file = image_build.image_file(node1["lxc_path"], "tiny", 1)
    assert os.path.isfile(image_file)

    ret = salt_run.run("mc_cloud.init_env", ENV, "dev", "host=node1", "image=tiny")
    assert ret.returncode == 0, ret
    try:
        shown = attach(node1, ["stat", "-c", "%a %U", "/etc/corpus-image-test.txt"])
        assert shown.stdout.split() == ["640", "root"], shown.stderr
        assert attach(node1, ["cat", "/etc/corpus-image-test.txt"]).stdout.strip() == "built by an image"
        assert attach(node1, ["cat", "/etc/corpus-image"]).stdout.strip() == "tiny:1"
        envs = {row["name"]: row for row in salt_run.run("mc_cloud.list_envs").data}
        assert envs[ENV]["image"] == "tiny:1"
        assert images.get_image(ctl.url, "tiny")["environments"] == [ENV]
        with pytest.raises(CorpusError, match=r"^Image tiny:1 is used by environment\(s\) {}".format(ENV)):
            images.remove_image(ctl, "tiny:1")
        assert os.path.isfile(image_file)
    finally:
        assert salt_run.run("mc_cloud.destroy_env", ENV).returncode == 0
    assert images.remove_image(ctl, "tiny:1") == {"removed": [{"ref": "tiny:1", "nodes": ["node1"]}]}
    assert not os.path.exists(image_file)
    assert "tiny:1" not in {row["ref"] for row in images.list_images(ctl.url)}


def test_a_failing_state_leaves_the_log_and_no_image(ctl, node1, built, tmp_path):
    (tmp_path / "broken.sls").write_text("/etc/x:\n  file.managed:\n    - source: salt://nothing\n")
    failed = images.build_image(ctl, "tiny", states=str(tmp_path), node="node1")
    assert not failed["result"] and failed["status"] == "failed"
    assert "salt://nothing not found" in failed["comment"]
    version = images.get_image(ctl.url, "tiny:2", with_log=True)
    assert version["status"] == "failed" and "salt://nothing not found" in version["log"]
    assert glob.glob(os.path.join(node1["lxc_path"], image_build.IMAGES_DIR, "tiny-2.img*")) == []
