"""Every error the API answers: ``{"error": {"status": N, "message": "One sentence."}}``.

Routes raise ``ApiError``; a ``CorpusError`` from the controller's operations is
mapped to a status by what it says (unknown → 404, exists → 409, else 400); a
backend that cannot be reached (the Salt master, LDAP) is 503; a request that
does not validate is 422; anything else is 500 with one sentence, never a
traceback.
"""

import contextlib
import logging
import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from salt.exceptions import SaltClientError, SaltReqTimeoutError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mc_project.common import messages
from mc_project.errors import CorpusError
from mc_project.inventory.fleet_rules import Conflict, NotFound

log = logging.getLogger(__name__)

NOT_FOUND_RE = re.compile(r"^No (environment|compute node|project|token|user|tenant) named\b|"
                          r"\bhas no project\b|^No job \d+")
# Exists already; in a state that does not allow it (not active, no node linked yet).
CONFLICT_RE = re.compile(r"\balready\b|, not active\b|^No compute node is linked\b")
STATUS_WORDS = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
                405: "Method not allowed", 409: "Conflict", 422: "Invalid request",
                500: "Internal error", 503: "Service unavailable"}


class ApiError(Exception):
    """An answer other than success: an HTTP status and one sentence."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = sentence(message)


def sentence(text):
    text = messages.first_line(str(text)) or "The request failed"
    return text if text.endswith((".", "?", "!")) else text + "."


def body(status, message):
    return {"error": {"status": status, "message": sentence(message)}}


def respond(request, status, message, headers=None):
    request.state.audit_result = sentence(message)
    return JSONResponse(body(status, message), status_code=status, headers=headers)


def from_corpus_error(exc):
    """The ``ApiError`` a refusal of the controller's operations stands for."""
    text = str(exc)
    if NOT_FOUND_RE.search(text):
        return ApiError(404, text)
    if CONFLICT_RE.search(text):
        return ApiError(409, text)
    return ApiError(400, text)


@contextlib.contextmanager
def refusals():
    """The inventory's typed refusals as answers: unknown 404, exists or in use 409,
    anything else 400."""
    try:
        yield
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, str(exc)) from None
    except CorpusError as exc:
        raise ApiError(400, str(exc)) from None


def unreachable(what, exc=None):
    reason = ": {}".format(messages.reason(exc).rstrip(".")) if exc is not None else ""
    return ApiError(503, "{} cannot be reached{}.".format(what, reason))


def _validation_message(exc):
    errors = exc.errors()
    if not errors:
        return "The request is not valid."
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body",)) or "body"
    return "Invalid {}: {}.".format(where, str(first.get("msg", "not valid")).rstrip("."))


def install(app):
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return respond(request, exc.status, exc.message, headers)

    @app.exception_handler(CorpusError)
    async def corpus_error(request: Request, exc: CorpusError):
        mapped = from_corpus_error(exc)
        return respond(request, mapped.status, mapped.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return respond(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != STATUS_WORDS.get(
            exc.status_code) else None
        message = detail or {404: "No such route: {} {}.".format(request.method, request.url.path),
                             405: "Method {} is not allowed on {}.".format(request.method, request.url.path),
                             }.get(exc.status_code, STATUS_WORDS.get(exc.status_code, "The request failed"))
        return respond(request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(SaltClientError)
    async def salt_down(request: Request, exc: Exception):
        return respond(request, 503, unreachable("The Salt master", exc).message)

    app.add_exception_handler(SaltReqTimeoutError, salt_down)

    @app.exception_handler(OperationalError)
    async def inventory_down(request: Request, exc: OperationalError):
        log.warning("inventory error on %s %s: %s", request.method, request.url.path, exc)
        return respond(request, 503, "The inventory database cannot be reached.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(request, 500, "Internal error ({}); the controller's API log has the details.".format(
            type(exc).__name__))
