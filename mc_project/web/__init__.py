"""The controller's web page, served by ``corpus-api`` under ``/web/``.

Server-rendered pages (Jinja2 templates in ``templates/``, plain CSS and the vendored
htmx with its SSE extension in ``static/``) over the REST API's own route functions:
the same login and tokens (``session``), the same tenants and roles, the same jobs and
audit. ``pages`` are what a user reads, ``actions`` what the forms do, ``live`` the
Server-Sent Events that make a job's steps and a deploy's progress appear as they
happen, ``chart`` the inline SVG charts. ``mount(app)`` adds it all to the API's app.
"""

import inspect
import urllib.parse

from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mc_project.api.errors import STATUS_WORDS, ApiError, from_corpus_error, sentence
from mc_project.errors import CorpusError
from mc_project.web import actions, health_page, live, pages, render, session

PREFIX = "/web"


def error_page(request, status, message):
    request.state.audit_result = sentence(message)
    title = {403: "Not allowed", 404: "Not found", 503: "Not reachable"}.get(status, STATUS_WORDS.get(
        status, "Refused"))
    return render.page(request, "error.html", {"status": status, "title": title, "message": sentence(message)},
                       status_code=status)


def _page_message(request, exc):
    """The status and sentence a page shows for ``exc``; None for what the API's own
    handlers answer the same way on every path."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, CorpusError):
        mapped = from_corpus_error(exc)
        return mapped.status, mapped.message
    if isinstance(exc, session.FormRefused):
        return 403, str(exc)
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        where = ".".join(str(part) for part in (errors[0].get("loc", ()) if errors else ())
                         if part not in ("query", "path"))
        return 400, "This page does not take that value as {}.".format(where) if where else \
            "This request is not valid."
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return 404, "There is no page at {}.".format(request.url.path)
        return exc.status_code, STATUS_WORDS.get(exc.status_code, "The request failed")
    return None


def _on_pages(original):
    """``original`` (the API's handler) for the API; an HTML page for the web page's paths."""

    async def handler(request, exc):
        if not request.url.path.startswith(PREFIX + "/") or request.url.path.startswith(PREFIX + "/static/"):
            if original is not None:
                return await original(request, exc) if _is_async(original) else original(request, exc)
            raise exc
        if isinstance(exc, session.LoginRequired):
            target = "{}?next={}".format(session.LOGIN_PATH, _quoted(exc.next_path))
            if request.headers.get("hx-request"):
                return RedirectResponse(target, status_code=303, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        found = _page_message(request, exc)
        if found is None:
            status, message = 500, "Internal error ({}); the controller's API log has the details".format(
                type(exc).__name__)
            if original is not None:  # the API's handler logs it
                await original(request, exc)
        else:
            status, message = found
        return error_page(request, status, message)

    return handler


def _is_async(function):
    return inspect.iscoroutinefunction(function)


def _quoted(path):
    return urllib.parse.quote(path, safe="/")


def mount(app):
    """Serve the web page from ``app`` (the API's): its routes, static files, and errors
    shown as pages on its paths."""
    for router in (actions.router, live.router, pages.router, health_page.router):
        app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=render.STATIC_DIR), name="web-static")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(PREFIX + "/", status_code=303)

    @app.get(PREFIX, include_in_schema=False)
    def web_root():
        return RedirectResponse(PREFIX + "/", status_code=303)

    for kind in (ApiError, CorpusError, RequestValidationError, StarletteHTTPException, Exception,
                 session.LoginRequired, session.FormRefused):
        app.add_exception_handler(kind, _on_pages(app.exception_handlers.get(kind)))
