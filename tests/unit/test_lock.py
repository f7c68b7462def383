"""The deploy lock: one holder, waiting, refusal naming the holder, takeover from the dead."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from mc_project.project import lock
from mc_project.errors import CorpusError

HOLDER = textwrap.dedent("""
    import sys, time
    from mc_project.project import lock
    with lock.deploy_lock(sys.argv[1], sys.argv[2], 0):
        print("locked", flush=True)
        time.sleep(float(sys.argv[3]))
    print("released", flush=True)
""")


@pytest.fixture
def holder(tmp_path):
    """Start a separate process that takes the lock and holds it; yields the Popen."""
    procs = []

    def start(lock_path, job_id="job-holder", hold=60):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, lock_path, job_id, str(hold)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "locked"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def test_lock_records_its_owner_and_frees_on_exit(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    assert lock.read_holder(path) is None  # no file yet
    with lock.deploy_lock(path, "job-1", 0) as owner:
        assert owner["pid"] == os.getpid()
        assert owner["host"] == socket.gethostname()
        assert owner["job_id"] == "job-1"
        assert time.strptime(owner["started"], "%Y-%m-%dT%H:%M:%SZ")
        with open(path, encoding="utf-8") as fh:
            assert json.load(fh) == owner
        assert lock.read_holder(path) == owner
    # free again; the stale record in the file does not count as a holder
    assert lock.read_holder(path) is None
    with lock.deploy_lock(path, "job-2", 0) as owner:
        with open(path, encoding="utf-8") as fh:
            assert json.load(fh)["job_id"] == "job-2"


def test_lock_is_released_when_the_body_raises(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    with pytest.raises(RuntimeError):
        with lock.deploy_lock(path, "job-1", 0):
            raise RuntimeError("phase blew up")
    assert lock.read_holder(path) is None
    with lock.deploy_lock(path, "job-2", 0):
        pass


def test_second_acquirer_waits_then_is_refused_naming_the_holder(tmp_path, holder):
    path = str(tmp_path / ".deploy.lock")
    proc = holder(path, "job-holder")
    told = []
    started = time.monotonic()
    with pytest.raises(CorpusError) as err:
        with lock.deploy_lock(path, "job-late", 1.0, on_wait=told.append):
            pytest.fail("took a lock another process holds")
    waited = time.monotonic() - started
    assert waited >= 1.0
    msg = str(err.value)
    assert msg.startswith("Deploy refused: job job-holder (pid {} on {}, since ".format(
        proc.pid, socket.gethostname()))
    assert msg.endswith("holds the deploy lock and did not release it within 1.0s.")
    # the waiter says once whom it waits for
    assert told == ["waiting for the deploy lock held by job job-holder (pid {} on {}, since {})".format(
        proc.pid, socket.gethostname(), lock.read_holder(path)["started"])]
    # the refused waiter did not touch the holder's record
    holder_record = lock.read_holder(path)
    assert holder_record["pid"] == proc.pid and holder_record["job_id"] == "job-holder"


def test_waiter_gets_the_lock_when_the_holder_finishes(tmp_path, holder):
    path = str(tmp_path / ".deploy.lock")
    proc = holder(path, "job-short", hold=0.8)
    told = []
    with lock.deploy_lock(path, "job-next", 30, on_wait=told.append) as owner:
        assert proc.wait(timeout=10) == 0
        assert owner["job_id"] == "job-next"
        assert lock.read_holder(path)["job_id"] == "job-next"
    assert len(told) == 1 and "job-short" in told[0]


def test_lock_of_a_killed_owner_is_taken_over(tmp_path, holder):
    path = str(tmp_path / ".deploy.lock")
    proc = holder(path, "job-doomed")
    assert lock.read_holder(path)["pid"] == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    # the record of the dead owner is still in the file, but nobody holds the lock
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh)["job_id"] == "job-doomed"
    assert lock.read_holder(path) is None
    started = time.monotonic()
    with lock.deploy_lock(path, "job-after", 5) as owner:
        assert time.monotonic() - started < 1.0  # taken at once, not after the timeout
        assert owner["pid"] == os.getpid()
        assert lock.read_holder(path)["job_id"] == "job-after"


def test_read_holder_of_a_held_lock_with_a_garbled_record(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    with lock.deploy_lock(path, "job-1", 0):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("{not json")
        assert lock.read_holder(path) == {}
    assert lock.describe({}) == "another deploy"
    assert lock.describe(None) == "another deploy"


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    with lock.deploy_lock(path, "job-1", 0):
        with pytest.raises(CorpusError, match="job job-1 .* within 0s"):
            with lock.deploy_lock(path, "job-2", 0):
                pass
