"""The one reader of the master's bus per process hands each event to the subscriptions whose
tag prefixes it matches, and a waiter gets its event without polling for it."""

import threading
import time

import pytest

from mc_project.controller import master_bus


@pytest.fixture
def bus(monkeypatch, tmp_path):
    monkeypatch.setattr(master_bus.MasterBus, "_start", lambda self: True)  # no master: events are handed in
    return master_bus.MasterBus({"sock_dir": str(tmp_path)})


def event(tag, **data):
    return {"tag": tag, "data": data}


def drained(subscription):
    got = []
    while True:
        found = subscription.get_event(wait=0, full=True)
        if found is None:
            return got
        got.append(found["tag"])


def test_each_subscription_gets_the_events_of_its_prefixes_and_no_others(bus):
    one, one_again, twelve = bus.subscribe("corpus/job/1/"), bus.subscribe("corpus/job/1/"), bus.subscribe(
        "corpus/job/12/")
    everything = bus.subscribe()
    tags = ("corpus/job/1/step/2/running", "corpus/job/12/step/1/success", "corpus/job/1/success",
            "corpus/job/123/failed", "salt/job/20261202/ret/web")
    for tag in tags:
        bus.hand_over(event(tag))
    mine = ["corpus/job/1/step/2/running", "corpus/job/1/success"]
    assert drained(one) == mine and drained(one_again) == mine
    assert drained(twelve) == ["corpus/job/12/step/1/success"]
    assert drained(everything) == list(tags)


def test_a_prefix_added_later_and_a_check_narrow_what_comes(bus):
    watching = bus.subscribe("salt/minion/web/start", check=lambda found: found["data"].get("signed"))
    bus.hand_over(event("salt/job/1/ret/web", signed=True))
    watching.add("salt/job/1/ret/web")
    bus.hand_over(event("salt/job/1/ret/web", signed=True))
    bus.hand_over(event("salt/minion/web/start"))
    bus.hand_over(event("salt/minion/web/start", signed=True))
    assert drained(watching) == ["salt/job/1/ret/web", "salt/minion/web/start"]


def test_get_event_skips_other_tags_and_gives_the_data_unless_full(bus):
    with bus.subscribe("salt/") as watching:
        bus.hand_over(event("salt/minion/web/start", id="web"))
        bus.hand_over(event("salt/job/1/ret/web", ret=True))
        assert watching.get_event(wait=0, tag="salt/job/1/") == {"ret": True}
        assert watching.get_event(wait=0) is None


def test_a_waiter_wakes_when_its_event_comes_and_times_out_otherwise(bus):
    watching = bus.subscribe("salt/job/7/ret/")
    threading.Timer(0.2, bus.hand_over, [event("salt/job/7/ret/web", ret=1)]).start()
    started = time.monotonic()
    assert watching.get_event(wait=5, full=True)["data"] == {"ret": 1}
    assert time.monotonic() - started < 2
    started = time.monotonic()
    assert watching.get_event(wait=0.3) is None
    assert 0.25 < time.monotonic() - started < 2


def test_a_closed_subscription_is_handed_nothing_more(bus):
    first, second = bus.subscribe("corpus/job/7/"), bus.subscribe("corpus/job/7/")
    first.close()
    bus.hand_over(event("corpus/job/7/success"))
    assert drained(first) == [] and drained(second) == ["corpus/job/7/success"]
    with second:
        pass
    assert bus._subscriptions == []


def test_no_master_means_no_subscription(tmp_path):
    assert master_bus.MasterBus({"sock_dir": str(tmp_path / "absent")}).subscribe("corpus/job/1/") is None


def test_a_service_waits_for_a_bus_it_cannot_reach_until_it_is_stopped(monkeypatch, tmp_path):
    opts = {"sock_dir": str(tmp_path / "not-yet")}
    stop = threading.Event()
    found = []
    waiting = threading.Thread(target=lambda: found.append(master_bus.subscription_until(opts, stop, "corpus/",
                                                                                         retry=0.05)))
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive()  # no bus: it tries again, it does not give up
    stop.set()
    waiting.join(2)
    assert found == [None]


class Recorder(master_bus.BusListener):
    thread_name = "test-recorder"
    prefixes = ("corpus/job/",)

    def __init__(self, opts):
        super().__init__(opts)
        self.seen = []

    def wanted(self, event):
        return not event["data"].get("skip")

    def handle(self, tag, data):
        if data.get("boom"):
            raise RuntimeError("a handler's bug")
        self.seen.append(tag)


def test_a_bus_listener_hands_over_what_it_wants_and_outlives_a_failing_handler(bus, monkeypatch, caplog):
    monkeypatch.setattr(master_bus, "for_master", lambda opts: bus)
    listener = Recorder({"sock_dir": "unused"}).start()
    assert listener.ready.wait(2)
    for tag, data in (("corpus/job/1/running", {}), ("corpus/job/1/step", {"boom": True}),
                      ("salt/job/2/ret/web", {}), ("corpus/job/1/skipped", {"skip": True}),
                      ("corpus/job/1/success", {})):
        bus.hand_over(event(tag, **data))
    deadline = time.monotonic() + 2
    while len(listener.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    listener.stop()
    assert listener.seen == ["corpus/job/1/running", "corpus/job/1/success"]
    assert "test-recorder: an event could not be handled" in caplog.text
    assert bus._subscriptions == []  # stopping ended its subscription
