"""The wheelhouse of an installed (non-editable) corpus, and the paths corpus-controller writes.

Installs are faked in a temporary site directory: a wheel-made one (``.dist-info`` with a
RECORD) and a legacy ``setup.py install`` one (``.egg-info`` with installed-files.txt).
"""

import base64
import hashlib
import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import pytest

from mc_project import resources
from mc_project.controller import cli, wheelhouse
from mc_project.errors import CorpusError

METADATA = "Metadata-Version: 2.1\nName: corpus\nVersion: 0.1.0\nSummary: test\n"
REQUIRES = ["salt==3008.3", "PyYAML"]
PACKAGE = {
    "mc_project/__init__.py": "__version__ = '0.1.0'\n",
    "mc_project/resources.py": "# resources\n",
    "mc_project/_data/_runners/mc_cloud.py": "# a runner\n",
    "mc_project/_data/hooks/pre-receive": "#!/bin/sh\nexit 0\n",
}
ENTRY_POINTS = "[console_scripts]\ncorpus-controller = mc_project.controller.cli:main\n"


def record_line(site, name):
    with open(os.path.join(site, name), "rb") as fh:
        data = fh.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "{},sha256={},{}".format(name, digest, len(data))


def write(site, name, text, mode=0o644):
    path = os.path.join(site, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path


def write_package(site):
    for name, text in PACKAGE.items():
        write(site, name, text, 0o755 if "hooks/" in name else 0o644)
    write(site, "mc_project/__pycache__/__init__.cpython-311.pyc", "byte code")


def dist_info_install(tmp_path):
    """A corpus installed from a wheel: its RECORD lists every file, scripts and byte-code too."""
    site = str(tmp_path / "site")
    write_package(site)
    info = "corpus-0.1.0.dist-info"
    write(site, info + "/METADATA", METADATA + "".join("Requires-Dist: {}\n".format(r) for r in REQUIRES))
    write(site, info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: setuptools\nRoot-Is-Purelib: true\n"
                                 "Tag: py3-none-any\n")
    write(site, info + "/entry_points.txt", ENTRY_POINTS)
    write(site, info + "/top_level.txt", "mc_project\n")
    write(site, info + "/INSTALLER", "pip\n")
    write(site, info + "/REQUESTED", "")
    write(site, info + "/direct_url.json", json.dumps({"dir_info": {}, "url": "file:///src"}))
    names = sorted(list(PACKAGE) + ["mc_project/__pycache__/__init__.cpython-311.pyc"] + [
        info + "/" + name for name in ("METADATA", "WHEEL", "entry_points.txt", "top_level.txt",
                                       "INSTALLER", "REQUESTED", "direct_url.json")])
    lines = [record_line(site, name) for name in names]
    lines += ["../../../bin/corpus-controller,sha256=x,10", info + "/RECORD,,"]
    write(site, info + "/RECORD", "\n".join(lines) + "\n")
    return site, importlib.metadata.PathDistribution(pathlib.Path(site, info))


def egg_info_install(tmp_path):
    """A corpus installed by the legacy ``setup.py install``: an .egg-info and no RECORD."""
    site = str(tmp_path / "site")
    write_package(site)
    info = "corpus-0.1.0-py3.11.egg-info"
    write(site, info + "/PKG-INFO", METADATA)
    write(site, info + "/requires.txt", "\n".join(REQUIRES) + "\n\n[test]\npytest\n")
    write(site, info + "/entry_points.txt", ENTRY_POINTS)
    write(site, info + "/top_level.txt", "mc_project\n")
    write(site, info + "/SOURCES.txt", "setup.py\nmc_project/__init__.py\n")
    listed = ["../" + name for name in sorted(PACKAGE)] + [
        "../mc_project/__pycache__/__init__.cpython-311.pyc", "../../../../bin/corpus-controller",
        "PKG-INFO", "SOURCES.txt", "entry_points.txt", "requires.txt", "top_level.txt"]
    write(site, info + "/installed-files.txt", "\n".join(listed) + "\n")
    return site, importlib.metadata.PathDistribution(pathlib.Path(site, info))


INSTALLS = {"dist-info": dist_info_install, "egg-info": egg_info_install}


def read_wheel(path):
    with zipfile.ZipFile(path) as wheel:
        return {info.filename: (wheel.read(info), info.external_attr >> 16) for info in wheel.infolist()}


@pytest.mark.parametrize("kind", sorted(INSTALLS))
def test_the_wheel_of_an_installed_corpus_holds_its_files_and_a_fresh_record(tmp_path, kind):
    site, dist = INSTALLS[kind](tmp_path)
    path = wheelhouse.build_installed_wheel(dist, str(tmp_path / "wheels"))
    assert os.path.basename(path) == "corpus-0.1.0-py3-none-any.whl"
    members = read_wheel(path)
    info = "corpus-0.1.0.dist-info/"
    assert sorted(members) == sorted(list(PACKAGE) + [
        info + name for name in ("METADATA", "WHEEL", "entry_points.txt", "top_level.txt", "RECORD")])
    assert list(members)[-1] == info + "RECORD"
    for name, text in PACKAGE.items():
        assert members[name][0] == text.encode()
    assert members["mc_project/_data/hooks/pre-receive"][1] & 0o111
    assert not members["mc_project/__init__.py"][1] & 0o111
    metadata = members[info + "METADATA"][0].decode()
    assert metadata.startswith(METADATA)
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")][:2] == [
        "Requires-Dist: " + requirement for requirement in REQUIRES]
    assert members[info + "entry_points.txt"][0].decode() == ENTRY_POINTS
    record = members[info + "RECORD"][0].decode().splitlines()
    assert record[-1] == info + "RECORD,,"
    for line in record[:-1]:
        name, digest, size = line.split(",")
        data = members[name][0]
        assert int(size) == len(data)
        assert digest == "sha256=" + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
    # The same files make the same wheel, byte for byte.
    with open(path, "rb") as fh:
        first = fh.read()
    with open(wheelhouse.build_installed_wheel(dist, str(tmp_path / "again")), "rb") as fh:
        assert fh.read() == first


def test_pip_installs_the_wheel_of_an_installed_corpus(tmp_path):
    _, dist = dist_info_install(tmp_path)
    path = wheelhouse.build_installed_wheel(dist, str(tmp_path / "wheels"))
    target = tmp_path / "target"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                             "--target", str(target), path], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert (target / "mc_project" / "_data" / "_runners" / "mc_cloud.py").is_file()
    assert os.access(target / "mc_project" / "_data" / "hooks" / "pre-receive", os.X_OK)


def test_an_installed_file_gone_is_one_sentence(tmp_path):
    site, dist = dist_info_install(tmp_path)
    os.unlink(os.path.join(site, "mc_project", "resources.py"))
    with pytest.raises(CorpusError, match=r"^The installed corpus lacks .*resources\.py \(and 0 other "
                                          r"file\(s\)\), so its wheel cannot be built; reinstall it"):
        wheelhouse.build_installed_wheel(dist, str(tmp_path / "wheels"))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """corpus running as a regular install (the fake one); pip wheel copies the corpus wheel
    and makes one stand-in wheel per dependency."""
    site, dist = dist_info_install(tmp_path)
    monkeypatch.setattr(resources, "FROM_SOURCE", False)
    monkeypatch.setattr(wheelhouse, "installed_distribution", lambda: dist)
    calls = []

    def pip_wheel(wheel_dir, *args):
        calls.append(args)
        os.makedirs(wheel_dir, exist_ok=True)
        shutil.copy(args[-1], wheel_dir)
        if "--no-deps" not in args:
            open(os.path.join(wheel_dir, "salt-3008.3-py3-none-any.whl"), "w").close()

    monkeypatch.setattr(wheelhouse, "_pip_wheel", pip_wheel)
    return site, calls


def test_a_wheelhouse_built_by_an_installed_corpus_is_current_until_its_files_change(tmp_path, installed):
    site, calls = installed
    dest = str(tmp_path / "wheelhouse")
    assert wheelhouse.ensure_wheelhouse(dest) == dest
    stamp = wheelhouse.read_stamp(dest)
    assert stamp["built"] == "all" and stamp["installed"] and stamp["requires"]
    assert stamp["source"] is None and stamp["setup_py"] is None
    assert sorted(os.listdir(dest)) == [".corpus-wheelhouse.json", "corpus-0.1.0-py3-none-any.whl",
                                        "salt-3008.3-py3-none-any.whl"]
    assert wheelhouse.is_current(dest)
    wheelhouse.ensure_wheelhouse(dest)
    assert len(calls) == 1  # current: nothing built
    write(site, "mc_project/resources.py", "# changed\n")
    assert not wheelhouse.is_current(dest)
    wheelhouse.ensure_wheelhouse(dest)
    assert wheelhouse.read_stamp(dest)["built"] == "corpus" and "--no-deps" in calls[-1]
    with zipfile.ZipFile(os.path.join(dest, "corpus-0.1.0-py3-none-any.whl")) as wheel:
        assert wheel.read("mc_project/resources.py") == b"# changed\n"


def test_a_current_wheelhouse_this_user_cannot_write_is_used_as_it_is(tmp_path, installed, monkeypatch):
    dest = str(tmp_path / "shared" / "wheelhouse")
    wheelhouse.ensure_wheelhouse(dest)
    deny(monkeypatch, str(tmp_path / "shared"))
    wheelhouse.check_writable(dest)
    assert wheelhouse.ensure_wheelhouse(dest) == dest
    write(installed[0], "mc_project/resources.py", "# changed\n")
    message = ("Cannot build the wheelhouse {}: {} is not writable by this user; choose another with "
               "--wheelhouse.".format(dest, tmp_path / "shared"))
    for check in (wheelhouse.check_writable, wheelhouse.ensure_wheelhouse):
        with pytest.raises(wheelhouse.NotWritable) as error:
            check(dest)
        assert str(error.value) == message


# --------------------------------------------------------------------------- paths this user cannot write

def deny(monkeypatch, *denied):
    """os.access as a user who cannot write ``denied`` (root can write everything)."""
    real = os.access

    def access(path, mode, **kwargs):
        if mode & os.W_OK and os.path.abspath(path) in denied:
            return False
        return real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_unwritable_names_the_path_that_stops_the_write(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    (tmp_path / "file").write_text("x")
    (locked / "key").write_text("x")
    deny(monkeypatch, str(locked), str(tmp_path / "file"))
    assert wheelhouse.unwritable(str(tmp_path / "new" / "deeper")) is None
    assert wheelhouse.unwritable(str(locked / "a" / "b")) == "{} is not writable by this user".format(locked)
    assert wheelhouse.unwritable(str(locked / "key")) == "{} is not writable by this user".format(locked)
    assert wheelhouse.unwritable(str(tmp_path / "file")) == "{} is not writable by this user".format(
        tmp_path / "file")
    assert wheelhouse.unwritable(str(tmp_path / "file" / "x")) == "{} is not a directory".format(
        tmp_path / "file")


def init(capsys, *extra):
    status = cli.main(["init", "--interface", "127.0.0.1", "--publish-port", "1", "--ret-port", "2",
                       "--master-address", "127.0.0.1", *extra])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("case", ["root", "log", "db", "wheelhouse"])
def test_init_refuses_a_path_it_cannot_write_in_one_sentence(request, monkeypatch, capsys, case):
    # Right under the temporary directory, whatever the user's name: the root's sockets must fit.
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="w"))
    request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    locked = tmp_path / "locked"
    locked.mkdir()
    root = tmp_path / "ctl"
    extra = {"root": [], "log": [], "db": ["--db", str(locked / "inventory.sqlite")],
             "wheelhouse": ["--wheelhouse", str(locked / "wheels")]}[case]
    if case == "root":
        root = locked / "ctl"
    if case == "log":  # a root an earlier init made, whose log directory is someone else's
        locked = root / "var" / "log" / "salt"
        locked.mkdir(parents=True)
    deny(monkeypatch, str(locked))
    status, out, err = init(capsys, "--root", str(root), *extra)
    what, advice = {
        "root": ("Cannot write the controller root {}".format(root), "choose another --root"),
        "log": ("Cannot write the master log {}".format(root / "var" / "log" / "salt" / "master"),
                "choose another --root"),
        "db": ("Cannot write the inventory {}".format(locked / "inventory.sqlite"), "choose another --db"),
        "wheelhouse": ("Cannot build the wheelhouse {}".format(locked / "wheels"), "choose another with"),
    }[case]
    assert status == 2 and out == ""
    assert err.startswith(what + ": {} is not writable by this user; ".format(locked)) and advice in err
    assert len(err.strip().splitlines()) == 1 and err.strip().endswith(".")
    assert not (root / "etc").exists()  # nothing written


@pytest.mark.parametrize("error, status", [
    (PermissionError(13, "Permission denied", "/srv/ctl/etc/salt/master"), 2),
    (OSError(28, "No space left on device", "/srv/ctl/var/lib/corpus/inventory.sqlite"), 1),
])
def test_an_os_error_is_one_sentence_never_a_traceback(monkeypatch, capsys, error, status):
    def fail(args, out):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "status", fail)
    assert cli.main(["status", "--root", "/srv/ctl"]) == status
    err = capsys.readouterr().err
    assert err == "corpus-controller could not finish: {} ({}).\n".format(error.strerror, error.filename)
