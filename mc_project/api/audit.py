"""The record of every call that changes something: who, what, when, result.

A plain ASGI middleware: for each request other than GET, HEAD and OPTIONS it
notes the answer's status and, once the answer is sent, writes an
``AuditEntry`` with the user (``request.state.user``, set by authentication),
the method and path, the target and tenant a route named, and the result (the
error's sentence, or what the route said it did).
"""

import logging

import anyio

from mc_project.inventory import db
from mc_project.inventory.models import AuditEntry

log = logging.getLogger(__name__)

READ_ONLY = ("GET", "HEAD", "OPTIONS")


def write(url, entry):
    try:
        with db.session(url) as sess:
            sess.add(AuditEntry(**entry))
    except Exception:  # the call was answered; a lost record is logged, not raised
        log.exception("could not record %s", entry)


class AuditMiddleware:
    def __init__(self, app, url_of):
        self.app = app
        self.url_of = url_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in READ_ONLY:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        answered = {"status": 500}

        async def noting(message):
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            state = scope["state"]
            status = answered["status"]
            entry = {"user": state.get("user"), "action": "{} {}".format(scope["method"], scope["path"])[:255],
                     "target": state.get("audit_target"), "tenant": state.get("audit_tenant"),
                     "status": status,
                     "result": state.get("audit_result") or ("ok" if status < 400 else "failed")}
            await anyio.to_thread.run_sync(write, self.url_of(), entry)


def note(request, result=None, target=None, tenant=None):
    """What a route tells the audit about the change it made."""
    if result is not None:
        request.state.audit_result = result
    if target is not None:
        request.state.audit_target = str(target)[:255]
    if tenant is not None:
        request.state.audit_tenant = tenant
