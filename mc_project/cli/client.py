"""The controller's REST API over httpx: its errors as exit codes, its job events as SSE."""

import json
import time

import httpx

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_NOT_ALLOWED, CliError

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# A job's event stream may be quiet for as long as its slowest step.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=None)

# Job statuses after which nothing changes any more, and those that mean it worked.
DONE_STATUSES = ("done", "succeeded", "success", "ok", "completed")
FINAL_STATUSES = DONE_STATUSES + ("failed", "error", "undone", "interrupted", "undo_failed", "cancelled", "aborted")


def exit_code_of(status):
    """400/404/409/422 (and other 4xx): bad input; 401/403: not allowed; else failed."""
    if status in (401, 403):
        return EXIT_NOT_ALLOWED
    if 400 <= status < 500:
        return EXIT_BAD_INPUT
    return EXIT_FAILED


def error_message(response):
    """The API's one sentence (``{"error": {"message"}}``), else what HTTP says."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or "")
        elif isinstance(error, str):
            message = error
        elif isinstance(body.get("detail"), str):
            message = body["detail"]
    if not message:
        message = f"The controller answered {response.status_code} {response.reason_phrase}"
    message = " ".join(message.split()).rstrip(".")
    if response.status_code == 401 and not response.request.url.path.endswith("/login"):
        message += " (run corpus login)"
    return message


class Client:
    """One controller: ``get``/``post``/``delete`` return the decoded JSON body."""

    def __init__(self, url, token="", transport=None):
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "corpus-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport)
        self.last_status = None  # of the last answer: 202 means a job was started

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def unreachable(self, exc):
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return CliError(f"Cannot reach the controller at {self.url}: {reason}", EXIT_FAILED)

    def request(self, method, path, json_body=None, params=None):
        try:
            response = self.http.request(method, path, json=json_body, params=_clean(params))
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        return self.decode(response)

    def decode(self, response):
        self.last_status = response.status_code
        if response.status_code >= 400:
            raise CliError(error_message(response), exit_code_of(response.status_code), response.status_code)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise CliError(f"The controller at {self.url} answered {response.request.url.path} "
                           "with something that is not JSON", EXIT_FAILED) from None

    def get(self, path, **params):
        return self.request("GET", path, params=params)

    def post(self, path, body=None):
        return self.request("POST", path, json_body=body if body is not None else {})

    def delete(self, path):
        return self.request("DELETE", path)

    def paged(self, path, limit=None, offset=0, **filters):
        """One page of a list (``{"items", "total", "limit", "offset"}``)."""
        return self.get(path, limit=limit, offset=offset or None, **filters)

    def events(self, job_id):
        """Yield ``(event, data)`` from ``GET /v1/jobs/{id}/events`` until the stream ends."""
        path = f"/v1/jobs/{job_id}/events"
        try:
            with self.http.stream("GET", path, timeout=STREAM_TIMEOUT,
                                  headers={"Accept": "text/event-stream"}) as response:
                if response.status_code >= 400:
                    response.read()
                    self.decode(response)
                yield from parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def wait_job(self, job_id, interval=1.0, timeout=None):
        """Poll a job until its status is final (when its event stream broke off)."""
        started = time.monotonic()
        while True:
            job = self.get(f"/v1/jobs/{job_id}")
            if str(job.get("status", "")).lower() in FINAL_STATUSES:
                return job
            if timeout is not None and time.monotonic() - started > timeout:
                return job
            time.sleep(interval)


def _clean(params):
    return {key: value for key, value in (params or {}).items() if value not in (None, "")} or None


def parse_sse(lines):
    """Server-Sent Events from an iterable of text lines: ``(event, data)`` pairs, the data
    decoded from JSON when it is JSON. Comments (``:``) and ids are ignored."""
    event, data = "message", []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield event, _decode("\n".join(data))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value or "message"
        elif field == "data":
            data.append(value)
    if data:
        yield event, _decode("\n".join(data))


def _decode(text):
    try:
        return json.loads(text)
    except ValueError:
        return text
