"""The key/value store read and written over the controller's API (``/v1/kv``) with a
token: how Salt's ``sdb`` driver ``corpus_kv`` reaches it from a master or a minion,
which have the API's URL but no access to the inventory database.

A profile (a mapping of the master or minion configuration) says where and as whom::

    corpus_kv:
      driver: corpus_kv
      url: https://controller.example.com:8400
      token_file: /etc/salt/corpus-kv.token   # 0600; or token: corpus_...
      tenant: acme                            # optional: the caller's first tenant
      timeout: 10                             # seconds
      ca_file: /etc/ssl/corpus-ca.pem         # optional; verify: false to not check

A token file readable by other users is refused, and the token is never logged.
"""

import os
import urllib.parse

import httpx

from mc_project.errors import CorpusError

DEFAULT_TIMEOUT = 10.0
PROFILE_KEYS = ("driver", "url", "token", "token_file", "tenant", "timeout", "ca_file", "verify")


def _token(profile):
    if profile.get("token"):
        return str(profile["token"]).strip()
    path = profile.get("token_file")
    if not path:
        raise CorpusError("The corpus_kv profile needs token_file (or token): an API token of the controller.")
    try:
        status = os.stat(path)
        if status.st_mode & 0o077:
            raise CorpusError("The token file {} is readable by other users; make it 0600.".format(path))
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise CorpusError("Cannot read the token file {}: {}.".format(path, exc.strerror or exc)) from None
    if not token:
        raise CorpusError("The token file {} is empty.".format(path))
    return token


class KvHttp:
    """The store of one tenant (or of the token's first tenant) through the API."""

    def __init__(self, url, token, tenant=None, timeout=DEFAULT_TIMEOUT, verify=True):
        self.url = url.rstrip("/")
        self.tenant = tenant
        self._http = httpx.Client(base_url=self.url, timeout=timeout, verify=verify,
                                  headers={"Authorization": "Bearer " + token, "User-Agent": "corpus-sdb"})

    @classmethod
    def from_profile(cls, profile):
        if not isinstance(profile, dict):
            raise CorpusError("A corpus_kv profile is a mapping.")
        unknown = sorted(set(profile) - set(PROFILE_KEYS))
        if unknown:
            raise CorpusError("Unknown corpus_kv profile setting {}.".format(unknown[0]))
        url = profile.get("url")
        if not url or not str(url).startswith(("http://", "https://")):
            raise CorpusError("The corpus_kv profile needs url: the controller's API, http(s)://HOST:PORT.")
        timeout = profile.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise CorpusError("The corpus_kv profile's timeout is a number of seconds above 0.")
        verify = profile.get("ca_file") or profile.get("verify", True)
        return cls(str(url), _token(profile), tenant=profile.get("tenant"), timeout=timeout, verify=verify)

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method, key, content=None, **params):
        params = {name: value for name, value in params.items() if value is not None}
        if self.tenant:
            params["tenant"] = self.tenant
        path = "/v1/kv/" + urllib.parse.quote(key, safe="/")
        try:
            response = self._http.request(method, path, content=content, params=params or None)
        except httpx.HTTPError as exc:
            raise CorpusError("Cannot reach the controller's API at {}: {}.".format(
                self.url, " ".join(str(exc).split()) or type(exc).__name__)) from None
        if response.status_code >= 400 and not (method == "GET" and response.status_code == 404):
            raise CorpusError("The controller's key/value store answered {}: {}".format(
                response.status_code, _message(response)))
        return response

    def get(self, key):
        """The value of ``key`` (bytes), or None when it does not exist."""
        response = self._request("GET", key, raw="true")
        return None if response.status_code == 404 else response.content

    def put(self, key, value, cas=None):
        """Set ``key``; whether it was written (False: ``cas`` did not match)."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        return self._request("PUT", key, content=value, cas=cas).json() is True

    def delete(self, key):
        return self._request("DELETE", key).json() is True


def _message(response):
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase + "."


def as_text(value):
    """A value for Salt's templates: text when it is UTF-8, else the bytes."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value
