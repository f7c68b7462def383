"""Salt sdb driver: the corpus key/value store (``/v1/kv`` of the controller's API).

States, pillar and configuration read it as ``sdb://PROFILE/KEY``. The profile, in
the master's or the minion's configuration, says where the API is and which
token to use (mc_project.health.kv_http):

.. code-block:: yaml

    corpus_kv:
      driver: corpus_kv
      url: http://127.0.0.1:8400
      token_file: /etc/salt/corpus-kv.token
      tenant: acme

.. code-block:: jinja

    {{ salt['sdb.get']('sdb://corpus_kv/app/db/host') }}

A key that does not exist is None; an API that cannot be reached or refuses the
token is an error, never an empty value.
"""

from salt.exceptions import CommandExecutionError

from mc_project.errors import CorpusError
from mc_project.health import kv_http

__virtualname__ = "corpus_kv"
__func_alias__ = {"set_": "set"}


def __virtual__():
    return __virtualname__


def _client(profile):
    try:
        return kv_http.KvHttp.from_profile(profile or {})
    except CorpusError as exc:
        raise CommandExecutionError(str(exc)) from None


def get(key, profile=None):
    """
    The value of ``key`` (text, or bytes when it is not UTF-8), None if it does not exist.

    CLI Example:

    .. code-block:: bash

        salt-call sdb.get sdb://corpus_kv/app/db/host
    """
    try:
        with _client(profile) as client:
            return kv_http.as_text(client.get(key))
    except CorpusError as exc:
        raise CommandExecutionError(str(exc)) from None


def set_(key, value, profile=None):
    """
    Set ``key`` to ``value``; returns the value.

    CLI Example:

    .. code-block:: bash

        salt-call sdb.set sdb://corpus_kv/app/db/host db2
    """
    try:
        with _client(profile) as client:
            client.put(key, str(value) if not isinstance(value, bytes) else value)
            return value
    except CorpusError as exc:
        raise CommandExecutionError(str(exc)) from None


def delete(key, profile=None):
    """
    Delete ``key``; True when done.

    CLI Example:

    .. code-block:: bash

        salt-call sdb.delete sdb://corpus_kv/app/db/host
    """
    try:
        with _client(profile) as client:
            return client.delete(key)
    except CorpusError as exc:
        raise CommandExecutionError(str(exc)) from None
