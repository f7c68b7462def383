"""``POST /v1/chat``: a command from a chat bridge, answered ``{"text": ...}``.

Slack's and Mattermost's outgoing webhooks and slash commands POST a form (or JSON)
with ``token`` (the shared secret), ``user_name``, ``text`` and, for outgoing
webhooks, ``trigger_word``. The secret may come in a header instead:
``X-Corpus-Chat-Secret: S`` or ``Authorization: Token S`` (Mattermost's slash
commands). The secret names the tenant; the chat user must be one of its chat users,
acting as a corpus login that is a member of that tenant, whose role there decides
what they may ask. A wrong secret is 401, a user not allowed 403; a command that is
not known is answered with the help text, and a refused one with why.
"""

import json
import urllib.parse

from sqlalchemy import select

from mc_project.api import auth, tenants
from mc_project.api.errors import ApiError
from mc_project.chat import actions, commands, settings
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Tenant, User

SECRET_HEADER = "x-corpus-chat-secret"


def fields_of(body, content_type):
    """The posted fields, as text: a form or a JSON object; {} for anything else."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    if "json" in (content_type or "").lower():
        try:
            found = json.loads(text)
        except ValueError:
            return {}
        return {str(key): str(value) for key, value in found.items()
                if isinstance(value, (str, int))} if isinstance(found, dict) else {}
    return {key: values[0] for key, values in urllib.parse.parse_qs(text, keep_blank_values=True).items()}


def secret_of(headers, fields):
    """The shared secret a request carries (a header, else the body's ``token``)."""
    given = headers.get(SECRET_HEADER)
    if given:
        return given.strip()
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    return fields.get("token")


class Asker:
    """Who asks: their tenant (id, name) and a principal holding their role in it alone."""

    def __init__(self, tenant_id, tenant_name, chat_name, principal):
        self.tenant_id = tenant_id
        self.tenant_name = tenant_name
        self.chat_name = chat_name
        self.principal = principal


def asker(url, headers, fields):
    """The asker of a request; ``ApiError`` 401 for a wrong secret, 403 for a user not allowed."""
    chat_name = (fields.get("user_name") or "").strip()
    with db.session(url) as sess:
        tenant_id = settings.tenant_of_secret(sess, secret_of(headers, fields))
        if tenant_id is None:
            raise ApiError(401, "Wrong or missing chat secret.")
        tenant_name = sess.scalar(select(Tenant.name).where(Tenant.id == tenant_id))
        login = settings.login_of(sess, tenant_id, chat_name) if chat_name else None
        if login is None:
            raise ApiError(403, "Chat user {} may not ask corpus anything here.".format(chat_name or "(none)"))
        user = sess.scalar(select(User).where(User.name == login))
        role = auth.principal_of(sess, user).roles.get(tenant_id) if user is not None else None
        if role is None:
            raise ApiError(403, "Chat user {} acts as {}, who is not a member of tenant {}.".format(
                chat_name, login, tenant_name))
    return Asker(tenant_id, tenant_name, chat_name, tenants.Principal(user.id, user.name, {tenant_id: role}))


def run(ctl, who, fields):
    """The text answering ``fields``' command for ``who``."""
    parsed = commands.parse(fields.get("text"), fields.get("trigger_word"))
    if parsed is None:
        return commands.HELP
    verb, name = parsed
    try:
        return actions.ACTIONS[verb](ctl, who.principal, name)
    except ApiError as exc:
        return exc.message
    except CorpusError as exc:
        return ApiError(400, str(exc)).message
