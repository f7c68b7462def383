"""A tenant's chat settings: the outgoing webhook's URL (a credential: kept encrypted in
the ``secrets`` table, shown masked), the incoming shared secret (its SHA-256 only) and
the chat users allowed, each acting as a corpus login.

``put`` replaces them (a webhook or secret not given is kept), ``shown`` is what the API
shows, ``remove`` forgets them; ``tenant_of_secret`` and ``login_of`` serve the incoming
webhook, ``webhook_of`` the outgoing one.
"""

import hashlib
import hmac
import re
import urllib.parse

from sqlalchemy import delete, select

from mc_project.api.users import NAME_RE as LOGIN_RE
from mc_project.errors import CorpusError
from mc_project.health.handlers import masked_target
from mc_project.inventory import secrets_crypto
from mc_project.inventory.chat_models import ChatSettings, ChatUser
from mc_project.inventory.models import Secret, utcnow

MIN_SECRET = 16
MAX_SECRET = 256
WEBHOOK_NAME = "webhook_url"
# Slack, Mattermost and Matrix user names: letters, digits and . _ - @ (no spaces).
CHAT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def secret_hash(secret):
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def owner(tenant_id):
    """The owner of a tenant's webhook URL in the ``secrets`` table."""
    return "chat:{}".format(int(tenant_id))


def check_webhook(url):
    """``url`` if it is an http(s) URL with a host; one sentence (without the URL) otherwise."""
    parts = urllib.parse.urlsplit(str(url or ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CorpusError("The webhook must be an http:// or https:// URL with a host.")
    return str(url)


def check_secret(secret):
    if not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= MAX_SECRET or secret != secret.strip():
        raise CorpusError("The shared secret must be {} to {} characters, without spaces around it.".format(
            MIN_SECRET, MAX_SECRET))
    return secret


def check_users(users):
    """``{chat name: login}``, checked."""
    for chat_name, login in (users or {}).items():
        if not CHAT_NAME_RE.fullmatch(str(chat_name)):
            raise CorpusError("{!r} is not a chat user name (letters, digits and . _ - @).".format(chat_name))
        if not LOGIN_RE.fullmatch(str(login)):
            raise CorpusError("{!r} is not a corpus login (chat user {}).".format(login, chat_name))
    return dict(users or {})


def put(sess, keyring, tenant_id, webhook=None, secret=None, users=None, who=None):
    """Replace tenant ``tenant_id``'s chat settings; a ``webhook`` or ``secret`` that is None
    is kept (a new tenant needs a secret). ``keyring`` encrypts the webhook (``writing``)."""
    users = check_users(users)
    found = sess.get(ChatSettings, tenant_id)
    if secret is None and found is None:
        raise CorpusError("A tenant's first chat settings need the shared secret.")
    if secret is not None:
        digest = secret_hash(check_secret(secret))
        taken = sess.scalar(select(ChatSettings.tenant_id).where(ChatSettings.secret_hash == digest,
                                                                  ChatSettings.tenant_id != tenant_id))
        if taken is not None:
            raise CorpusError("This shared secret is already another tenant's; choose another one.")
    if webhook is not None:
        check_webhook(webhook)
    if found is None:
        found = ChatSettings(tenant_id=tenant_id)
        sess.add(found)
    if secret is not None:
        found.secret_hash = digest
    found.updated = utcnow()
    found.updated_by = who
    sess.flush()
    if webhook is not None:
        sess.execute(delete(Secret).where(Secret.owner == owner(tenant_id), Secret.name == WEBHOOK_NAME))
        if webhook:
            secrets_crypto.put(sess, keyring, owner(tenant_id), WEBHOOK_NAME, webhook)
    sess.execute(delete(ChatUser).where(ChatUser.tenant_id == tenant_id))
    for chat_name, login in sorted(users.items()):
        sess.add(ChatUser(tenant_id=tenant_id, chat_name=chat_name, login=login))
    sess.flush()
    return found


def webhook_of(sess, keyring, tenant_id):
    """Tenant ``tenant_id``'s webhook URL, or None."""
    return secrets_crypto.values(sess, keyring, owner(tenant_id)).get(WEBHOOK_NAME)


def has_webhook(sess, tenant_id):
    """Whether tenant ``tenant_id`` has a webhook (without reading the key)."""
    return sess.scalar(select(Secret.id).where(Secret.owner == owner(tenant_id),
                                               Secret.name == WEBHOOK_NAME)) is not None


def shown(sess, key_file, tenant_id, tenant_name):
    """What the API shows of a tenant's chat settings (None when it has none); the key file
    ``key_file`` is read only when there is a webhook to show."""
    found = sess.get(ChatSettings, tenant_id)
    if found is None:
        return None
    webhook = webhook_of(sess, secrets_crypto.load(key_file), tenant_id) if has_webhook(sess, tenant_id) else None
    users = sess.scalars(select(ChatUser).where(ChatUser.tenant_id == tenant_id).order_by(ChatUser.chat_name))
    updated = found.updated
    return {"tenant": tenant_name, "webhook": masked_target("webhook", webhook) if webhook else None,
            "secret": "set", "users": {user.chat_name: user.login for user in users},
            "updated": updated.isoformat() if updated else None, "updated_by": found.updated_by}


def remove(sess, tenant_id):
    """Forget tenant ``tenant_id``'s chat settings; whether it had any."""
    found = sess.get(ChatSettings, tenant_id)
    sess.execute(delete(Secret).where(Secret.owner == owner(tenant_id)))
    if found is None:
        return False
    sess.execute(delete(ChatUser).where(ChatUser.tenant_id == tenant_id))
    sess.delete(found)
    return True


def tenant_of_secret(sess, secret):
    """The id of the tenant whose shared secret is ``secret``, or None. Every tenant's hash is
    compared in constant time, so the answer's time tells nothing of how near a guess was."""
    if not isinstance(secret, str) or not secret:
        return None
    digest = secret_hash(secret)
    found = None
    for tenant_id, stored in sess.execute(select(ChatSettings.tenant_id, ChatSettings.secret_hash)):
        if hmac.compare_digest(stored, digest):
            found = tenant_id
    return found


def login_of(sess, tenant_id, chat_name):
    """The corpus login chat user ``chat_name`` of tenant ``tenant_id`` acts as, or None."""
    return sess.scalar(select(ChatUser.login).where(ChatUser.tenant_id == tenant_id,
                                                    ChatUser.chat_name == str(chat_name)))
