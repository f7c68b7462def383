"""The live parts of the page, as Server-Sent Events of HTML for htmx's SSE extension.

A job's page listens to ``/web/jobs/{id}/events``: the API's own stream of the job
(``api.sse.stream``: the master's event bus, the inventory as the truth) turned into
HTML. Each step change is an ``event: step-N`` whose data is the step's row as the page
draws it (the extension swaps it into the element with ``sse-swap="step-N"``), followed
by ``event: summary`` (the job's header, counts and buttons); the end is a last
``summary`` then ``event: end``, on which the page closes the stream.

A project's panel, once asked to watch, listens to
``/web/environments/{env}/projects/{project}/deploys?after=ID`` (the newest deploy
record the panel showed, so one that ran before the stream was up is not missed):
while a deploy runs, its record (``mc_project.status`` on the environment's minion,
which the engine writes before and after each step) is read every two seconds and each
new line of its progress is sent as it appears.
"""

import json
import time

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from mc_project.api import background, sse
from mc_project.api.errors import sentence
from mc_project.api.deps import controller
from mc_project.api.routers import projects as project_routes
from mc_project.api.tenants import Principal
from mc_project.common import messages
from mc_project.web import render
from mc_project.web.pages import EnvName, JobId, ProjectName, job_context
from mc_project.web.session import viewer

router = APIRouter(prefix="/web", include_in_schema=False)

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DEPLOY_POLL = 2.0
# How long a panel waits for a deploy to start, then how long one may run, watched.
DEPLOY_WAIT = 600
DEPLOY_MAX = 3600


def frame(kind, html):
    """An SSE frame whose data is ``html`` (one ``data:`` line per line of it)."""
    lines = html.strip().splitlines() or [""]
    return ("event: {}\n{}\n".format(kind, "".join("data: {}\n".format(line) for line in lines))).encode()


def parse(frame_bytes):
    """``(kind, data)`` of one of the API's frames, or None for a comment (keepalive)."""
    kind, data = None, None
    for line in frame_bytes.decode().splitlines():
        if line.startswith("event: "):
            kind = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
    return (kind, data) if kind else None


def fragment(request, name, context):
    return render.templates.get_template(name).render(dict(context, request=request, csrf=request.state.csrf))


def job_frames(request, job_id, caller):
    for raw in sse.stream(request.app.state.ctl, job_id):
        parsed = parse(raw)
        if parsed is None:
            yield raw  # the keepalive comment, as is
            continue
        kind, data = parsed
        context = job_context(request, job_id, caller)
        if kind == "step":
            step = next((row for row in context["steps"] if row["index"] == data["step"]), None)
            if step is not None:
                yield frame("step-{}".format(step["index"]), fragment(request, "_step.html",
                                                                       dict(context, step=step)))
        yield frame("summary", fragment(request, "_job_summary.html", context))
        if kind == "end":
            yield frame("end", "<span>{}</span>".format(data["status"]))


@router.get("/jobs/{job_id}/events")
def job_events(request: Request, job_id: int = JobId, caller: Principal = Depends(viewer)):
    job_context(request, job_id, caller)  # another tenant's job: 404 before the stream starts
    return StreamingResponse(job_frames(request, job_id, caller), media_type="text/event-stream",
                             headers=HEADERS)


def progress_lines(record):
    """What a deploy record says so far, a line per step started and per step done. Steps
    run one after another, so the list only grows at its end as the deploy goes on."""
    if not isinstance(record, dict):
        return []
    lines = ["{} {} of {} ({})".format(record.get("kind", "deploy"), record.get("id", "?"),
                                      (record.get("commit") or "")[:12] or "?", record.get("mode") or "?")]
    for entry in record.get("steps") or []:
        if isinstance(entry, dict) and entry.get("step"):
            lines.append("-----> {}".format(entry["step"]))
            if entry.get("state") == "done":
                lines.append("       {} done".format(entry["step"]))
    if record.get("status") and record.get("status") != "running":
        lines.append("{} {}{}".format(record.get("kind", "deploy"), record["status"],
                                      ": " + str(record["error"]) if record.get("error") else ""))
    return lines


def deploy_frames(request, ctl, name, project, caller, after=None):
    """The lines of each deploy of ``project`` after record ``after`` (the newest one the
    page showed; None: the newest when the watch began): the one running, then each newer
    one, even one that began and ended between two reads."""
    escape = render.templates.env.filters["e"]
    before = after  # the newest record the page knew of, then the last one shown
    watched, sent = None, 0
    deadline = time.monotonic() + DEPLOY_WAIT
    while time.monotonic() < deadline:
        try:
            status = project_routes.get_project(request, name=name, project=project, caller=caller,
                                                ctl=ctl)["status"] or {}
        except Exception as exc:  # a minion that does not answer: said once, then the stream ends
            yield frame("deploy", "<div class=\"line bad\">{}</div>".format(escape(sentence(messages.reason(exc)))))
            return
        last = status.get("last") or {}
        running = status.get("deploying") and last.get("status") == "running"
        if before is None and not running:
            before = last.get("id") or ""
        elif watched is None and last.get("id") and (running or last.get("id") != before):
            watched, sent = last["id"], 0
            deadline = time.monotonic() + DEPLOY_MAX
        if watched is not None and last.get("id") == watched:
            lines = progress_lines(last)
            for line in lines[sent:]:
                yield frame("deploy", "<div class=\"line\">{}</div>".format(escape(line)))
            sent = len(lines)
            if last.get("status") != "running":
                yield frame("deployed", "<span>{} {}</span>".format(escape(watched), escape(last.get("status"))))
                before, watched, sent = watched, None, 0
                deadline = time.monotonic() + DEPLOY_WAIT
        # A comment each round: a page that went away ends the stream at the next write.
        yield b": waiting\n\n"
        time.sleep(DEPLOY_POLL)


AfterRecord = Query("", max_length=64)


@router.get("/environments/{name}/projects/{project}/watch")
def deploy_watch(request: Request, name: str = EnvName, project: str = ProjectName, after: str = AfterRecord,
                 caller: Principal = Depends(viewer), ctl=Depends(controller)):
    """The part of a project's panel that listens to its deploys (asked for when opened)."""
    project_routes._project(ctl, caller, name, project)
    return render.page(request, "_deploy_watch.html", {"env": name, "project": project, "after": after})


@router.get("/environments/{name}/projects/{project}/deploys")
def deploy_events(request: Request, name: str = EnvName, project: str = ProjectName, after: str = AfterRecord,
                  caller: Principal = Depends(viewer), ctl=Depends(controller)):
    project_routes._project(ctl, caller, name, project)  # 404 unknown or another tenant's
    # The stream is read in whichever worker thread is free: a copy of the controller for it.
    own = background.worker_controller(request.app.state.ctl)
    return StreamingResponse(deploy_frames(request, own, name, project, caller, after),
                             media_type="text/event-stream", headers=HEADERS)
