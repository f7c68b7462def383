"""The API's one reader of the master's bus hands each job's events to that job's streams only."""

import queue

import pytest

from mc_project.api import job_bus


@pytest.fixture
def bus(monkeypatch, tmp_path):
    monkeypatch.setattr(job_bus.JobBus, "_start", lambda self: True)  # no master: events are handed in
    return job_bus.JobBus({"sock_dir": str(tmp_path)})


def event(tag):
    return {"tag": tag, "data": {}}


def drained(events_of_job):
    got = []
    while True:
        try:
            got.append(events_of_job.get_nowait()["tag"])
        except queue.Empty:
            return got


def test_each_stream_gets_its_jobs_events_and_no_other_jobs(bus):
    one, one_again, twelve = bus.subscribe(1), bus.subscribe(1), bus.subscribe(12)
    for tag in ("corpus/job/1/step/2/running", "corpus/job/12/step/1/success", "corpus/job/1/success",
                "corpus/job/123/failed", "corpus/jobless"):
        bus._hand_over(event(tag))
    mine = ["corpus/job/1/step/2/running", "corpus/job/1/success"]
    assert drained(one) == mine and drained(one_again) == mine
    assert drained(twelve) == ["corpus/job/12/step/1/success"]


def test_a_stream_that_left_is_handed_nothing_more(bus):
    first, second = bus.subscribe(7), bus.subscribe(7)
    bus.unsubscribe(7, first)
    bus._hand_over(event("corpus/job/7/success"))
    assert drained(first) == [] and drained(second) == ["corpus/job/7/success"]
    bus.unsubscribe(7, second)
    assert bus._queues == {}


def test_no_master_means_no_subscription(tmp_path):
    assert job_bus.JobBus({"sock_dir": str(tmp_path / "absent")}).subscribe(1) is None
