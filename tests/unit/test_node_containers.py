"""Container configuration text, names, addresses, sizes and refusals (no root, no LXC)."""

import io
import json
import os
import subprocess
import tarfile

import pytest

from mc_project.errors import CorpusError
from mc_project.node import images, inside, lxc, minion

SHA512_HASH = "$6$saltsaltsalt$" + "a" * 86


def test_config_of_a_configured_container_has_static_veth_on_the_bridge_and_autostart():
    text = lxc.render_config(
        "ct-web",
        "/lxc/ct-web/rootdev",
        hostname="web",
        network={
            "bridge": "corpusbr0",
            "address": "10.77.0.10/24",
            "gateway": "10.77.0.1",
            "hwaddr": "00:16:3e:00:00:01",
        },
    )
    lines = text.splitlines()
    assert "lxc.include = /usr/share/lxc/config/debian.common.conf" in lines
    assert "lxc.rootfs.path = loop:/lxc/ct-web/rootdev" in lines
    assert "lxc.uts.name = web" in lines
    assert "lxc.start.auto = 1" in lines
    assert "lxc.net.0.type = veth" in lines
    assert "lxc.net.0.link = corpusbr0" in lines
    assert "lxc.net.0.ipv4.address = 10.77.0.10/24" in lines
    assert "lxc.net.0.ipv4.gateway = 10.77.0.1" in lines
    assert "lxc.net.0.hwaddr = 00:16:3e:00:00:01" in lines


def test_golden_config_has_no_network_and_never_starts_by_itself():
    lines = lxc.render_config(lxc.GOLDEN_NAME, "/lxc/g/rootdev", autostart=False).splitlines()
    assert "lxc.net.0.type = empty" in lines
    assert "lxc.start.auto = 0" in lines
    assert not any(line.startswith("lxc.net.0.ipv4") for line in lines)


def test_read_config_round_trips_the_written_config(tmp_path):
    (tmp_path / "ct-a").mkdir()
    (tmp_path / "ct-a" / "config").write_text(
        lxc.render_config(
            "ct-a",
            "/x/rootdev",
            network={
                "bridge": "br0",
                "address": "10.1.0.5/24",
                "gateway": "10.1.0.1",
                "hwaddr": "00:16:3e:aa:bb:cc",
            },
        )
    )
    config = lxc.read_config("ct-a", str(tmp_path))
    assert config["lxc.net.0.ipv4.address"] == "10.1.0.5/24"
    assert lxc.container_address("ct-a", str(tmp_path)) == "10.1.0.5"


def test_container_network_config_keeps_the_address_without_failing_on_it():
    text = lxc.interfaces_text("10.77.0.10/24", "10.77.0.1")
    assert "iface eth0 inet manual" in text
    assert "ip addr replace 10.77.0.10/24 dev eth0" in text
    assert "ip route replace default via 10.77.0.1" in text
    assert "dhcp" not in text


def test_hosts_file_names_the_fqdn_and_short_name():
    assert "127.0.1.1\tweb.corpus.test web\n" in lxc.hosts_text("web.corpus.test")
    assert "127.0.1.1\tweb\n" in lxc.hosts_text("web")


@pytest.mark.parametrize("name", ["ct-1", "a", "myapp-staging-2"])
def test_good_container_names(name):
    assert lxc.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "Ct", "a/b", "../etc", "a b", "x" * 64, None, 3])
def test_bad_container_names_are_refused_in_one_sentence(name):
    with pytest.raises(CorpusError, match="is not a container name"):
        lxc.validate_name(name)


def test_gateway_defaults_to_the_subnets_first_host():
    interface, gateway = lxc.parse_network("10.77.0.42/24")
    assert (str(interface), gateway) == ("10.77.0.42/24", "10.77.0.1")


@pytest.mark.parametrize(
    "address, gateway, message",
    [
        ("10.77.0.42", None, "not a host address"),
        ("10.77.0.0/24", None, "not a host address"),
        ("10.77.0.255/24", None, "not a host address"),
        ("banana", None, "not an IPv4 address"),
        ("10.77.0.42/24", "10.78.0.1", "not another host"),
        ("10.77.0.42/24", "10.77.0.42", "not another host"),
        ("10.77.0.42/24", "x", "not an IPv4 gateway"),
    ],
)
def test_bad_addresses_are_refused(address, gateway, message):
    with pytest.raises(CorpusError, match=message):
        lxc.parse_network(address, gateway)


def test_trim_below_used_plus_margin_is_refused_and_above_is_allowed():
    with pytest.raises(CorpusError, match="uses 600 MB: its disk cannot be trimmed below 728 MB"):
        lxc.check_trim("ct-a", 700, 600)
    lxc.check_trim("ct-a", 600 + lxc.TRIM_MARGIN_MB, 600)


@pytest.mark.parametrize("size", ["big", None, 10, -1, 0])
def test_bad_disk_sizes_are_refused(size):
    with pytest.raises(CorpusError):
        lxc.check_size(size)


def test_disk_size_given_as_text_is_a_number():
    assert lxc.check_size("4096") == 4096


def test_security_mirror_sits_next_to_the_mirror():
    assert images.security_mirror("http://mirror.local/debian/") == "http://mirror.local/debian-security"
    assert images.security_mirror("http://mirror.local/deb") == "http://deb.debian.org/debian-security"


def test_resize_refuses_a_trim_below_use_before_touching_anything(tmp_path, monkeypatch):
    (tmp_path / "ct-a").mkdir()
    (tmp_path / "ct-a" / "config").write_text(lxc.render_config("ct-a", "/x/rootdev"))
    monkeypatch.setattr(lxc, "disk_usage_mb", lambda name, path: (2048, 900))
    touched = []
    monkeypatch.setattr(lxc, "stop", lambda *a, **k: touched.append("stop"))
    monkeypatch.setattr(images, "resize_image", lambda *a, **k: touched.append("resize"))
    with pytest.raises(CorpusError, match="cannot be trimmed below 1028 MB"):
        lxc.resize("ct-a", 1000, str(tmp_path))
    assert touched == []


def test_missing_container_is_one_sentence(tmp_path):
    with pytest.raises(CorpusError, match="There is no container ct-x in"):
        lxc.info("ct-x", str(tmp_path))


def test_clone_without_golden_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="no golden image.*mc_lxc.golden"):
        lxc.clone("ct-a", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_clone_again_with_exist_ok_leaves_a_complete_container_alone(tmp_path):
    (tmp_path / "ct-a").mkdir()
    (tmp_path / "ct-a" / "config").write_text(lxc.render_config("ct-a", str(tmp_path / "ct-a" / "rootdev")))
    (tmp_path / "ct-a" / "rootdev").write_bytes(b"\0" * images.MIB)
    assert lxc.clone("ct-a", str(tmp_path), exist_ok=True) == {
        "name": "ct-a",
        "disk_size_mb": 1,
        "changed": False,
    }
    assert (tmp_path / "ct-a" / "rootdev").stat().st_size == images.MIB


def test_destroy_of_an_absent_container_is_fine(tmp_path):
    assert lxc.destroy("ct-gone", str(tmp_path)) == {"name": "ct-gone", "destroyed": False}


@pytest.mark.parametrize("value", ["secret", "$1$abc$def", "$6$salt$short", SHA512_HASH + "\nroot::0", None])
def test_root_password_must_be_a_sha512_hash_and_is_never_echoed(value, tmp_path):
    with pytest.raises(CorpusError) as info:
        inside.set_root_password("ct-a", value, str(tmp_path))
    assert "SHA-512 crypt hash" in str(info.value)
    if isinstance(value, str):
        assert value not in str(info.value)


def test_a_sha512_hash_is_accepted_by_the_check():
    assert inside.SHA512_CRYPT_RE.match(SHA512_HASH)


@pytest.mark.needs("openssl")
def test_the_hash_openssl_makes_is_accepted():
    made = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input="pw\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    assert inside.SHA512_CRYPT_RE.match(made)


@pytest.mark.parametrize(
    "key", ["", "hello", "ssh-ed25519", "ssh-ed25519 AAAA\nssh-rsa AAAA", "ssh-dss AAAAB3"]
)
def test_bad_public_keys_are_refused(key, tmp_path):
    with pytest.raises(CorpusError, match="not an OpenSSH public key"):
        inside.authorize_key("ct-a", key, str(tmp_path))


def test_golden_rootfs_loses_its_identity(tmp_path):
    for relative in (
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "etc/ssh/sshd_config",
        "etc/network/interfaces",
        "var/cache/apt/archives/python3.deb",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    (tmp_path / "etc" / "machine-id").write_text("0123456789abcdef\n")
    images.prepare_golden_rootfs(str(tmp_path))
    assert sorted(os.listdir(tmp_path / "etc" / "ssh")) == ["sshd_config"]
    assert (tmp_path / "etc" / "machine-id").read_text() == ""
    assert "dhcp" not in (tmp_path / "etc" / "network" / "interfaces").read_text()
    assert os.listdir(tmp_path / "var" / "cache" / "apt" / "archives") == []


def test_cached_golden_image_is_reused_only_if_built_with_todays_recipe_and_packages(tmp_path, monkeypatch):
    (tmp_path / "bookworm.img").write_bytes(b"image")
    built = []
    monkeypatch.setattr(
        images,
        "template_create",
        lambda *args: built.append(args) or (_ for _ in ()).throw(CorpusError("no template here")),
    )
    current = {"recipe": images.GOLDEN_RECIPE, "packages": list(images.GOLDEN_PACKAGES)}
    (tmp_path / "bookworm.json").write_text(json.dumps(current))
    assert images.build_golden_image(cache_dir=str(tmp_path))["built"] is False
    monkeypatch.setattr(images, "run", lambda *args, **kwargs: None)
    # an older recipe (its package install could fail in silence), or another package list
    for stale in (dict(current, recipe=None), dict(current, packages=["python3"])):
        (tmp_path / "bookworm.json").write_text(json.dumps(stale))
        with pytest.raises(CorpusError, match="no template here"):
            images.build_golden_image(cache_dir=str(tmp_path))
    assert len(built) == 2
    assert (tmp_path / "bookworm.img").read_bytes() == b"image"


def test_a_bad_suite_is_refused():
    with pytest.raises(CorpusError, match="not a Debian suite"):
        images.build_golden_image(suite="../etc")


def test_minion_config_quotes_values_and_adds_ports_only_when_given():
    text = minion.minion_config("10.0.0.1", "ct-a.corpus.test")
    assert 'master: "10.0.0.1"' in text and 'id: "ct-a.corpus.test"' in text and "port" not in text
    text = minion.minion_config("ctl", "a", publish_port="4605", master_port=4606)
    assert "publish_port: 4605" in text and "master_port: 4606" in text
    assert "mine_enabled: false" in text  # no mine.update job as the minion starts


def test_wheelhouse_tar_holds_the_wheels_and_needs_corpus(tmp_path):
    (tmp_path / "salt-3008.3-py3-none-any.whl").write_bytes(b"salt")
    (tmp_path / "notes.txt").write_text("skip")
    with pytest.raises(CorpusError, match="has no corpus wheel"):
        minion.wheelhouse_tar(str(tmp_path))
    (tmp_path / "corpus-0.1.0-py3-none-any.whl").write_bytes(b"corpus")
    with tarfile.open(fileobj=io.BytesIO(minion.wheelhouse_tar(str(tmp_path)))) as tar:
        assert tar.getnames() == ["corpus-0.1.0-py3-none-any.whl", "salt-3008.3-py3-none-any.whl"]


@pytest.mark.parametrize(
    "master, minion_id, message",
    [
        ("bad master", "a", "not a master address"),
        ("10.0.0.1", "a b", "not a minion id"),
        ("10.0.0.1", "", "not a minion id"),
    ],
)
def test_install_minion_refuses_bad_input(tmp_path, master, minion_id, message):
    (tmp_path / "ct-a").mkdir()
    (tmp_path / "ct-a" / "config").write_text(lxc.render_config("ct-a", "/x/rootdev"))
    with pytest.raises(CorpusError, match=message):
        minion.install_minion("ct-a", master, minion_id, str(tmp_path), str(tmp_path))


def _rootfs(tmp_path):
    for directory in ("usr/sbin", "etc/apt"):
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    return tmp_path


def test_golden_packages_are_installed_with_no_service_started_and_the_image_left_as_it_was(tmp_path, monkeypatch):
    rootfs = _rootfs(tmp_path)
    seen = []

    def run(args, what, check=True, **kwargs):
        seen.append((args[2:4], (rootfs / "usr/sbin/policy-rc.d").read_text(),
                     (rootfs / "etc/resolv.conf").read_text()))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(images, "run", run)
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)
    images.install_packages(str(rootfs), "http://mirror.example/debian", "bookworm", ("python3", "git"))
    assert [args for args, _, _ in seen] == [["apt-get", "update"], ["apt-get", "install"]]
    assert all(policy.endswith("exit 101\n") for _, policy, _ in seen)
    with open("/etc/resolv.conf", encoding="utf-8") as fh:
        this_machines = fh.read()
    assert all(resolv == this_machines for _, _, resolv in seen)
    assert not (rootfs / "usr/sbin/policy-rc.d").exists()
    assert (rootfs / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"
    assert sorted(os.listdir(rootfs / "etc")) == ["apt", "resolv.conf"]
    assert (rootfs / "etc/apt/sources.list").read_text().splitlines() == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main"]


def test_a_golden_image_whose_package_lists_cannot_be_updated_fails_in_one_sentence(tmp_path, monkeypatch):
    rootfs = _rootfs(tmp_path)
    calls = []

    def run(args, what, check=True, **kwargs):
        calls.append(args[2:4])
        return subprocess.CompletedProcess(args, 100, "", "E: Release file expired\n")

    monkeypatch.setattr(images, "run", run)
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)
    with pytest.raises(CorpusError, match=r"package lists failed: E: Release file expired\.$"):
        images.install_packages(str(rootfs))
    assert calls == [["apt-get", "update"]] * images.APT_TRIES
    assert not (rootfs / "usr/sbin/policy-rc.d").exists()
    assert (rootfs / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"


def test_a_package_set_up_that_fails_once_is_finished_on_the_next_try(tmp_path, monkeypatch):
    rootfs = _rootfs(tmp_path)
    calls = []

    def run(args, what, check=True, **kwargs):
        calls.append(args[2:4])
        failed = args[2:4] == ["apt-get", "install"] and calls.count(["apt-get", "install"]) == 1
        message = "E: Sub-process /usr/bin/dpkg returned an error code (1)\n" if failed else ""
        return subprocess.CompletedProcess(args, 100 if failed else 0, "", message)

    monkeypatch.setattr(images, "run", run)
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)
    images.install_packages(str(rootfs))
    assert calls == [["apt-get", "update"], ["apt-get", "install"], ["dpkg", "--configure"], ["apt-get", "install"]]
    assert not (rootfs / "usr/sbin/policy-rc.d").exists()


def test_a_package_set_up_that_always_fails_says_so_in_one_sentence(tmp_path, monkeypatch):
    rootfs = _rootfs(tmp_path)

    def run(args, what, check=True, **kwargs):
        return subprocess.CompletedProcess(args, 100 if args[2] == "apt-get" and args[3] == "install" else 0, "",
                                           "E: Sub-process /usr/bin/dpkg returned an error code (1)\n")

    monkeypatch.setattr(images, "run", run)
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)
    with pytest.raises(CorpusError, match=r"^Installing python3, .* into the golden image failed: E: Sub-process"):
        images.install_packages(str(rootfs))
    assert (rootfs / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"


def test_an_unmount_a_starting_container_makes_busy_is_tried_again(monkeypatch):
    answers = [1, 1, 0]  # busy, busy, unmounted
    tried = []

    def umount(args, what, check=True, **kwargs):
        tried.append(args)
        return subprocess.CompletedProcess(args, answers.pop(0), "", "umount: target is busy.")

    monkeypatch.setattr(images, "run", umount)
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)
    images.unmount("/tmp/corpus-rootfs-x", "/lxc/web/rootdev")
    assert tried == [["umount", "/tmp/corpus-rootfs-x"]] * 3


def test_an_unmount_still_busy_after_the_wait_is_one_sentence(monkeypatch):
    monkeypatch.setattr(images, "run", lambda args, what, check=True, **kwargs: subprocess.CompletedProcess(
        args, 32, "", "umount: /tmp/corpus-rootfs-x: target is busy."))
    with pytest.raises(CorpusError) as refused:
        images.unmount("/tmp/corpus-rootfs-x", "/lxc/web/rootdev", wait=0)
    assert str(refused.value) == "Unmounting /lxc/web/rootdev failed: umount: /tmp/corpus-rootfs-x: target is busy."
