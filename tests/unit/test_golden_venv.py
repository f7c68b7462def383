"""The minion venv baked into the golden image, and a container minion started without pip.

Real images and containers are exercised in tests/integration/test_node_lxc.py and the
controller tests; here the image and the container are stand-ins that record what is done.
"""

import contextlib
import io
import os
import tarfile

import pytest
import salt.crypt
import salt.utils.crypt

from mc_project.errors import CorpusError
from mc_project.node import images, lxc, minion


def make_wheelhouse(path, corpus=b"corpus 1"):
    path.mkdir(exist_ok=True)
    (path / "corpus-1.0-py3-none-any.whl").write_bytes(corpus)
    (path / "salt-3008-py3-none-any.whl").write_bytes(b"salt")
    (path / ".stamp").write_text("not a wheel")
    return str(path)


def test_the_wheelhouse_stamp_changes_with_any_wheel_and_only_with_wheels(tmp_path):
    wheels = make_wheelhouse(tmp_path / "w")
    stamp = images.wheelhouse_stamp(wheels)
    assert images.wheelhouse_stamp(wheels) == stamp
    (tmp_path / "w" / ".stamp").write_text("something else")
    assert images.wheelhouse_stamp(wheels) == stamp
    make_wheelhouse(tmp_path / "w", corpus=b"corpus 2")
    assert images.wheelhouse_stamp(wheels) != stamp
    os.unlink(tmp_path / "w" / "corpus-1.0-py3-none-any.whl")
    with pytest.raises(CorpusError, match="no corpus wheel"):
        images.wheelhouse_stamp(wheels)


@pytest.fixture
def golden_path(tmp_path, monkeypatch):
    """An LXC path with a golden image whose baking is recorded, not run."""
    lxc_path = tmp_path / "lxc"
    (lxc_path / lxc.GOLDEN_NAME).mkdir(parents=True)
    (lxc_path / lxc.GOLDEN_NAME / "rootdev").write_text("image")
    baked = []

    def copy(source, target):
        with open(source) as src, open(target, "w") as dst:
            dst.write(src.read())

    @contextlib.contextmanager
    def mounted(image):
        yield image

    def bake(rootfs, wheelhouse, stamp):
        if os.environ.get("FAIL_BAKE"):
            raise CorpusError("Installing the minion's venv in the golden image failed: no space.")
        baked.append(stamp)
        with open(rootfs, "a") as fh:
            fh.write("+venv")

    monkeypatch.setattr(images, "copy_sparse", copy)
    monkeypatch.setattr(images, "mounted_image", mounted)
    monkeypatch.setattr(images, "bake_minion_venv", bake)
    return str(lxc_path), baked


def test_the_golden_venv_is_baked_once_per_wheelhouse(golden_path, tmp_path, monkeypatch):
    lxc_path, baked = golden_path
    wheels = make_wheelhouse(tmp_path / "w")
    assert lxc.golden(lxc_path, wheelhouse=wheels)["venv"] == "baked"
    assert lxc.golden_stamp(lxc_path) == images.wheelhouse_stamp(wheels)
    assert lxc.golden(lxc_path, wheelhouse=wheels)["venv"] == "current"
    assert len(baked) == 1
    # The image is replaced whole by the baked copy, never left half-made.
    rootdev = lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path)
    assert open(rootdev).read() == "image+venv" and not os.path.exists(rootdev + ".part")
    make_wheelhouse(tmp_path / "w", corpus=b"corpus 2")
    assert lxc.golden(lxc_path, wheelhouse=wheels)["venv"] == "baked"
    assert len(baked) == 2
    # Without a wheelhouse, nothing is asked of the venv.
    assert "venv" not in lxc.golden(lxc_path)


def test_a_venv_that_cannot_be_baked_leaves_the_image_and_says_why(golden_path, tmp_path, monkeypatch):
    lxc_path, baked = golden_path
    wheels = make_wheelhouse(tmp_path / "w")
    monkeypatch.setenv("FAIL_BAKE", "1")
    answer = lxc.golden(lxc_path, wheelhouse=wheels)
    assert answer["venv"].startswith("not baked: Installing the minion's venv") and not baked
    rootdev = lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path)
    assert open(rootdev).read() == "image" and not os.path.exists(rootdev + ".part")
    assert lxc.golden_stamp(lxc_path) is None
    assert lxc.golden(lxc_path, wheelhouse=str(tmp_path / "none"))["venv"].startswith("not baked:")


class Container:
    """A running container as ``inside.run`` sees it: what it holds and the commands it ran."""

    def __init__(self, stamp="", public=""):
        self.stamp, self.public, self.commands, self.files = stamp, public, [], {}

    def run(self, name, lxc_path, cmd, what, input=None, text=True):
        self.commands.append(cmd)
        if cmd.startswith("test -x"):
            return (self.stamp + "\n" if self.stamp else "") + minion.PROBE_SEPARATOR + self.public
        if cmd.startswith("tar -x -C / "):
            with tarfile.open(fileobj=io.BytesIO(input)) as tar:
                for member in tar.getmembers():
                    data = tar.extractfile(member).read().decode() if member.isfile() else None
                    self.files["/" + member.name] = (data, member.mode)
        return ""


@pytest.fixture
def container(monkeypatch):
    box = Container()
    monkeypatch.setattr(minion.lxc, "require", lambda name, lxc_path: None)
    monkeypatch.setattr(minion.lxc, "state", lambda name, lxc_path: "RUNNING")
    monkeypatch.setattr(minion.inside, "run", box.run)
    return box


def test_a_container_from_a_baked_golden_starts_its_minion_without_pip(container, tmp_path):
    wheels = make_wheelhouse(tmp_path / "w")
    container.stamp = images.wheelhouse_stamp(wheels)
    private, public = salt.crypt.gen_keys(2048)
    result = minion.install_minion("ct-a", "10.0.0.1", "a.corpus.test", wheels, "/lxc",
                                   publish_port=4505, master_port=4506, public_key=public, private_key=private)
    assert result["path"] == "golden"
    assert not any("pip" in cmd for cmd in container.commands)
    assert len(container.commands) == 2  # look, then write and start: two attaches
    assert container.files["/etc/salt/pki/minion/minion.pem"] == (private, 0o400)
    assert container.files["/etc/salt/pki/minion"] == (None, 0o700)
    assert 'id: "a.corpus.test"' in container.files[minion.MINION_CONF][0]
    pub = tmp_path / "minion.pub"
    pub.write_text(public)
    assert result["fingerprint"] == salt.utils.crypt.pem_finger(str(pub), sum_type="sha256")
    assert result["public_key"] == public


def test_a_container_from_another_wheelhouse_installs_with_pip_and_keeps_its_key(container, tmp_path):
    wheels = make_wheelhouse(tmp_path / "w")
    _private, public = salt.crypt.gen_keys(2048)
    container.stamp, container.public = "an older wheelhouse", public
    result = minion.install_minion("ct-a", "10.0.0.1", "a.corpus.test", wheels, "/lxc")
    assert result["path"] == "pip (the venv was baked from another wheelhouse)"
    assert any("pip install" in cmd for cmd in container.commands if isinstance(cmd, str))
    assert result["public_key"].strip() == public.strip()
    assert not any(path.startswith(minion.PKI_DIR + "/") for path in container.files)


def test_a_container_with_no_key_gets_a_new_pair(container, tmp_path):
    wheels = make_wheelhouse(tmp_path / "w")
    result = minion.install_minion("ct-a", "10.0.0.1", "a.corpus.test", wheels, "/lxc")
    assert result["path"] == "pip (no venv baked in the golden image)"
    assert container.files["/etc/salt/pki/minion/minion.pub"][0] == result["public_key"]
    with pytest.raises(CorpusError, match="both its public and its private half"):
        minion.install_minion("ct-a", "10.0.0.1", "a.corpus.test", wheels, "/lxc", public_key="PEM")


def test_the_wheelhouse_stamp_is_kept_until_a_wheel_changes(tmp_path):
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    wheel = wheels / "corpus-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"one")
    first = images.wheelhouse_stamp(str(wheels))
    assert (wheels / images.DIGEST_CACHE).is_file()
    assert images.wheelhouse_stamp(str(wheels)) == first
    wheel.write_bytes(b"two")
    os.utime(wheel, ns=(1, 1))  # another time: read again
    assert images.wheelhouse_stamp(str(wheels)) != first
    (wheels / "other-1.0-py3-none-any.whl").write_bytes(b"x")
    assert len({first, images.wheelhouse_stamp(str(wheels))}) == 2
