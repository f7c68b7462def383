"""A node's image build without LXC: the state tree written into an image (paths kept inside
it), what salt-call is asked to apply, its JSON answer read into a log and the failed states'
messages, image file names; and a spare made from the golden image keeps the record it had."""

import base64
import json
import os

import pytest

from mc_project.errors import CorpusError
from mc_project.node import image_build, lxc, spares


def entry(text, mode=0o644):
    return {"content": base64.b64encode(text.encode()).decode(), "mode": mode}


def test_the_tree_is_written_with_its_modes_and_kept_inside(tmp_path):
    image_build.write_tree({"top.sls": entry("base: {}\n"), "app/init.sls": entry("x", 0o600)}, str(tmp_path))
    assert (tmp_path / "app" / "init.sls").read_text() == "x"
    assert os.stat(tmp_path / "app" / "init.sls").st_mode & 0o777 == 0o600
    for bad in ("../evil.sls", "/etc/passwd", "a//b.sls", "a/./b.sls"):
        with pytest.raises(CorpusError, match="is not a relative path inside the state tree"):
            image_build.write_tree({bad: entry("x")}, str(tmp_path / "other"))
    assert not (tmp_path / "evil.sls").exists()


def test_what_salt_call_applies():
    assert image_build.salt_call_args({"top.sls": 1, "a.sls": 1}) == ["state.highstate"]
    assert image_build.salt_call_args({"b.sls": 1, "a.sls": 1, "web/init.sls": 1, "files/x": 1,
                                       "web/other.sls": 1}) == ["state.apply", "a,b,web"]
    with pytest.raises(CorpusError, match="no .sls file"):
        image_build.salt_call_args({"README": 1})


def test_salt_calls_answer_becomes_the_log_and_the_failures():
    answer = {"local": {
        "file_|-motd_|-/etc/motd_|-managed": {"__id__": "motd", "result": True, "changes": {"diff": "x"},
                                               "comment": "File /etc/motd updated", "__run_num__": 0},
        "pkg_|-git_|-git_|-installed": {"__id__": "git", "result": True, "changes": {},
                                        "comment": "All specified packages are already installed", "__run_num__": 1},
        "file_|-bad_|-/etc/x_|-managed": {"__id__": "bad", "result": False, "changes": {},
                                          "comment": "Source file salt://nothing not found", "__run_num__": 2}}}
    lines, failures = image_build.state_report(json.dumps(answer))
    assert lines == ["changed motd: File /etc/motd updated",
                     "ok git: All specified packages are already installed",
                     "failed bad: Source file salt://nothing not found"]
    assert failures == ["bad: Source file salt://nothing not found"]
    lines, failures = image_build.state_report(json.dumps({"local": ["Rendering SLS 'base:a' failed: bad yaml"]}))
    assert failures == ["Rendering SLS 'base:a' failed: bad yaml"]
    assert image_build.state_report("not json") == ([], [])


def test_image_names_and_files():
    assert image_build.image_file("/var/lib/lxc", "web", 3).endswith("/.corpus-images/web-3.img")
    assert image_build.image_file("/var/lib/lxc", "web", 3, ".log").endswith("/.corpus-images/web-3.log")
    for name in ("Web", "3web", "web_1", "", None, "a" * 41):
        with pytest.raises(CorpusError, match="is not an image name"):
            image_build.check_name(name)
    for version in (0, -1, "2", True):
        with pytest.raises(CorpusError, match="is not an image version"):
            image_build.check_version(version)


def test_a_spare_of_the_golden_image_keeps_its_record_and_another_image_names_its_file(tmp_path):
    golden = lxc.rootdev_path(lxc.GOLDEN_NAME, str(tmp_path))
    os.makedirs(os.path.dirname(golden))
    with open(golden, "wb") as fh:
        fh.truncate(4 << 20)
    record = json.loads(spares._made_from(str(tmp_path), None))
    assert set(record) == {"golden", "disk_size_mb"}  # as before images: a ready spare stays usable
    other = image_build.image_file(str(tmp_path), "web", 1)
    os.makedirs(os.path.dirname(other))
    with open(other, "wb") as fh:
        fh.truncate(4 << 20)
    assert json.loads(spares._made_from(str(tmp_path), None, other))["source"] == other
    assert spares._made_from(str(tmp_path), None) != spares._made_from(str(tmp_path), None, other)
