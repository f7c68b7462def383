"""A node's pool of spare containers (node/spares.py), with the container operations faked on
directories: which spare a clone takes, which ones a refill makes, what goes when."""

import os
import time

import psutil
import pytest

from mc_project.errors import CorpusError
from mc_project.node import lxc, spares


@pytest.fixture
def node(tmp_path, monkeypatch):
    """An LXC path with a golden image; ``lxc.clone`` makes a directory with a rootdev, and
    every clone and destroy is recorded."""
    lxc_path = str(tmp_path)
    os.makedirs(lxc.container_dir(lxc.GOLDEN_NAME, lxc_path))
    with open(lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path), "wb") as fh:
        fh.truncate(4 * 1024 * 1024)
    done = []

    def clone(name, path, disk_size_mb=None, exist_ok=False, source=None):
        os.makedirs(lxc.container_dir(name, path))
        with open(lxc.rootdev_path(name, path), "wb") as fh:
            fh.truncate(4 * 1024 * 1024)
        done.append(("clone", name))
        return {"name": name, "changed": True}

    def destroy(name, path):
        existed = os.path.isdir(lxc.container_dir(name, path))
        if existed:
            for entry in os.listdir(lxc.container_dir(name, path)):
                os.unlink(os.path.join(lxc.container_dir(name, path), entry))
            os.rmdir(lxc.container_dir(name, path))
            done.append(("destroy", name))
        return {"destroyed": existed}

    monkeypatch.setattr(lxc, "clone", clone)
    monkeypatch.setattr(lxc, "destroy", destroy)
    monkeypatch.setattr(lxc, "write_config", lambda *args, **kwargs: None)
    monkeypatch.setattr(lxc, "id_base", lambda *args: None)
    monkeypatch.setattr(spares.inside, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(spares, "refill_in_background", lambda *args: done.append(("refill",) + args) or 1)
    return lxc_path, done


def test_a_pool_is_made_one_spare_after_another_then_is_ready(node):
    lxc_path, done = node
    assert spares.spare_names(3) == ["corpus-spare", "corpus-spare-2", "corpus-spare-3"]
    assert spares.refill(lxc_path, count=3) == "made"
    assert done == [("clone", "corpus-spare"), ("clone", "corpus-spare-2"), ("clone", "corpus-spare-3")]
    assert spares.refill(lxc_path, count=3) == "ready"
    assert len(done) == 3
    assert lxc.list_containers(lxc_path) == []  # spares are not environments' containers


def test_each_clone_takes_a_ready_spare_and_asks_for_the_missing_ones(node):
    lxc_path, done = node
    spares.refill(lxc_path, count=2)
    done.clear()
    first = spares.clone("env-a", lxc_path, spare=2)
    second = spares.clone("env-b", lxc_path, spare=2)
    third = spares.clone("env-c", lxc_path, spare=2)
    assert [first["spare"], second["spare"], third["spare"]] == [True, True, False]
    assert spares.spares_present(lxc_path) == []
    assert done == [("refill", lxc_path, None, None, 2)] * 2 + [("clone", "env-c"), ("refill", lxc_path, None, None, 2)]
    assert sorted(os.listdir(lxc_path)) == sorted([lxc.GOLDEN_NAME, "env-a", "env-b", "env-c", ".corpus-spare.lock",
                                                   ".corpus-spare-refill.lock"])


def test_no_pool_takes_nothing_and_makes_nothing(node):
    lxc_path, done = node
    spares.refill(lxc_path, count=1)
    done.clear()
    assert spares.clone("env-a", lxc_path, spare=0)["spare"] is False
    assert done == [("clone", "env-a")]
    assert spares.spares_present(lxc_path) == ["corpus-spare"]


def test_a_new_golden_image_makes_the_pool_again_and_a_smaller_pool_drops_what_no_longer_fits(node):
    lxc_path, done = node
    spares.refill(lxc_path, count=3)
    with open(lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path), "ab") as fh:
        fh.truncate(8 * 1024 * 1024)  # the golden image changed
    done.clear()
    assert not spares.take("env-a", lxc_path)  # a spare of the old image is not taken
    assert spares.refill(lxc_path, count=1) == "made"
    assert sorted(done) == sorted([("destroy", "corpus-spare-2"), ("destroy", "corpus-spare-3"),
                                   ("destroy", "corpus-spare"), ("clone", "corpus-spare")])
    assert spares.spares_present(lxc_path) == ["corpus-spare"]


def test_remove_takes_every_spare_away(node):
    lxc_path, done = node
    spares.refill(lxc_path, count=2)
    assert spares.remove(lxc_path) == ["container corpus-spare", "container corpus-spare-2"]
    assert spares.spares_present(lxc_path) == []


def test_a_spares_name_is_not_an_environments(node):
    lxc_path, _ = node
    for name in ("corpus-spare", "corpus-spare-7"):
        with pytest.raises(CorpusError, match="is a spare container's name"):
            spares.clone(name, lxc_path)


class FakeClock:
    """``time.monotonic``, ``time.time`` and ``time.sleep`` of spares, and the CPU use it sees."""

    def __init__(self, monkeypatch, busy):
        self.now = 1000.0
        self.busy = list(busy)  # the CPU percent of each one-second sample, in turn
        self.samples = 0
        monkeypatch.setattr(spares.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(spares.time, "time", lambda: self.now)
        monkeypatch.setattr(spares.time, "sleep", self.sleep)
        monkeypatch.setattr(spares.psutil, "cpu_percent", self.cpu_percent)

    def sleep(self, seconds):
        self.now += seconds

    def cpu_percent(self, interval):
        self.now += interval
        self.samples += 1
        return self.busy.pop(0) if self.busy else 0.0


def test_a_background_refill_waits_until_no_spare_was_just_taken_and_the_cpus_are_not_busy(node, monkeypatch):
    lxc_path, done = node
    clock = FakeClock(monkeypatch, busy=[95.0, 80.0, 10.0])
    taken = os.path.join(lxc_path, spares.TAKE_LOCK)
    open(taken, "w").close()
    os.utime(taken, (clock.now - 2, clock.now - 2))  # a spare taken 2 s ago
    started = clock.now
    assert spares.refill(lxc_path, count=1, quiet=True) == "made"
    assert done == [("clone", "corpus-spare")]
    # 3 s for the burst to settle, then three one-second samples: two busy, one not.
    assert clock.now - started == pytest.approx(spares.SETTLE_SECONDS - 2 + 3)
    assert clock.samples == 3


def test_a_refill_on_a_node_that_stays_busy_goes_ahead_after_its_longest_wait(node, monkeypatch):
    lxc_path, done = node
    clock = FakeClock(monkeypatch, busy=[100.0] * 1000)
    started = clock.now
    assert spares.wait_for_quiet(lxc_path) is False
    assert clock.now - started == pytest.approx(spares.QUIET_WAIT)
    assert spares.refill(lxc_path, count=1) == "made"  # not asked to wait: at once
    assert clock.now - started == pytest.approx(spares.QUIET_WAIT)


def test_taking_a_spare_marks_when(node, monkeypatch):
    lxc_path, done = node
    spares.refill(lxc_path, count=1)
    taken = os.path.join(lxc_path, spares.TAKE_LOCK)
    os.utime(taken, (1, 1))
    assert spares.take("env-a", lxc_path) is True
    assert abs(os.stat(taken).st_mtime - time.time()) < 5


def test_a_background_refill_is_reaped_when_it_ends(tmp_path):
    # No golden image here: the refill says so and ends at once. Its parent (a node's minion,
    # which lives on; here this test) must not keep it as a zombie.
    pid = spares.refill_in_background(str(tmp_path))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            psutil.Process(pid).status()
        except psutil.NoSuchProcess:
            break  # ended and reaped
        time.sleep(0.1)
    else:
        pytest.fail("the refill is still in the process table (a zombie, or running)")
    with open(tmp_path / spares.REFILL_LOG, encoding="utf-8") as fh:
        assert "no golden image" in fh.read()
