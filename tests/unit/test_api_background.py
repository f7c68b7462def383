"""Jobs the API runs in threads: the caller gets the job's id once the job exists and its
event hook has seen it (a hook tags the job, with its tenant, that the caller reads next)."""

import threading
import time

import pytest

from mc_project.api import background
from mc_project.errors import CorpusError


class FakeController:
    def __init__(self):
        self.fired = []

    def fire(self, tag, data):
        self.fired.append((tag, data))


def test_the_id_comes_back_after_the_hook_has_seen_the_job():
    ctl, hooked, finish = FakeController(), [], threading.Event()

    def operation(job_ctl):
        job_ctl.fire("corpus/job/7/pending", {"job": 7})
        finish.wait(5)

    def slow_hook(tag, data):
        time.sleep(0.3)
        hooked.append(tag)

    try:
        assert background.start(ctl, operation, on_event=slow_hook) == 7
        assert hooked == ["corpus/job/7/pending"]
        assert ctl.fired == [("corpus/job/7/pending", {"job": 7})]
    finally:
        finish.set()


def test_a_failing_hook_does_not_stop_the_job():
    ctl = FakeController()

    def operation(job_ctl):
        job_ctl.fire("corpus/job/8/pending", {"job": 8})

    def broken_hook(tag, data):
        raise RuntimeError("broken")

    assert background.start(ctl, operation, on_event=broken_hook) == 8
    assert ctl.fired == [("corpus/job/8/pending", {"job": 8})]


def test_a_refusal_before_the_job_exists_is_raised_to_the_caller():
    def operation(job_ctl):
        raise CorpusError("An environment named web already exists.")

    with pytest.raises(CorpusError, match="already exists"):
        background.start(FakeController(), operation)
