"""The API's settings: the master option ``corpus_api`` (written by ``corpus-controller
init``) over defaults, checked once; a bad value is one sentence.

::

    corpus_api:
      bind: 127.0.0.1          # address uvicorn listens on
      port: 8400
      tls_cert: /path/cert.pem # both or neither: HTTPS
      tls_key: /path/key.pem
      token_hours: 12          # lifetime of a login's token
      ldap:                    # absent: local users (corpus-controller user add)
        url: ldap://ldap.example.com
        user_dn: uid={username},ou=people,dc=example,dc=com   # a DN template, or:
        search_base: ou=people,dc=example,dc=com              # a search
        search_filter: (uid={username})
        bind_dn: cn=reader,dc=example,dc=com                  # for the search (else anonymous)
        bind_password: secret
        group_base: ou=groups,dc=example,dc=com
        groups:                # group cn (or DN) -> tenant and role
          acme-deployers: {tenant: acme, role: deployer}
        timeout: 5
"""

import copy

from mc_project.errors import CorpusError
from mc_project.inventory.models import ROLES

OPTION = "corpus_api"
DEFAULT_PORT = 8400
DEFAULT_BIND = "127.0.0.1"
DEFAULTS = {"bind": DEFAULT_BIND, "port": DEFAULT_PORT, "tls_cert": None, "tls_key": None,
            "token_hours": 12, "ldap": None}
LDAP_DEFAULTS = {"url": None, "user_dn": None, "search_base": None, "search_filter": "(uid={username})",
                 "bind_dn": None, "bind_password": None, "group_base": None, "groups": {}, "timeout": 5}


def api_settings(opts):
    """The checked ``corpus_api`` settings of master options ``opts``."""
    given = opts.get(OPTION) or {}
    if not isinstance(given, dict):
        raise CorpusError("The master option {} must be a mapping.".format(OPTION))
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise CorpusError("Unknown API setting {}:{}.".format(OPTION, unknown[0]))
    settings = copy.deepcopy(DEFAULTS)
    settings.update({key: value for key, value in given.items() if value is not None})
    port = settings["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CorpusError("The API setting {}:port must be a port between 1 and 65535.".format(OPTION))
    hours = settings["token_hours"]
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 366:
        raise CorpusError("The API setting {}:token_hours must be a number of hours above 0.".format(OPTION))
    if bool(settings["tls_cert"]) != bool(settings["tls_key"]):
        raise CorpusError("The API settings {0}:tls_cert and {0}:tls_key go together.".format(OPTION))
    if settings["ldap"]:
        settings["ldap"] = _ldap(settings["ldap"])
    return settings


def _ldap(given):
    if not isinstance(given, dict):
        raise CorpusError("The API setting {}:ldap must be a mapping.".format(OPTION))
    unknown = sorted(set(given) - set(LDAP_DEFAULTS))
    if unknown:
        raise CorpusError("Unknown API setting {}:ldap:{}.".format(OPTION, unknown[0]))
    ldap = dict(LDAP_DEFAULTS, **{key: value for key, value in given.items() if value is not None})
    if not isinstance(ldap["url"], str) or not ldap["url"].startswith(("ldap://", "ldaps://")):
        raise CorpusError("The API setting {}:ldap:url must be an ldap:// or ldaps:// URL.".format(OPTION))
    if not ldap["user_dn"] and not ldap["search_base"]:
        raise CorpusError("The API setting {}:ldap needs user_dn (a DN template) or search_base.".format(
            OPTION))
    if ldap["user_dn"] and "{username}" not in ldap["user_dn"]:
        raise CorpusError("The API setting {}:ldap:user_dn must contain {{username}}.".format(OPTION))
    if not isinstance(ldap["groups"], dict):
        raise CorpusError("The API setting {}:ldap:groups must map groups to a tenant and a role.".format(
            OPTION))
    for group, grant in ldap["groups"].items():
        if not isinstance(grant, dict) or not grant.get("tenant") or grant.get("role") not in ROLES:
            raise CorpusError("The API setting {}:ldap:groups:{} needs a tenant and a role ({}).".format(
                OPTION, group, ", ".join(ROLES)))
    return ldap
