"""A small client for the PowerDNS Authoritative HTTP API (zones and rrsets).

The controller registers an environment's A and SSHFP records here. Records are
handled as whole rrsets: ``{"name": fqdn, "type": "A", "contents": [...],
"ttl": 300}``; adding one replaces the rrset of that name and type, so running a
step again gives the same zone. Names are absolute (a missing trailing dot is
added). Every failure is one ``CorpusError`` sentence; the API key never appears
in it.

The inventory's domains (``inventory.domains``) go through the same client: a zone
per domain with its NS set, rrsets set and removed as records change, the zone's
rrsets read back by the drift check. A failure of PowerDNS itself (down, refusing)
is a ``PowerDnsError``, so callers can tell it from their own refusals.
"""

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from mc_project.errors import CorpusError

DEFAULT_TTL = 300
# About three seconds of retries at most, before a 5xx answer becomes an error.
SERVER_ERROR_RETRIES = 6


class PowerDnsError(CorpusError):
    """PowerDNS did not answer, refused the key, or refused the change."""


def absolute(name):
    """``name`` with its trailing dot, lower case as PowerDNS stores it."""
    name = (name or "").strip().lower()
    if not name or name == ".":
        raise CorpusError("A DNS name cannot be empty.")
    return name if name.endswith(".") else name + "."


class PowerDns:
    """One PowerDNS server's API: ``PowerDns("http://127.0.0.1:8081", "key")``."""

    def __init__(self, api_url, api_key, server_id="localhost", timeout=5):
        if not api_url:
            raise CorpusError("No PowerDNS API URL is configured (corpus: dns: api_url).")
        self.api_url = api_url.rstrip("/")
        self.server_id = server_id
        self.timeout = timeout
        self._session = requests.Session()
        # A busy backend (SQLite: "database is locked" while another change commits) answers 5xx;
        # every call here is safe to repeat (rrsets are replaced whole), so try again a few times.
        retry = Retry(
            total=None,
            connect=0,
            read=0,
            redirect=0,
            other=0,
            status=SERVER_ERROR_RETRIES,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,
            backoff_factor=0.05,
            backoff_jitter=0.1,
            raise_on_status=False,
        )
        self._session.mount(self.api_url, HTTPAdapter(max_retries=retry))
        self._session.headers.update({"X-API-Key": api_key or "", "Accept": "application/json"})

    def __repr__(self):
        return "PowerDns({!r}, server_id={!r})".format(self.api_url, self.server_id)

    # ------------------------------------------------------------------ HTTP

    def _url(self, *parts):
        return "/".join([self.api_url, "api/v1/servers", self.server_id] + list(parts))

    def _zone_url(self, zone):
        # A zone's id is its name with "/" (RFC 2317 delegations) written "=2F".
        return self._url("zones", zone.replace("/", "=2F"))

    def _request(self, method, url, what, ok=(200, 201, 204), **kwargs):
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise PowerDnsError(
                "PowerDNS at {} did not answer: {}.".format(self.api_url, _reason(exc))
            ) from None
        if response.status_code in ok:
            return response
        if response.status_code in (401, 403):
            raise PowerDnsError(
                "PowerDNS at {} refused the API key (HTTP {}).".format(self.api_url, response.status_code)
            )
        raise PowerDnsError(
            "PowerDNS at {} refused to {}: HTTP {} {}.".format(
                self.api_url, what, response.status_code, _error_text(response)
            )
        )

    def _zone(self, zone):
        """The zone's JSON, or None when PowerDNS does not have it."""
        response = self._request(
            "GET", self._zone_url(zone), "read zone {}".format(_shown(zone)), ok=(200, 404, 422)
        )
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise PowerDnsError(
                    "{} does not answer like the PowerDNS API (no JSON for zone {}).".format(
                        self.api_url, _shown(zone)
                    )
                ) from None
        # PowerDNS also answers 404 for an unknown server id: tell the two apart.
        self._request(
            "GET", self._url(), "show server {!r} (corpus: dns: server_id)".format(self.server_id)
        )
        return None

    def _patch(self, zone, rrsets, what):
        self._request("PATCH", self._zone_url(zone), what, json={"rrsets": rrsets})

    # ------------------------------------------------------------------ API

    def ensure_zone(self, zone, nameservers=None):
        """Create ``zone`` as a Native zone unless it exists; return its absolute name."""
        zone = absolute(zone)
        if self._zone(zone) is not None:
            return zone
        body = {
            "name": zone,
            "kind": "Native",
            "nameservers": [absolute(ns) for ns in (nameservers or [])],
        }
        # 409: created meanwhile by someone else, which is what we wanted.
        self._request(
            "POST", self._url("zones"), "create zone {}".format(_shown(zone)), ok=(201, 204, 409), json=body
        )
        return zone

    def zone_exists(self, zone):
        return self._zone(absolute(zone)) is not None

    def set_nameservers(self, zone, nameservers, ttl=DEFAULT_TTL):
        """Replace the NS rrset at the apex of ``zone`` with ``nameservers``."""
        zone = absolute(zone)
        self.add_records(zone, [{"name": zone, "type": "NS", "ttl": ttl,
                                 "contents": [absolute(ns) for ns in nameservers]}])

    def delete_zone(self, zone):
        """Delete ``zone`` and all its records; one that is absent is fine."""
        zone = absolute(zone)
        self._request("DELETE", self._zone_url(zone), "delete zone {}".format(_shown(zone)),
                      ok=(200, 204, 404, 422))

    def add_records(self, zone, records):
        """Set each record's rrset (name + type) to exactly its ``contents``."""
        zone = absolute(zone)
        rrsets = []
        for record in records:
            contents = list(record.get("contents") or [])
            if not contents:
                raise CorpusError(
                    "The {} record for {} has no contents.".format(record.get("type"), record.get("name"))
                )
            rrsets.append(
                {
                    "name": self._name_in(zone, record.get("name")),
                    "type": _rrtype(record.get("type")),
                    "ttl": int(record.get("ttl") or DEFAULT_TTL),
                    "changetype": "REPLACE",
                    "records": [{"content": str(c), "disabled": False} for c in contents],
                }
            )
        if rrsets:
            self._patch(zone, rrsets, "set records in zone {}".format(_shown(zone)))

    def remove_records(self, zone, names_types):
        """Delete the rrsets ``[(name, type), ...]``; one that is absent is fine."""
        zone = absolute(zone)
        rrsets = [
            {"name": self._name_in(zone, name), "type": _rrtype(rrtype), "changetype": "DELETE"}
            for name, rrtype in names_types
        ]
        if not rrsets:
            return
        if self._zone(zone) is None:
            return  # no zone, so none of its records either
        self._patch(zone, rrsets, "remove records from zone {}".format(_shown(zone)))

    def records(self, zone):
        """The zone's rrsets as ``[{"name", "type", "contents", "ttl"}]``, sorted by name and type."""
        zone = absolute(zone)
        data = self._zone(zone)
        if data is None:
            raise PowerDnsError("PowerDNS at {} has no zone {}.".format(self.api_url, _shown(zone)))
        found = [
            {
                "name": rrset["name"],
                "type": rrset["type"],
                "contents": sorted(r["content"] for r in rrset.get("records", []) if not r.get("disabled")),
                "ttl": rrset.get("ttl"),
            }
            for rrset in data.get("rrsets", [])
        ]
        return sorted(found, key=lambda r: (r["name"], r["type"]))

    @staticmethod
    def _name_in(zone, name):
        name = absolute(name)
        if name != zone and not name.endswith("." + zone):
            raise CorpusError("{} is not in zone {}.".format(_shown(name), _shown(zone)))
        return name


def _shown(name):
    """A name as a sentence shows it: without the trailing dot that would end it."""
    return name.rstrip(".")


def _rrtype(rrtype):
    rrtype = (rrtype or "").strip().upper()
    if not rrtype.isalnum():
        raise CorpusError("{!r} is not a DNS record type.".format(rrtype))
    return rrtype


def _reason(exc):
    """The innermost cause of a requests failure, e.g. 'Connection refused'."""
    cause, seen = exc, set()
    # requests wraps urllib3's error, which wraps the socket's: follow the chain down.
    while id(cause) not in seen:
        seen.add(id(cause))
        inner = cause.__context__ or next((a for a in cause.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        cause = inner
    text = str(cause)
    # urllib3 wraps the OS error as "<object at 0x..>: Failed to establish ... [Errno 111] ...".
    if "] " in text:
        text = text.rsplit("] ", 1)[1]
    return text.rstrip(".") or type(exc).__name__


def _error_text(response):
    """PowerDNS's own explanation: the ``error`` field of its JSON answer, else the body."""
    try:
        text = response.json().get("error", "")
    except ValueError:
        text = response.text
    text = " ".join(str(text).split())[:300]
    return "({})".format(text.rstrip(".")) if text else "(no explanation)"
