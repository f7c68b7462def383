"""Stopping a process corpus did not start itself (a refill a node's minion started, a
daemon found by its pid file): a zombie is an ended process, a deaf one is killed."""

import subprocess
import sys
import time

import psutil

from mc_project.common import processes


def test_a_process_that_is_not_our_child_is_stopped_even_though_nobody_reaps_it():
    # sh starts a sleep and becomes a sleep that never waits: the first sleep, killed, stays
    # a zombie of it, which psutil's wait would wait on until its timeout.
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; exec sleep 60"], stdout=subprocess.PIPE, text=True)
    try:
        orphan = psutil.Process(int(parent.stdout.readline()))
        started = time.monotonic()
        assert processes.stop(orphan, 5) is True
        assert time.monotonic() - started < 3
        assert orphan.status() == psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait()


def test_a_process_deaf_to_sigterm_is_killed_after_the_timeout():
    deaf = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    assert deaf.stdout.readline().strip() == "ready"
    started = time.monotonic()
    assert processes.stop(psutil.Process(deaf.pid), 0.5) is True
    assert 0.4 < time.monotonic() - started < 3
    assert deaf.wait(5) == -9


def test_a_process_already_gone_is_stopped():
    ended = subprocess.Popen(["true"])
    process = psutil.Process(ended.pid)
    ended.wait()
    assert processes.stop(process, 1) is True
