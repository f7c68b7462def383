"""How the corpus command reads a job's Server-Sent Events and shows its steps."""

import io

from rich.console import Console

from mc_project.cli.client import parse_sse
from mc_project.cli.progress import StepProgress, failure_reason, succeeded
from mc_project.cli.projects import new_lines


def test_parse_sse():
    stream = [": a comment", "event: step", 'data: {"step": "a", "status": "running"}', "",
              "id: 7", "event: step", 'data: {"step": "a",', 'data: "status": "done"}', "",
              "data: plain", "", "event: end", 'data: {"status": "done", "result": {}}']
    assert list(parse_sse(stream)) == [
        ("step", {"step": "a", "status": "running"}),
        ("step", {"step": "a", "status": "done"}),
        ("message", "plain"),
        ("end", {"status": "done", "result": {}}),
    ]


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with StepProgress(console, live=False) as steps:
        # The API's shape: the step's index as "step", its name as "name".
        steps.step({"step": 3, "name": "lxc:clone", "status": "running", "seconds": 0})
        steps.step({"step": 3, "name": "lxc:clone", "status": "failed", "seconds": 2.25,
                    "log": "copying\nno space left"})
    assert out.getvalue().splitlines() == [
        "step lxc:clone running", "step lxc:clone failed 2.2s", "lxc:clone log:", "  copying", "  no space left"]


def test_a_bar_per_step_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with StepProgress(console, live=True) as steps:
        steps.step({"step": "env:register", "status": "running"})
        steps.step({"step": "env:register", "status": "done", "seconds": 0.4})
        steps.step({"step": "node:pick", "status": "running"})
    text = out.getvalue()
    assert "env:register" in text and "node:pick" in text and "0.4s" in text
    assert "\x1b[" in text  # drawn, not printed line by line
    assert len(steps.tasks) == 2


def test_outcome():
    assert succeeded({"status": "done"}) and not succeeded({"status": "failed"})
    assert failure_reason({"job_id": "4", "status": "failed", "result": {"error": "disk full."}}) == \
        "Job 4 failed: disk full"
    assert failure_reason({"job_id": "4", "status": "undone", "result": None}) == "Job 4 undone"
    assert failure_reason({"job_id": 5, "status": "failed", "result": None, "error": "Step x failed: y."}) == \
        "Job 5 failed: Step x failed: y"


def test_new_log_lines():
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["a"], ["x", "y"]) == ["x", "y"]
    assert new_lines([], ["x"]) == ["x"]
