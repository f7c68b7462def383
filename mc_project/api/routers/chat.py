"""Chat: ``/v1/tenants/{tenant}/chat`` (a tenant's admins set, show and remove its chat
settings: the outgoing webhook that job progress is posted to, the incoming shared
secret, the chat users allowed and the corpus login each acts as) and ``POST
/v1/chat`` (a chat bridge's command; no token: the shared secret, see
``mc_project.chat.incoming``).

The webhook's URL is its credential and the secret is kept as a hash: the API shows
the webhook's scheme and host only, and never the secret.
"""

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field

from mc_project.api import audit, auth, deps, tenants
from mc_project.api.deps import Strict
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.chat import incoming, settings
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto

router = APIRouter(tags=["chat"])

TenantName = Path(min_length=1, max_length=128)
MAX_USERS = 500


class ChatSettingsBody(Strict):
    webhook: str | None = Field(None, max_length=2048,
                                description="where job progress is posted; kept when absent, removed when empty")
    secret: str | None = Field(None, min_length=settings.MIN_SECRET, max_length=settings.MAX_SECRET,
                               description="the incoming webhook's shared secret; kept when absent")
    users: dict[str, str] = Field(default_factory=dict, max_length=MAX_USERS,
                                  description="chat user name -> corpus login")


def _administered(sess, caller, tenant):
    tenant_id = tenants.tenant_id(sess, tenant)
    what = "tenant named {}".format(tenant)
    if tenant_id is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, tenant_id, "admin", what)
    return tenant_id


def _key_file(request):
    return request.app.state.ctl.settings["secrets_key"]


@router.put("/tenants/{tenant}/chat")
def set_chat(body: ChatSettingsBody, request: Request, tenant: str = TenantName,
             caller: Principal = Depends(auth.principal)):
    """Set tenant ``tenant``'s chat settings (its admins only)."""
    with secrets_crypto.writing(_key_file(request)) as keyring, db.session(request.app.state.url) as sess:
        tenant_id = _administered(sess, caller, tenant)
        audit.note(request, target=tenant, tenant=tenant)
        try:
            settings.put(sess, keyring, tenant_id, webhook=body.webhook, secret=body.secret, users=body.users,
                         who=caller.name)
        except CorpusError as exc:
            raise ApiError(409 if "already" in str(exc) else 400, str(exc)) from None
        shown = settings.shown(sess, _key_file(request), tenant_id, tenant)
    audit.note(request, result="chat settings of {} set ({} users)".format(tenant, len(body.users)))
    return shown


@router.get("/tenants/{tenant}/chat")
def get_chat(request: Request, tenant: str = TenantName, caller: Principal = Depends(auth.principal)):
    """Tenant ``tenant``'s chat settings, the webhook masked (its admins only)."""
    with db.session(request.app.state.url) as sess:
        tenant_id = _administered(sess, caller, tenant)
        shown = settings.shown(sess, _key_file(request), tenant_id, tenant)
    if shown is None:
        raise ApiError(404, "Tenant {} has no chat settings.".format(tenant))
    return shown


@router.delete("/tenants/{tenant}/chat", status_code=204)
def remove_chat(request: Request, tenant: str = TenantName, caller: Principal = Depends(auth.principal)):
    """Forget tenant ``tenant``'s chat settings (its admins only)."""
    with db.session(request.app.state.url) as sess:
        tenant_id = _administered(sess, caller, tenant)
        audit.note(request, target=tenant, tenant=tenant)
        if not settings.remove(sess, tenant_id):
            raise ApiError(404, "Tenant {} has no chat settings.".format(tenant))
    audit.note(request, result="chat settings of {} removed".format(tenant))
    return Response(status_code=204)


def _answer(request, fields):
    """``(status, text)`` of a chat command (in a worker thread: it reads the inventory and
    may ask a minion)."""
    try:
        who = incoming.asker(request.app.state.url, request.headers, fields)
    except ApiError as exc:
        return exc.status, exc.message
    request.state.user = who.principal.name
    audit.note(request, target=(fields.get("text") or "")[:255], tenant=who.tenant_name)
    return 200, incoming.run(deps.controller(request), who, fields)


@router.post("/chat", responses={401: {"description": "wrong secret"}, 403: {"description": "user not allowed"}})
async def chat(request: Request):
    """A chat bridge's command (``status NAME``, ``deploy NAME``, ``redeploy NAME``), answered
    ``{"text": ...}``; authenticated by the tenant's shared secret, not a token (a wrong one
    is 401, a chat user not allowed 403, in the API's error shape)."""
    fields = incoming.fields_of(await request.body(), request.headers.get("content-type"))
    status, text = await anyio.to_thread.run_sync(_answer, request, fields)
    if status != 200:  # the API's one error shape; a chat shows nothing of an answer other than 200
        raise ApiError(status, text)
    request.state.audit_result = text[:255]
    return {"text": text}
