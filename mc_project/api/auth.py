"""Who is calling: bearer tokens (random, only their SHA-256 kept, expiring,
revocable), logins (LDAP when configured, else local users), and the
``principal`` dependency every route but login and health uses.
"""

import datetime
import hashlib
import secrets

from fastapi import Request
from sqlalchemy import select

from mc_project.api import ldap, passwords, tenants
from mc_project.api.errors import ApiError
from mc_project.inventory import db
from mc_project.inventory.models import ApiToken, Membership, Tenant, User, utcnow

TOKEN_PREFIX = "corpus_"
MAX_TOKEN_DAYS = 3650


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _aware(moment):
    # SQLite hands back naive datetimes, stored as UTC.
    return moment.replace(tzinfo=datetime.timezone.utc) if moment.tzinfo is None else moment


def iso(moment):
    return _aware(moment).isoformat() if moment is not None else None


def issue(sess, user_id, kind, lifetime, name=None):
    """A new token for ``user_id``: ``(row, the token itself)``, shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, kind=kind, name=name, token_hash=hash_token(token),
                   expires=utcnow() + lifetime, revoked=False)
    sess.add(row)
    sess.flush()
    return row, token


def principal_of(sess, user):
    roles = {}
    for membership, tenant_name in sess.execute(
            select(Membership, Tenant.name).join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user.id)):
        roles[membership.tenant_id] = (tenant_name, membership.role)
    return tenants.Principal(user.id, user.name, roles)


def authenticate(url, token):
    """The principal ``token`` stands for; 401 when it is unknown, expired or revoked."""
    if not token:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>.")
    with db.session(url) as sess:
        found = sess.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                             .where(ApiToken.token_hash == hash_token(token))).first()
        if found is None or found[0].revoked:
            raise ApiError(401, "This token is not valid (unknown or revoked); log in again.")
        row, user = found
        if _aware(row.expires) <= utcnow():
            raise ApiError(401, "This token expired at {}; log in again.".format(iso(row.expires)))
        principal = principal_of(sess, user)
        principal.token_id = row.id
        return principal


def bearer(request):
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def principal(request: Request):
    """FastAPI dependency: the authenticated caller (recorded for the audit)."""
    found = authenticate(request.app.state.url, bearer(request))
    request.state.user = found.name
    return found


def login(app_state, username, password):
    """Check ``username``'s password (LDAP, or the local users) and issue a session token.

    Returns ``(principal, token, expires)``. LDAP down: 503 and nothing changed.
    """
    settings = app_state.settings
    url = app_state.url
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise ApiError(401, "Wrong user name or password.")
    lifetime = datetime.timedelta(hours=settings["token_hours"])
    if settings["ldap"]:
        try:
            granted = ldap.authenticate(settings["ldap"], username, password)
        except ldap.BadCredentials:
            raise ApiError(401, "Wrong user name or password.") from None
        except ldap.Unreachable as exc:
            raise ApiError(503, "The LDAP directory {} cannot be reached ({}); nothing was changed.".format(
                settings["ldap"]["url"], str(exc).rstrip(".") or "no answer")) from None
        with db.session(url) as sess:
            user = sess.scalar(select(User).where(User.name == username))
            if user is None:
                user = User(name=username, source="ldap")
                sess.add(user)
                sess.flush()
            # The directory is the truth: this login's groups replace the memberships.
            user.memberships.clear()
            sess.flush()
            for tenant_name, role in sorted(granted.items()):
                tenant = tenants.ensure_tenant(sess, tenant_name)
                user.memberships.append(Membership(tenant_id=tenant.id, role=role))
            sess.flush()
            row, token = issue(sess, user.id, "session", lifetime)
            found = principal_of(sess, user)
            return found, token, row.expires
    with db.session(url) as sess:
        user = sess.scalar(select(User).where(User.name == username, User.source == "local"))
        if not passwords.verify(user.password_hash if user else None, password):
            raise ApiError(401, "Wrong user name or password.")
        row, token = issue(sess, user.id, "session", lifetime)
        return principal_of(sess, user), token, row.expires
