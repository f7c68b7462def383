"""A job's steps as Server-Sent Events from a real corpus-api, fed by events fired on
a real salt-master's bus (signed with the controller's key) by a job run here."""

import json
import threading
import time

from mc_project import jobs
from support.api_answers import error

STEP_SECONDS = 0.3


def frames(response):
    """``(event, data, monotonic time received)`` of an SSE response, as they come."""
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: "):]), time.monotonic()


def quick_job(ctl, target, fired):
    def step(ctx):
        ctx.log("did " + ctx.name)
        time.sleep(STEP_SECONDS)

    def fire(tag, data):
        fired[tag] = time.monotonic()
        ctl.fire(tag, data)

    registry = {"test:one": (step, None), "test:two": (step, None), "test:three": (step, None)}
    manager = jobs.Jobs(ctl.url, registry=registry, fire=fire)
    return manager, manager.create("test_job", target, list(registry), {})


def test_a_watcher_sees_each_step_as_it_happens(http, login, ctl):
    alice = login("alice")
    fired = {}
    manager, job_id = quick_job(ctl, "a1", fired)
    with http.stream("GET", "/v1/jobs/{}/events".format(job_id), headers=alice) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        runner = threading.Thread(target=manager.run, args=(job_id,))
        time.sleep(0.5)  # the stream is listening to the bus
        runner.start()
        seen = list(frames(response))
    runner.join()
    steps = [(data["step"], data["status"]) for event, data, _ in seen if event == "step"]
    assert steps == [(1, "running"), (1, "success"), (2, "running"), (2, "success"), (3, "running"),
                     (3, "success")], seen
    event, end, _ = seen[-1]
    assert event == "end" and end["status"] == "success"
    done = [data for event, data, _ in seen if event == "step" and data["status"] == "success"]
    assert done[0]["log"] == "did test:one" and done[0]["seconds"] >= STEP_SECONDS
    # each step is shown while it runs, not when the job ends
    for index in (1, 2, 3):
        started = fired["corpus/job/{}/step/{}/running".format(job_id, index)]
        shown = next(at for event, data, at in seen if event == "step" and data == {
            "step": index, "name": data["name"], "status": "running", "seconds": None})
        assert shown - started < STEP_SECONDS, (index, shown - started)


def test_an_ended_job_sends_its_steps_then_end_at_once(http, login, ctl):
    alice = login("alice")
    manager, job_id = quick_job(ctl, "a2", {})
    manager.run(job_id)
    started = time.monotonic()
    answer = http.get("/v1/jobs/{}/events".format(job_id), headers=alice)
    assert time.monotonic() - started < 2
    events = [line for line in answer.text.splitlines() if line.startswith("event: ")]
    assert events == ["event: step"] * 3 + ["event: end"]
    job = http.get("/v1/jobs/{}".format(job_id), headers=alice).json()
    assert job["status"] == "success" and job["steps"] == {"total": 3, "by_status": {"success": 3}}
    assert job["kind"] == "test_job" and job["target"] == "a2" and job["ended"]


def test_another_tenants_job_is_404(http, login, ctl):
    manager, job_id = quick_job(ctl, "b1", {})
    error(http.get("/v1/jobs/{}/events".format(job_id), headers=login("alice")), 404)
    error(http.get("/v1/jobs/{}".format(job_id), headers=login("alice")), 404)
    assert http.get("/v1/jobs/{}".format(job_id), headers=login("bob")).json()["status"] == "pending"


def test_many_watchers_do_not_stall_the_api(api, login, ctl):
    """Each watcher holds a worker thread while it watches: more of them than uvicorn's
    default 40 threads still leave the API answering."""
    import contextlib

    import httpx

    alice = login("alice")
    manager, job_id = quick_job(ctl, "a1", {})
    with httpx.Client(base_url=api, timeout=10, limits=httpx.Limits(max_connections=100)) as client, \
            contextlib.ExitStack() as streams:
        for _ in range(50):
            response = streams.enter_context(client.stream("GET", "/v1/jobs/{}/events".format(job_id),
                                                           headers=alice))
            assert response.status_code == 200
        started = time.monotonic()
        assert client.get("/v1/environments", headers=alice).json()["total"] == 2
        assert time.monotonic() - started < 2
        manager.run(job_id)  # every stream ends
