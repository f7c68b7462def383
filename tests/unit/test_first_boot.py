"""What a new container's image gets before its first boot (``mc_project.node.first_boot``)."""

import io
import tarfile

import pytest

from mc_project.errors import CorpusError
from mc_project.node import first_boot, images, minion

HASH = "$6$abcdefgh$" + "A" * 86
ROOT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKm0lZ0bH3g8q9Cw0hJjD0K8Z2mAqfVqXwJ0rN7cT9bD root@shop"


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAhost root@golden\n")
    (root / "etc" / "ssh" / "ssh_host_ed25519_key").write_text("private\n")
    return root


@pytest.fixture
def wheelhouse(tmp_path):
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "corpus-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    return wheels


def bake(rootfs, wheelhouse):
    venv_bin = rootfs / minion.VENV.lstrip("/") / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "salt-minion").write_text("#!/bin/sh\n")
    (venv_bin / "salt-minion").chmod(0o755)
    (rootfs / images.VENV_STAMP.lstrip("/")).write_text(images.wheelhouse_stamp(str(wheelhouse)) + "\n")


def run_recorder(calls):
    def run(argv, what, input=None, env=None, text=True):
        calls.append((argv, input))
    return run


def tar_members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {member.name: (member.mode, tar.extractfile(member).read().decode() if member.isfile() else None)
                for member in tar.getmembers()}


def test_a_baked_image_boots_with_the_minion_its_key_and_roots_credentials(rootfs, wheelhouse, monkeypatch):
    bake(rootfs, wheelhouse)
    calls = []
    monkeypatch.setattr(first_boot, "run", run_recorder(calls))
    booted = {"master": "10.0.0.1", "minion_id": "shop.corpus.test", "wheelhouse": str(wheelhouse),
              "publish_port": 4505, "master_port": 4506}
    answer = first_boot.writer(HASH, ROOT_KEY, booted)(str(rootfs), None)
    assert answer["minion"] == "at boot"
    assert answer["minion_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert answer["host_keys"] == ["ssh-ed25519 AAAAhost"]
    (tar_argv, tar_input), (passwd_argv, passwd_input) = calls
    assert tar_argv[:2] == ["chroot", str(rootfs)] and "multi-user.target.wants" in tar_argv[-1]
    members = tar_members(tar_input)
    assert members["root/.ssh/authorized_keys"] == (0o600, ROOT_KEY + "\n")
    assert members["etc/salt/pki/minion/minion.pem"][0] == 0o400
    assert members["etc/salt/pki/minion/minion.pub"][1] == answer["minion_public_key"]
    assert 'id: "shop.corpus.test"' in members[minion.MINION_CONF.lstrip("/")][1]
    # The password hash goes through stdin, never on a command line.
    assert passwd_argv[-2:] == ["chpasswd", "-e"] and passwd_input == "root:{}\n".format(HASH)
    assert not any(HASH in part for argv, _ in calls for part in argv)


def test_configuring_again_keeps_the_minion_key_the_image_has(rootfs, wheelhouse, monkeypatch):
    bake(rootfs, wheelhouse)
    pki = rootfs / minion.PKI_DIR.lstrip("/")
    pki.mkdir(parents=True)
    (pki / "minion.pem").write_text("PRIVATE")
    (pki / "minion.pub").write_text("PUBLIC")
    monkeypatch.setattr(first_boot, "run", run_recorder([]))
    booted = {"master": "10.0.0.1", "minion_id": "shop.corpus.test", "wheelhouse": str(wheelhouse)}
    assert first_boot.writer(HASH, ROOT_KEY, booted)(str(rootfs), None)["minion_public_key"] == "PUBLIC"


@pytest.mark.parametrize("stamp, why", [(None, "no venv baked"), ("other", "another wheelhouse")])
def test_an_image_not_baked_from_this_wheelhouse_gets_no_minion_at_boot(rootfs, wheelhouse, monkeypatch, stamp, why):
    if stamp is not None:
        bake(rootfs, wheelhouse)
        (rootfs / images.VENV_STAMP.lstrip("/")).write_text(stamp)
    calls = []
    monkeypatch.setattr(first_boot, "run", run_recorder(calls))
    booted = {"master": "10.0.0.1", "minion_id": "shop.corpus.test", "wheelhouse": str(wheelhouse)}
    answer = first_boot.writer(HASH, ROOT_KEY, booted)(str(rootfs), None)
    assert why in answer["minion"] and answer["minion_public_key"] is None
    assert set(tar_members(calls[0][1])) == {"root/.ssh/authorized_keys"}
    assert "multi-user.target.wants" not in calls[0][0][-1]


@pytest.mark.parametrize("password_hash, root_key, booted, message", [
    ("secret", ROOT_KEY, None, "SHA-512 crypt hash"),
    (HASH, "not a key", None, "OpenSSH public key"),
    (HASH, ROOT_KEY, {"master": "10.0.0.1", "minion_id": "shop"}, "needs its wheelhouse"),
    (HASH, ROOT_KEY, {"master": "a b", "minion_id": "shop", "wheelhouse": "/w"}, "not a master address"),
    (HASH, ROOT_KEY, {"master": "m", "minion_id": "../x", "wheelhouse": "/w"}, "not a minion id"),
])
def test_bad_credentials_or_minion_settings_are_refused_before_the_image_is_touched(password_hash, root_key, booted,
                                                                                    message):
    with pytest.raises(CorpusError, match=message):
        first_boot.writer(password_hash, root_key, booted)
