"""A small stand-in for the controller's REST API, for the ``corpus`` command's tests.

It keeps the API's contract (``/v1/...``: bearer tokens, ``{"error": {"status",
"message"}}`` errors, paged lists, 202 ``{"job_id", "location"}`` for long work, a job's
steps as Server-Sent Events) over objects held in memory, and is served by a real
uvicorn on a free loopback port::

    with StubApi() as api:
        api.url, api.state.jobs ...

Users: ``alice``/``secret`` (tenant ``acme``, role ``admin``) and ``val``/``secret``
(role ``viewer``: every change is 403). The token ``expired`` is refused (401). An
environment whose name starts with ``fail`` fails its job at ``lxc:clone`` and undoes
the steps before it.
"""

import asyncio
import itertools
import json
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from support.ports import LOOPBACK, free_port
from support.wait import wait_for

INIT_ENV_STEPS = ["env:register", "node:pick", "ip:allocate", "lxc:clone", "creds:generate", "env:activate"]
DESTROY_STEPS = ["env:deactivate", "lxc:destroy", "env:unregister"]
RESIZE_STEPS = ["lxc:stop", "lxc:resize", "lxc:start"]
PROJECT_STEPS = ["project:init", "pillar:write"]
FAILING_STEP = "lxc:clone"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nstub\n-----END OPENSSH PRIVATE KEY-----"
FINAL = ("success", "failed", "undone", "interrupted")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class StubState:
    """What the stub API holds; tests read and change it directly."""

    def __init__(self, step_delay=0.05):
        self.lock = threading.Lock()
        self.step_delay = step_delay
        self.users = {
            "alice": {"password": "secret", "tenants": [{"name": "acme", "role": "admin"}]},
            "val": {"password": "secret", "tenants": [{"name": "acme", "role": "viewer"}]},
        }
        self.tokens = {}
        self.nodes = [{"name": "node1", "address": "192.0.2.10", "dns_name": "node1.example.com",
                       "slots": 10, "free_slots": 9, "guest_type": "lxc"}]
        self.envs = {}
        self.projects = {}
        self.jobs = {}
        self.ids = itertools.count(1)
        self.remote_of = {}  # (env, project) -> remote URL, to push to a local bare repo
        self.requests = []  # (method, path, headers' Authorization, body)

    # -- users
    def user(self, request):
        header = request.headers.get("authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        if token == "expired":
            raise ApiError(401, "The token has expired")
        name = self.tokens.get(token)
        if not name:
            raise ApiError(401, "No valid token")
        return name

    def public_user(self, name):
        return {"name": name, "tenants": self.users[name]["tenants"]}

    def may_change(self, name):
        if self.users[name]["tenants"][0]["role"] == "viewer":
            raise ApiError(403, f"User {name} may not change anything in tenant acme")

    # -- jobs
    def start_job(self, kind, target, steps, result=None, fail_at=None, on_done=None, ends="success"):
        job_id = str(next(self.ids))
        job = {"id": job_id, "kind": kind, "target": target, "status": "running", "result": None, "error": None,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "steps": [{"index": index, "name": step, "status": "pending", "seconds": None, "log": ""}
                         for index, step in enumerate(steps)],
               "events": []}
        self.jobs[job_id] = job
        threading.Thread(target=self._run, args=(job, result, fail_at, on_done, ends), daemon=True).start()
        return {"job_id": job_id, "location": f"/v1/jobs/{job_id}"}

    def _event(self, job, event, data):
        with self.lock:
            job["events"].append((event, data))

    def _step_event(self, job, step):
        data = {"step": step["index"], "name": step["name"], "status": step["status"], "seconds": step["seconds"]}
        if step.get("log"):
            data["log"] = step["log"]
        self._event(job, "step", data)

    def _run(self, job, result, fail_at, on_done, ends):
        done_steps = []
        for step in job["steps"]:
            step.update(status="running", seconds=0)
            self._step_event(job, step)
            time.sleep(self.step_delay)
            if step["name"] == fail_at:
                step.update(status="failed", seconds=self.step_delay,
                            log="lxc-copy: copying the golden image\nlxc-copy: No space left on device")
                self._step_event(job, step)
                for undone in reversed(done_steps):
                    undone["status"] = "undone"
                    self._step_event(job, undone)
                job.update(status="failed", error="Step lxc:clone failed: No space left on device.")
                self._event(job, "end", {"status": "failed", "result": None, "error": job["error"]})
                return
            step.update(status="success", seconds=self.step_delay)
            self._step_event(job, step)
            done_steps.append(step)
        if on_done:
            on_done()
        job.update(status=ends, result=result or {"target": job["target"]})
        self._event(job, "end", {"status": ends, "result": job["result"], "error": None})

    def public_job(self, job):
        """As the API shows a job: its steps counted, the one it is on."""
        current = next(({"index": s["index"], "name": s["name"], "status": s["status"]} for s in job["steps"]
                        if s["status"] not in ("success", "pending")), None)
        counts = {}
        for step in job["steps"]:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        return {key: value for key, value in job.items() if key not in ("events", "steps")} | {
            "current_step": current, "steps": {"total": len(job["steps"]), "by_status": counts}}

    # -- objects
    def env(self, name):
        env = self.envs.get(name)
        if not env:
            raise ApiError(404, f"No environment {name}")
        return env

    def project(self, env, name):
        self.env(env)
        project = self.projects.get((env, name))
        if not project:
            raise ApiError(404, f"No project {name} in environment {env}")
        return project

    def add_project(self, env, name):
        remote = self.remote_of.get((env, name)) or \
            f"ssh://root@192.0.2.10:40001/srv/projects/{name}/git/project.git"
        self.projects[(env, name)] = {
            "name": name, "env": env, "status": "active", "remote": remote,
            "releases": [{"id": "20260101-000001", "commit": "a1b2c3d", "mode": "editable", "status": "ok",
                          "live": False},
                         {"id": "20260101-000002", "commit": "d4e5f6a", "mode": "editable", "status": "ok",
                          "live": True}],
            "log": [f"{name}: started", f"{name}: listening on 8080"],
        }
        env = self.envs[env]
        if name not in env["projects"]:
            env["projects"].append(name)

    def add_env(self, name, env_type, project=None, disk_size_mb=10240, status="active"):
        self.envs[name] = {"name": name, "uuid": f"uuid-{name}", "type": env_type, "status": status,
                           "project": project or name, "projects": [], "node": "node1", "ip": "10.5.0.2",
                           "ssh": "192.0.2.10:40001", "domains": [f"{name}.example.com"],
                           "disk_size_mb": disk_size_mb, "tenant": "acme"}
        self.add_project(name, project or name)


def paged(items, request):
    limit = int(request.query_params.get("limit") or 50)
    offset = int(request.query_params.get("offset") or 0)
    return {"items": items[offset:offset + limit], "total": len(items), "limit": limit, "offset": offset}


def make_app(state):
    app = FastAPI(title="corpus API stub")

    @app.exception_handler(ApiError)
    async def api_error(request, exc):
        return JSONResponse({"error": {"status": exc.status, "message": exc.message}}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request, exc):
        return JSONResponse({"error": {"status": 422, "message": "The request body is not valid"}}, status_code=422)

    @app.middleware("http")
    async def record(request: Request, call_next):
        body = await request.body()
        state.requests.append((request.method, request.url.path, request.headers.get("authorization"),
                               json.loads(body) if body else None))
        return await call_next(request)

    @app.post("/v1/login")
    async def login(body: dict):
        user = state.users.get(body.get("username"))
        if not user or user["password"] != body.get("password"):
            raise ApiError(401, "Bad user name or password")
        token = f"tok-{body['username']}-{next(state.ids)}"
        state.tokens[token] = body["username"]
        return {"token": token, "expires_at": "2026-12-31T00:00:00Z", "user": state.public_user(body["username"])}

    @app.post("/v1/logout", status_code=204)
    async def logout(request: Request):
        state.user(request)
        token = request.headers["authorization"][len("Bearer "):]
        state.tokens.pop(token, None)
        return Response(status_code=204)

    @app.get("/v1/whoami")
    async def whoami(request: Request):
        return state.public_user(state.user(request))

    @app.get("/v1/nodes")
    async def nodes(request: Request):
        state.user(request)
        return paged(state.nodes, request)

    @app.get("/v1/environments")
    async def environments(request: Request):
        state.user(request)
        return paged(list(state.envs.values()), request)

    @app.post("/v1/environments", status_code=202)
    async def create_env(request: Request, body: dict):
        state.may_change(state.user(request))
        name, env_type = body.get("name"), body.get("type")
        if env_type not in ("dev", "staging", "prod"):
            raise ApiError(400, f"Unknown environment type {env_type}")
        if name in state.envs:
            raise ApiError(409, f"Environment {name} exists already")
        state.add_env(name, env_type, body.get("project"), body.get("disk_size_mb") or 10240, status="creating")
        fail_at = FAILING_STEP if name.startswith("fail") else None

        def activate():
            state.envs[name]["status"] = "active"

        return state.start_job("init_env", name, INIT_ENV_STEPS, fail_at=fail_at, on_done=activate, result={
            "name": name, "ssh": state.envs[name]["ssh"], "domains": state.envs[name]["domains"],
            "git_remote": state.projects[(name, state.envs[name]["project"])]["remote"]})

    @app.get("/v1/environments/{name}")
    async def get_env(request: Request, name: str):
        state.user(request)
        return state.env(name)

    @app.delete("/v1/environments/{name}", status_code=202)
    async def delete_env(request: Request, name: str):
        state.may_change(state.user(request))
        state.env(name)

        def forget():
            state.envs.pop(name, None)

        return state.start_job("destroy_env", name, DESTROY_STEPS, on_done=forget)

    @app.post("/v1/environments/{name}/resize", status_code=202)
    async def resize(request: Request, name: str, body: dict):
        state.may_change(state.user(request))
        env = state.env(name)
        size, grow = body.get("size_mb"), body.get("grow")
        if not isinstance(size, int) or size < 512:
            raise ApiError(400, "A disk size is 512 MiB to 1 TiB")
        if grow and size <= env["disk_size_mb"]:
            raise ApiError(400, f"{name} has {env['disk_size_mb']} MiB already: enlarge grows it")
        if not grow and size >= env["disk_size_mb"]:
            raise ApiError(400, f"{name} has {env['disk_size_mb']} MiB: trim shrinks it")

        def apply():
            env["disk_size_mb"] = size

        return state.start_job("enlarge" if grow else "trim", name, RESIZE_STEPS, on_done=apply,
                               result={"disk_size_mb": size})

    @app.get("/v1/environments/{name}/credentials")
    async def credentials(request: Request, name: str):
        state.user(request)
        env = state.env(name)
        return {"name": name, "ssh": env["ssh"], "root_password": "r00t-pw", "ssh_private_key": PRIVATE_KEY}

    @app.get("/v1/environments/{name}/projects")
    async def projects(request: Request, name: str):
        state.user(request)
        state.env(name)
        items = [{k: v for k, v in p.items() if k not in ("releases", "log")}
                 for (env, _), p in state.projects.items() if env == name]
        return paged(items, request)

    @app.post("/v1/environments/{name}/projects", status_code=202)
    async def add_project(request: Request, name: str, body: dict):
        state.may_change(state.user(request))
        state.env(name)
        project = body.get("project")
        if (name, project) in state.projects:
            raise ApiError(409, f"Project {project} exists in {name} already")
        return state.start_job("add_project", f"{name}/{project}", PROJECT_STEPS,
                               on_done=lambda: state.add_project(name, project))

    @app.get("/v1/environments/{name}/projects/{project}")
    async def get_project(request: Request, name: str, project: str):
        state.user(request)
        return {k: v for k, v in state.project(name, project).items() if k not in ("releases", "log")}

    @app.get("/v1/environments/{name}/projects/{project}/releases")
    async def releases(request: Request, name: str, project: str):
        state.user(request)
        return paged(state.project(name, project)["releases"], request)

    @app.post("/v1/environments/{name}/projects/{project}/rollback", status_code=202)
    async def rollback(request: Request, name: str, project: str, body: dict):
        state.may_change(state.user(request))
        record = state.project(name, project)
        ids = [r["id"] for r in record["releases"]]
        wanted = body.get("release") or ids[-2]
        if wanted not in ids:
            raise ApiError(404, f"No release {wanted} of {project}")

        previous = next(r["id"] for r in record["releases"] if r.get("live"))

        def switch():
            for release in record["releases"]:
                release["live"] = release["id"] == wanted

        return state.start_job("rollback", name, ["project:rollback"], on_done=switch,
                               result={"env": name, "project": project, "release": wanted, "previous": previous})

    @app.get("/v1/environments/{name}/projects/{project}/logs")
    async def logs(request: Request, name: str, project: str, lines: int = 200):
        state.user(request)
        log = state.project(name, project)["log"]
        tail = log[-lines:]
        log.append(f"{project}: request {len(log)}")  # the app logs on, one line per look
        return {"lines": tail}

    @app.get("/v1/jobs")
    async def jobs(request: Request):
        state.user(request)
        items = [state.public_job(job) for job in state.jobs.values()]
        for key in ("kind", "target", "status"):
            if request.query_params.get(key):
                items = [job for job in items if job[key] == request.query_params[key]]
        return paged(items, request)

    def find_job(job_id):
        job = state.jobs.get(job_id)
        if not job:
            raise ApiError(404, f"No job {job_id}")
        return job

    @app.get("/v1/jobs/{job_id}")
    async def job(request: Request, job_id: str):
        state.user(request)
        return state.public_job(find_job(job_id))

    @app.get("/v1/jobs/{job_id}/steps")
    async def steps(request: Request, job_id: str):
        state.user(request)
        steps = find_job(job_id)["steps"]
        return {"items": steps, "total": len(steps), "limit": len(steps), "offset": 0}

    @app.post("/v1/jobs/{job_id}/undo", status_code=202)
    async def undo(request: Request, job_id: str):
        state.may_change(state.user(request))
        job = find_job(job_id)
        if job["status"] not in FINAL:
            raise ApiError(409, f"Job {job_id} is still running")
        steps = [f"undo {s['name']}" for s in reversed(job["steps"]) if s["status"] == "success"]
        # As the API's: an undone job ends "undone".
        return state.start_job("undo", job_id, steps, ends="undone")

    @app.post("/v1/jobs/{job_id}/resume", status_code=202)
    async def resume(request: Request, job_id: str):
        state.may_change(state.user(request))
        job = find_job(job_id)
        if job["status"] == "success":
            raise ApiError(409, f"Job {job_id} is done already")
        return state.start_job("resume", job_id, [s["name"] for s in job["steps"] if s["status"] != "success"])

    @app.get("/v1/jobs/{job_id}/events")
    async def events(request: Request, job_id: str):
        state.user(request)
        job = find_job(job_id)

        async def stream():
            sent = 0
            yield ": events of job " + job_id + "\n\n"
            while True:
                with state.lock:
                    new = job["events"][sent:]
                sent += len(new)
                for event, data in new:
                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    if event == "end":
                        return
                await asyncio.sleep(0.02)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


class StubApi:
    """The stub served by uvicorn in a thread of this process."""

    def __init__(self, step_delay=0.05):
        self.state = StubState(step_delay)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        config = uvicorn.Config(make_app(self.state), host=LOOPBACK, port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def token_for(self, user="alice"):
        token = f"tok-{user}-fixed"
        self.state.tokens[token] = user
        return token

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, what="the stub API to start")
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run_corpus(args, home, env=None, cwd=None, stdin=None, timeout=60):
    """Run the ``corpus`` command as a user would (a process of its own), with ``home`` as
    ``$HOME`` and none of the caller's ``CORPUS_*`` variables; its CompletedProcess."""
    import os
    import subprocess
    import sys

    environ = {key: value for key, value in os.environ.items() if not key.startswith("CORPUS_")}
    environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), COLUMNS="200", NO_COLOR="1")
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "mc_project.cli", *args], env=environ, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)
