"""Unprivileged containers: id ranges, their record beside the config, and the shift of a tree."""

import os
import stat
import struct

import pytest

from mc_project.errors import CorpusError
from mc_project.node import lxc

BASE = lxc.ID_POOL_START + 7 * lxc.ID_RANGE
# Changing owners needs root: the skip line says so once for the file (tests/support/needs.py).
as_root = pytest.mark.needs("root")


def make_container(lxc_path, name):
    os.makedirs(os.path.join(lxc_path, name), exist_ok=True)
    with open(os.path.join(lxc_path, name, "config"), "w", encoding="utf-8") as fh:
        fh.write(lxc.render_config(name, os.path.join(lxc_path, name, "rootdev")))
    return lxc.reserve_id_base(name, lxc_path)


def test_a_base_is_in_the_pool_and_the_same_for_the_same_name(tmp_path):
    first = lxc.allocate_id_base("ct-a", str(tmp_path))
    assert first == lxc.allocate_id_base("ct-a", str(tmp_path))
    assert lxc.ID_POOL_START <= first < lxc.ID_POOL_START + lxc.ID_POOL_SLOTS * lxc.ID_RANGE
    assert (first - lxc.ID_POOL_START) % lxc.ID_RANGE == 0
    assert first + lxc.ID_RANGE <= 1 << 31


def test_containers_of_a_node_get_distinct_bases_and_a_made_again_one_its_own_back(tmp_path):
    lxc_path = str(tmp_path)
    bases = {name: make_container(lxc_path, name) for name in ("ct-{}".format(n) for n in range(40))}
    assert len(set(bases.values())) == 40
    assert all(lxc.id_base(name, lxc_path) == base for name, base in bases.items())
    # Recorded: asking again gives the recorded base, whatever the name would derive.
    assert lxc.reserve_id_base("ct-3", lxc_path) == bases["ct-3"]
    lxc.destroy("ct-3", lxc_path)
    assert lxc.id_base("ct-3", lxc_path) is None
    assert make_container(lxc_path, "ct-3") == bases["ct-3"]


def test_a_base_taken_by_another_container_is_skipped(tmp_path, monkeypatch):
    lxc_path = str(tmp_path)
    same = lxc.hashlib.sha256(b"same")
    monkeypatch.setattr(lxc.hashlib, "sha256", lambda data: same)
    monkeypatch.setattr(lxc, "ID_POOL_SLOTS", 4)
    first = int.from_bytes(same.digest()[:8], "big")
    bases = [make_container(lxc_path, name) for name in ("ct-a", "ct-b", "ct-c", "ct-d")]
    assert bases == [lxc.ID_POOL_START + (first + n) % 4 * lxc.ID_RANGE for n in range(4)]
    with pytest.raises(CorpusError, match="No id range is left for container ct-e"):
        make_container(lxc_path, "ct-e")


def test_the_record_maps_the_range_and_drops_the_dangerous_capabilities(tmp_path):
    lxc_path = str(tmp_path)
    base = make_container(lxc_path, "ct-a")
    text = open(lxc.unprivileged_conf_path("ct-a", lxc_path), encoding="utf-8").read()
    assert "lxc.idmap = u 0 {} 65536\n".format(base) in text
    assert "lxc.idmap = g 0 {} 65536\n".format(base) in text
    dropped = set(next(line for line in text.splitlines() if line.startswith("lxc.cap.drop")).split("=")[1].split())
    assert {"sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override", "syslog", "sys_admin"} <= dropped
    # The user namespace configuration comes first: it empties lxc.cap.drop.
    assert text.index(lxc.USERNS_CONF) < text.index("lxc.cap.drop")
    # The container's config includes it; the golden one (no record) stays as it was.
    config = lxc.render_config("ct-a", lxc.rootdev_path("ct-a", lxc_path))
    assert "lxc.include = {}\n".format(lxc.unprivileged_conf_path("ct-a", lxc_path)) in config
    assert lxc.UNPRIVILEGED_CONF not in lxc.render_config(lxc.GOLDEN_NAME, str(tmp_path / "g" / "rootdev"))


def test_root_gets_the_pool_once_and_other_lines_stay(tmp_path):
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("alice:100000:65536")
    lock = str(tmp_path / "subid.lock")
    assert lxc.ensure_subordinate_ids((str(subuid), str(subgid)), lock) == [str(subuid), str(subgid)]
    line = "root:{}:{}\n".format(lxc.ID_POOL_START, lxc.ID_POOL_SLOTS * lxc.ID_RANGE)
    assert subuid.read_text() == "alice:100000:65536\n" + line
    assert subgid.read_text() == line
    assert lxc.ensure_subordinate_ids((str(subuid), str(subgid)), lock) == []
    assert lxc.subordinate_ids_reserved("root:0:4294967295\n")
    assert not lxc.subordinate_ids_reserved("root:{}:65536\n".format(lxc.ID_POOL_START))


def test_ids_shift_into_the_range_once_and_outsiders_are_refused():
    assert lxc.shifted_id(0, BASE) == BASE
    assert lxc.shifted_id(65535, BASE) == BASE + 65535
    assert lxc.shifted_id(BASE + 42, BASE) == BASE + 42
    with pytest.raises(CorpusError, match="outside the container's range"):
        lxc.shifted_id(BASE + lxc.ID_RANGE, BASE)


def test_acl_entries_of_named_users_and_groups_are_shifted():
    entries = [(1, 7, 0xFFFFFFFF), (2, 6, 1000), (4, 5, 0xFFFFFFFF), (8, 5, 4), (16, 7, 0xFFFFFFFF)]
    value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    shifted = lxc.shift_acl(value, BASE)
    assert [struct.unpack_from("<HHI", shifted, offset) for offset in range(4, len(shifted), 8)] == [
        (1, 7, 0xFFFFFFFF), (2, 6, BASE + 1000), (4, 5, 0xFFFFFFFF), (8, 5, BASE + 4), (16, 7, 0xFFFFFFFF)]


@as_root
def test_a_tree_is_shifted_whole_keeping_setuid_setgid_and_file_capabilities(tmp_path):
    root = tmp_path / "rootfs"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "var" / "mail").mkdir(parents=True)
    tool = root / "usr" / "bin" / "passwd"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o4755)
    expiry = root / "usr" / "bin" / "expiry"
    expiry.write_text("#!/bin/sh\n")
    os.chown(expiry, 0, 42)
    os.chmod(expiry, 0o2755)
    os.chown(root / "var" / "mail", 0, 8)
    os.chmod(root / "var" / "mail", 0o2775)
    home = root / "home" / "app"
    home.mkdir(parents=True)
    (home / "data").write_text("x")
    os.chown(home / "data", 1000, 1000)
    os.link(home / "data", home / "data-again")
    os.symlink("/usr/bin/passwd", root / "passwd-link")
    ping = root / "usr" / "bin" / "ping"
    ping.write_text("")
    # cap_net_raw+ep, revision 2: chown drops it, the shift puts it back.
    capability = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    try:
        os.setxattr(ping, lxc.CAPABILITY_XATTR, capability)
    except OSError:
        capability = None

    changed = lxc.shift_tree(str(root), BASE)
    assert changed == 12  # every inode once: the hard link is one
    owners = {}
    for directory, dirs, files in os.walk(root):
        for entry in [directory] + [os.path.join(directory, name) for name in dirs + files]:
            st = os.lstat(entry)
            owners[os.path.relpath(entry, root)] = (st.st_uid - BASE, st.st_gid - BASE)
    assert owners["usr/bin/expiry"] == (0, 42) and owners["var/mail"] == (0, 8)
    assert owners["home/app/data"] == (1000, 1000) == owners["home/app/data-again"]
    assert owners["passwd-link"] == (0, 0) and owners["."] == (0, 0)
    assert all(0 <= uid < lxc.ID_RANGE and 0 <= gid < lxc.ID_RANGE for uid, gid in owners.values())
    assert stat.S_IMODE(os.stat(tool).st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(expiry).st_mode) == 0o2755
    assert stat.S_IMODE(os.stat(root / "var" / "mail").st_mode) == 0o2775
    if capability is not None:
        assert os.getxattr(ping, lxc.CAPABILITY_XATTR) == capability
    # Again: nothing left to shift, nothing changes.
    assert lxc.shift_tree(str(root), BASE) == 0
    assert stat.S_IMODE(os.stat(tool).st_mode) == 0o4755


@as_root
def test_a_tree_with_an_id_of_another_range_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    os.chown(tmp_path / "f", BASE + lxc.ID_RANGE, 0)
    with pytest.raises(CorpusError, match="outside the container's range"):
        lxc.shift_tree(str(tmp_path), BASE)
