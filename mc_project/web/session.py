"""Who is looking at the web page: a session cookie holding a login's token, and the
CSRF token every form carries.

The cookie holds the same session token ``POST /v1/login`` issues (random, only its
SHA-256 kept, expiring, revocable: ``auth.login`` and ``auth.authenticate``), so the
page and the REST API share one notion of a login, its lifetime and its roles. It is
HttpOnly, SameSite=Lax, and Secure when the page is served over TLS.

CSRF: a form's token is an HMAC of the session token, so it is per session, needs no
storage, and cannot be computed by a page that cannot read the HttpOnly cookie. The
login form, which has no session yet, uses a random token kept in a cookie of its own
and echoed by the form (double submit).
"""

import hashlib
import hmac
import secrets
import urllib.parse

from fastapi import Request

from mc_project.api import auth
from mc_project.api.errors import ApiError

SESSION_COOKIE = "corpus_session"
LOGIN_CSRF_COOKIE = "corpus_login_csrf"
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/web/login"
HOME_PATH = "/web/"
# Bodies of the page's forms are a few fields; a larger one is not one of them.
MAX_FORM_BYTES = 64 * 1024


class LoginRequired(Exception):
    """No valid session: the page answers 303 to the login page."""

    def __init__(self, next_path):
        super().__init__(next_path)
        self.next_path = next_path


class FormRefused(Exception):
    """A form without the right CSRF token (or not a form at all): 403, one sentence."""


def secure(request):
    return request.url.scheme == "https"


def set_cookie(response, request, name, value, max_age=None):
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=secure(request))


def csrf_token(session_token):
    return hmac.new(session_token.encode(), b"corpus web form", hashlib.sha256).hexdigest()


def safe_next(path):
    """Where to go after logging in: a path of the page itself, never another site."""
    if isinstance(path, str) and path.startswith("/web/") and not path.startswith("//") and "\\" not in path:
        return path
    return HOME_PATH


def viewer(request: Request):
    """FastAPI dependency of every page: the principal of the session cookie (recorded for
    the audit), else ``LoginRequired``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired(_here(request))
    try:
        found = auth.authenticate(request.app.state.url, token)
    except ApiError as exc:
        if exc.status == 401:
            raise LoginRequired(_here(request)) from None
        raise
    request.state.user = found.name
    request.state.csrf = csrf_token(token)
    request.state.principal = found
    return found


def _here(request):
    """The page to come back to after logging in: this one, or the fleet after a form
    (a form's address is not a page)."""
    if request.method != "GET":
        return HOME_PATH
    query = "?" + request.url.query if request.url.query else ""
    return request.url.path + query


async def form(request: Request):
    """FastAPI dependency of every POST: the form's fields (one value each), once its CSRF
    token matched the session's (or, for the login form, its own cookie's)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise FormRefused("This is not a form of this page.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused("This form is too large.")
    fields = {key: values[-1] for key, values in urllib.parse.parse_qs(
        body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    given = fields.pop(CSRF_FIELD, "")
    session_token = request.cookies.get(SESSION_COOKIE)
    if request.url.path == LOGIN_PATH:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    else:
        expected = csrf_token(session_token) if session_token else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise FormRefused("This form expired or did not come from this page; reload the page and try again.")
    return fields


def new_login_csrf():
    return secrets.token_urlsafe(32)
