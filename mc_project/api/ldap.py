"""Logging in against an LDAP directory (ldap3): bind as the user, read their groups,
map the groups to tenants and roles.

The user's DN comes from a template (``uid={username},ou=people,...``) or a search
(bound as ``bind_dn``, or anonymously). A password the directory refuses is
``BadCredentials`` (401); a directory that does not answer is ``Unreachable`` (503).
An empty password is refused here: LDAP would take it as an anonymous bind.
"""

import re

import ldap3
from ldap3.core import exceptions as ldap_exceptions
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from mc_project.inventory.models import ROLES

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class BadCredentials(Exception):
    """The directory refused this user and password."""


class Unreachable(Exception):
    """The directory could not be reached or did not answer."""


def _server(config):
    return ldap3.Server(config["url"], connect_timeout=config["timeout"], get_info=ldap3.NONE)


def _connection(config, user=None, password=None):
    return ldap3.Connection(_server(config), user=user, password=password,
                            receive_timeout=config["timeout"], raise_exceptions=False,
                            auto_bind=ldap3.AUTO_BIND_NONE)


def _user_dn(config, username):
    if config["user_dn"]:
        return config["user_dn"].format(username=escape_rdn(username))
    conn = _connection(config, config["bind_dn"], config["bind_password"])
    try:
        if not conn.bind():
            raise Unreachable("the directory refused the search account ({})".format(
                conn.result.get("description", "bind failed")))
        conn.search(config["search_base"], config["search_filter"].format(
            username=escape_filter_chars(username)), attributes=[])
        found = [entry.entry_dn for entry in conn.entries]
    finally:
        conn.unbind()
    if len(found) != 1:
        raise BadCredentials()
    return found[0]


def _groups(conn, config, dn, username):
    """``[(group DN, cn)]`` of the groups ``dn`` is a member of."""
    if not config["group_base"]:
        return []
    query = "(|(member={0})(uniqueMember={0})(memberUid={1}))".format(
        escape_filter_chars(dn), escape_filter_chars(username))
    conn.search(config["group_base"], query, attributes=["cn"])
    found = []
    for entry in conn.entries:
        cn = entry.cn.value if "cn" in entry.entry_attributes else None
        found.append((entry.entry_dn, cn[0] if isinstance(cn, list) else cn))
    return found


def grants(config, groups):
    """``{tenant: role}`` from ``groups`` through ``config["groups"]`` (highest role wins)."""
    mapping = {key.lower(): value for key, value in config["groups"].items()}
    found = {}
    for dn, cn in groups:
        for key in (dn.lower(), (cn or "").lower()):
            grant = mapping.get(key)
            if grant:
                tenant, role = grant["tenant"], grant["role"]
                if tenant not in found or ROLES.index(role) > ROLES.index(found[tenant]):
                    found[tenant] = role
    return found


def authenticate(config, username, password):
    """Bind as ``username``; return ``{tenant: role}`` from their groups."""
    if not USERNAME_RE.fullmatch(username or "") or not password:
        raise BadCredentials()
    try:
        dn = _user_dn(config, username)
        conn = _connection(config, dn, password)
        try:
            if not conn.bind():
                if conn.result.get("result") == 49:  # invalidCredentials
                    raise BadCredentials()
                raise Unreachable(conn.result.get("description") or "bind failed")
            return grants(config, _groups(conn, config, dn, username))
        finally:
            conn.unbind()
    except ldap_exceptions.LDAPException as exc:
        raise Unreachable(type(exc).__name__ if not str(exc) else str(exc)) from exc
