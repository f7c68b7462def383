"""The release store: atomic switch, hard-linked releases, pruning, set aside, data snapshots."""

import io
import os
import shutil
import socket
import tarfile
import threading
import time

import pytest

from mc_project.project import releases
from mc_project.errors import CorpusError


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def tree_files(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = read(full)
    return out


# --------------------------------------------------------------------------- current link

def test_switch_current_creates_and_replaces_a_relative_link(tmp_path):
    current = str(tmp_path / "current")
    r1, r2 = tmp_path / "releases" / "r1", tmp_path / "releases" / "r2"
    r1.mkdir(parents=True)
    r2.mkdir()
    releases.switch_current(current, str(r1))
    assert os.readlink(current) == os.path.join("releases", "r1")
    assert releases.live_target(current) == str(r1)
    releases.switch_current(current, str(r2))
    assert os.readlink(current) == os.path.join("releases", "r2")
    assert releases.live_release_id(current, str(tmp_path / "releases")) == "r2"
    assert sorted(os.listdir(tmp_path)) == ["current", "releases"]  # no temporary link left
    releases.switch_current(current, None)
    assert not os.path.lexists(current)
    assert releases.live_target(current) is None
    releases.switch_current(current, None)  # nothing live: still fine


def test_live_release_id_is_none_outside_releases(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "releases").mkdir()
    current = str(tmp_path / "current")
    releases.switch_current(current, str(tmp_path / "project"))
    assert releases.live_target(current) == str(tmp_path / "project")
    assert releases.live_release_id(current, str(tmp_path / "releases")) is None


def test_switch_current_is_atomic_under_concurrent_reads(tmp_path):
    current = str(tmp_path / "current")
    targets = []
    for i in range(2):
        d = tmp_path / "releases" / "r{}".format(i)
        d.mkdir(parents=True)
        targets.append(str(d))
    releases.switch_current(current, targets[0])
    valid = {os.path.join("releases", "r0"), os.path.join("releases", "r1")}
    errors, seen, stop = [], set(), threading.Event()

    def reader():
        while not stop.is_set():
            try:
                link = os.readlink(current)
                if link not in valid:
                    errors.append("bad target {!r}".format(link))
                seen.add(link)
                os.stat(current)  # the link resolves, too
            except OSError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    # At least 200 switches, and on until the readers have seen both targets (a loaded
    # machine may not schedule them during the first 200).
    deadline = time.monotonic() + 30
    switches = 0
    try:
        while switches < 200 or (seen != valid and time.monotonic() < deadline):
            releases.switch_current(current, targets[switches % 2])
            switches += 1
        releases.switch_current(current, targets[1])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert seen == valid
    assert os.readlink(current) == os.path.join("releases", "r1")


def test_switch_current_replaces_a_leftover_temporary_link(tmp_path):
    current = str(tmp_path / "current")
    (tmp_path / "r1").mkdir()
    leftover = "{}.new-{}-{}".format(current, socket.gethostname(), os.getpid())
    os.symlink("nowhere", leftover)
    releases.switch_current(current, str(tmp_path / "r1"))
    assert os.readlink(current) == "r1"
    assert not os.path.lexists(leftover)


# --------------------------------------------------------------------------- releases

def test_new_release_id_is_unique(tmp_path):
    rid = releases.new_release_id(str(tmp_path), "0123456789abcdef")
    assert rid.endswith("-01234567")
    (tmp_path / rid).mkdir()
    again = releases.new_release_id(str(tmp_path), "0123456789abcdef")
    assert again != rid
    assert again.startswith(rid.split("-")[0])
    assert releases.new_release_id(str(tmp_path), None).endswith("-nocommit")
    # an id the history already holds (an editable deploy has no release dir) is not reused
    other = releases.new_release_id(str(tmp_path), "fedcba9876543210")
    assert releases.new_release_id(str(tmp_path), "fedcba9876543210", taken={other}) != other


def test_make_release_hard_links_unchanged_files(tmp_path):
    build1, build2 = tmp_path / "build1", tmp_path / "build2"
    r1, r2 = str(tmp_path / "releases" / "r1"), str(tmp_path / "releases" / "r2")
    os.makedirs(tmp_path / "releases")
    write(str(build1 / "same.txt"), "unchanged " * 100)
    write(str(build1 / "sub" / "deep.txt"), "deep")
    write(str(build1 / "changed.txt"), "v1")
    write(str(build1 / "removed.txt"), "gone in v2")
    releases.make_release(str(build1), r1)
    assert tree_files(r1) == tree_files(str(build1))
    # a first release is a copy of the build, not links to it
    assert os.stat(os.path.join(r1, "same.txt")).st_ino != os.stat(build1 / "same.txt").st_ino

    write(str(build2 / "same.txt"), "unchanged " * 100)
    write(str(build2 / "sub" / "deep.txt"), "deep")
    write(str(build2 / "changed.txt"), "v2")
    write(str(build2 / "added.txt"), "new")
    # Like two git archives: every file of a build carries its commit's time. Unchanged
    # files of the new build have a later mtime; the changed one, same size, was made in
    # the same second as the old one (two quick commits).
    st = os.stat(build1 / "changed.txt")
    for rel in ("same.txt", "sub/deep.txt", "added.txt"):
        os.utime(build2 / rel, (st.st_mtime + 100, st.st_mtime + 100))
    os.utime(build2 / "changed.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    releases.make_release(str(build2), r2, previous_release=r1)

    assert tree_files(r2) == {"same.txt": "unchanged " * 100, "sub/deep.txt": "deep",
                              "changed.txt": "v2", "added.txt": "new"}
    for rel in ("same.txt", "sub/deep.txt"):
        assert os.stat(os.path.join(r2, rel)).st_ino == os.stat(os.path.join(r1, rel)).st_ino
    assert os.stat(os.path.join(r2, "changed.txt")).st_ino != os.stat(os.path.join(r1, "changed.txt")).st_ino
    assert read(os.path.join(r1, "changed.txt")) == "v1"  # the old release is untouched
    assert os.path.exists(os.path.join(r1, "removed.txt"))
    assert not os.path.exists(r2 + ".partial")
    assert sorted(os.listdir(tmp_path / "releases")) == ["r1", "r2"]


def test_make_release_discards_a_leftover_partial(tmp_path):
    build = tmp_path / "build"
    write(str(build / "a"), "a")
    release = str(tmp_path / "r1")
    write(release + ".partial/stale", "from a killed run")
    releases.make_release(str(build), release)
    assert tree_files(release) == {"a": "a"}
    assert not os.path.exists(release + ".partial")


def test_sync_tree_keeps_protected_paths(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    write(str(src / "app.py"), "new")
    write(str(dest / "app.py"), "old")
    write(str(dest / "stale.py"), "stale")
    write(str(dest / ".venv" / "bin" / "python"), "venv")
    releases.sync_tree(str(src), str(dest), keep=[".venv"])
    assert tree_files(str(dest)) == {"app.py": "new", ".venv/bin/python": "venv"}


def test_sync_tree_failure_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="Copying .* failed"):
        releases.sync_tree(str(tmp_path / "missing"), str(tmp_path / "dest"))


def test_prune_dir(tmp_path):
    parent = tmp_path / "releases"
    for rid in ("r1", "r2", "r3"):
        write(str(parent / rid / "f"), rid)
    write(str(parent / "stray.txt"), "x")
    os.symlink(str(parent / "r3"), str(parent / "link"))
    removed = releases.prune_dir(str(parent), {"r2", "r3"})
    assert removed == ["link", "r1", "stray.txt"]
    assert sorted(os.listdir(parent)) == ["r2", "r3"]
    assert read(str(parent / "r3" / "f")) == "r3"  # a removed link never removes its target
    assert releases.prune_dir(str(tmp_path / "missing"), set()) == []


def test_set_aside_moves_the_tree_and_writes_the_log(tmp_path):
    tree = tmp_path / "build" / "r9"
    write(str(tree / "app.py"), "broken")
    failed = str(tmp_path / "archives" / "failed")
    dest = releases.set_aside(str(tree), failed, "r9", "-----> build\nboom\n")
    assert dest == os.path.join(failed, "r9")
    assert not tree.exists()
    assert read(os.path.join(dest, "tree", "app.py")) == "broken"
    assert read(os.path.join(dest, "deploy.log")) == "-----> build\nboom\n"
    # again (a recovered deploy): the old tree is replaced, the log rewritten
    write(str(tree / "other.py"), "x")
    releases.set_aside(str(tree), failed, "r9", "second\n")
    assert sorted(os.listdir(os.path.join(dest, "tree"))) == ["other.py"]
    assert read(os.path.join(dest, "deploy.log")) == "second\n"


def test_set_aside_without_a_tree_keeps_the_log(tmp_path):
    failed = str(tmp_path / "failed")
    dest = releases.set_aside(None, failed, "r1", "log\n")
    assert os.listdir(dest) == ["deploy.log"]
    dest = releases.set_aside(str(tmp_path / "missing"), failed, "r2", "log2\n")
    assert os.listdir(dest) == ["deploy.log"]


# --------------------------------------------------------------------------- data snapshots

def inodes(root):
    out = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out.add(os.stat(os.path.join(dirpath, name)).st_ino)
    return out


def test_snapshot_never_shares_inodes_with_data(tmp_path):
    data, snap = tmp_path / "data", tmp_path / "snapshots" / "r1"
    write(str(data / "db.json"), '{"count": 1}')
    write(str(data / "uploads" / "a.bin"), "A" * 1000)
    dest = releases.snapshot_data(str(data), str(snap))
    assert dest == str(snap / "data")
    assert tree_files(dest) == tree_files(str(data))
    assert inodes(dest).isdisjoint(inodes(str(data)))

    # writes to data/ after the snapshot (in place, appended, new, removed) leave it alone
    with open(data / "db.json", "r+", encoding="utf-8") as fh:
        fh.write('{"count": 9}')
    with open(data / "uploads" / "a.bin", "a", encoding="utf-8") as fh:
        fh.write("more")
    write(str(data / "new.txt"), "new")
    assert tree_files(dest) == {"db.json": '{"count": 1}', "uploads/a.bin": "A" * 1000}


def test_snapshot_of_missing_data_is_empty(tmp_path):
    dest = releases.snapshot_data(str(tmp_path / "data"), str(tmp_path / "snap"))
    assert os.listdir(dest) == []
    assert os.path.isdir(tmp_path / "data")


def test_snapshot_again_replaces_the_old_one(tmp_path):
    data = tmp_path / "data"
    write(str(data / "a"), "1")
    releases.snapshot_data(str(data), str(tmp_path / "snap"))
    os.unlink(data / "a")
    write(str(data / "b"), "2")
    dest = releases.snapshot_data(str(data), str(tmp_path / "snap"))
    assert tree_files(dest) == {"b": "2"}


def test_restore_data(tmp_path):
    data, snap = tmp_path / "data", tmp_path / "snap"
    write(str(data / "db.json"), "v1")
    write(str(data / "keep" / "x"), "x")
    releases.snapshot_data(str(data), str(snap))
    write(str(data / "db.json"), "v2-migrated")
    write(str(data / "added"), "added")
    os.unlink(data / "keep" / "x")
    releases.restore_data(str(snap), str(data))
    assert tree_files(str(data)) == {"db.json": "v1", "keep/x": "x"}
    assert sorted(os.listdir(tmp_path)) == ["data", "snap"]  # no .restoring / .replaced left
    # the restored data is a copy: writing it leaves the snapshot intact
    write(str(data / "db.json"), "v3")
    assert read(str(snap / "data" / "db.json")) == "v1"
    assert inodes(str(data)).isdisjoint(inodes(str(snap / "data")))


def test_restore_data_when_data_is_gone(tmp_path):
    data, snap = tmp_path / "data", tmp_path / "snap"
    write(str(data / "a"), "a")
    releases.snapshot_data(str(data), str(snap))
    shutil.rmtree(data)
    releases.restore_data(str(snap), str(data))
    assert tree_files(str(data)) == {"a": "a"}


def test_restore_data_without_snapshot(tmp_path):
    write(str(tmp_path / "data" / "a"), "live")
    with pytest.raises(CorpusError) as err:
        releases.restore_data(str(tmp_path / "snap"), str(tmp_path / "data"))
    assert str(err.value) == "No data snapshot in {}.".format(tmp_path / "snap")
    assert tree_files(str(tmp_path / "data")) == {"a": "live"}


def test_tree_signature_changes_on_every_kind_of_write(tmp_path):
    data = tmp_path / "data"
    write(str(data / "a"), "aaaa")
    write(str(data / "sub" / "b"), "b")
    sig = releases.tree_signature(str(data))
    assert sig == releases.tree_signature(str(data))

    def changed(action):
        nonlocal sig
        action()
        new = releases.tree_signature(str(data))
        assert new != sig
        sig = new

    changed(lambda: write(str(data / "a"), "bbbb"))  # same size, rewritten in place
    changed(lambda: write(str(data / "a"), "longer"))
    changed(lambda: write(str(data / "sub" / "c"), "c"))
    changed(lambda: os.unlink(data / "sub" / "b"))
    changed(lambda: os.mkdir(data / "empty"))
    changed(lambda: os.chmod(data / "a", 0o600))
    changed(lambda: os.replace(data / "sub" / "c", data / "sub" / "d"))


# --------------------------------------------------------------------------- tars

def make_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, text in members.items():
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_extract_tar(tmp_path):
    make_tar(str(tmp_path / "t.tar"), {"a.txt": "a", "d/b.txt": "b"})
    releases.extract_tar(str(tmp_path / "t.tar"), str(tmp_path / "out"))
    assert tree_files(str(tmp_path / "out")) == {"a.txt": "a", "d/b.txt": "b"}


def test_extract_tar_refuses_members_outside_the_tree(tmp_path):
    make_tar(str(tmp_path / "evil.tar"), {"../escaped.txt": "x"})
    with pytest.raises(CorpusError, match="unpack|outside"):
        releases.extract_tar(str(tmp_path / "evil.tar"), str(tmp_path / "out"))
    assert not (tmp_path / "escaped.txt").exists()


def test_extract_tar_of_garbage(tmp_path):
    write(str(tmp_path / "bad.tar"), "not a tar at all")
    with pytest.raises(CorpusError, match="Cannot unpack .*bad.tar"):
        releases.extract_tar(str(tmp_path / "bad.tar"), str(tmp_path / "out"))
