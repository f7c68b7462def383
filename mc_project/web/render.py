"""Templates and how the page shows times, durations and statuses."""

import datetime
import os
import urllib.parse

from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES_DIR = os.path.join(HERE, "templates")
STATIC_DIR = os.path.join(HERE, "static")
FLASH_COOKIE = "corpus_flash"
# No other site frames the page (clickjacking) or learns its addresses from a link.
PAGE_HEADERS = {"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store"}

# A status's colour class: green done, blue going, red failed, grey not yet or taken back.
STATUS_CLASS = {"success": "ok", "active": "ok", "running": "run", "pending": "wait", "failed": "bad",
                "undo_failed": "bad", "interrupted": "warn", "undone": "wait", "destroying": "run",
                "creating": "run", "error": "bad", "orphaned": "warn"}


def parse_time(value):
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def when(value):
    """``2026-12-01 20:15:41 UTC``, or a dash."""
    moment = parse_time(value)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def ago(value):
    """``3 min ago``, for lists read at a glance."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    seconds = (datetime.datetime.now(datetime.timezone.utc) - moment).total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return "{} {} ago".format(int(seconds // size), unit)
    return "{} s ago".format(max(int(seconds), 0))


def duration(seconds):
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return "{:.1f} s".format(seconds)
    minutes, rest = divmod(int(round(seconds)), 60)
    return "{} min {:02d} s".format(minutes, rest)


def status_class(status):
    return STATUS_CLASS.get(str(status), "wait")


def megabytes(size):
    if not size:
        return "—"
    return "{:g} GiB".format(round(size / 1024, 1)) if size >= 1024 else "{} MiB".format(size)


templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters.update(when=when, ago=ago, duration=duration, status_class=status_class,
                             megabytes=megabytes)


def page(request, name, context=None, status_code=200, headers=None):
    """Render template ``name`` for ``request``: its user, CSRF token and the message the
    action before left (shown once)."""
    kind, _, message = urllib.parse.unquote(request.cookies.get(FLASH_COOKIE, "")).partition(":")
    values = {"user": getattr(request.state, "principal", None), "csrf": getattr(request.state, "csrf", ""),
              "flash": message or None, "flash_kind": kind if kind in ("ok", "bad") else "ok"}
    values.update(context or {})
    response = templates.TemplateResponse(request, name, values, status_code=status_code,
                                          headers=dict(PAGE_HEADERS, **(headers or {})))
    if message:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(request, url, message=None, kind="ok"):
    """303 to ``url``, with ``message`` shown once on the page it leads to."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, urllib.parse.quote("{}:{}".format(kind, message)[:1000]), path="/",
                            httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response
