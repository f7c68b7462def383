"""Salt ext_pillar: each minion's pillar from the corpus inventory.

The controller writes a minion's pillar (its credentials, DNS names, firewall
rules, env and mode) as one row of the inventory's ``pillars`` table; this
serves that row to the minion with that id, and nothing to any other minion.
When the minion is a host of the fleet inventory (a node, an environment, or a
machine given that minion id), its resolved variables are added under the key
``inventory``, secret variables decrypted with the controller's key
(``corpus:secrets_key``): only that host's minion ever receives them. A host also
gets the detectors of the master option ``corpus_detectors`` and their schedule
(``mc_project.health.detectors``).
The inventory is the one named by the master option ``corpus:db_url``.

Master configuration:

.. code-block:: yaml

    ext_pillar:
      - corpus_inventory: {}

An inventory that cannot be read is logged as an error and serves nothing:
a pillar compile must never take the master down.
"""

import logging

from sqlalchemy import select

from mc_project.controller.config import controller_settings, inventory_url
from mc_project.errors import CorpusError
from mc_project.health import detectors
from mc_project.inventory import db, host_pillar, secrets_crypto
from mc_project.inventory.models import Pillar

__virtualname__ = "corpus_inventory"

log = logging.getLogger(__name__)


def __virtual__():
    return __virtualname__


def _one_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def ext_pillar(minion_id, pillar, **kwargs):  # pylint: disable=unused-argument
    """
    The pillar the inventory holds for ``minion_id``, or ``{}``.

    CLI Example (as a minion sees it):

    .. code-block:: bash

        salt MINION pillar.items
    """
    try:
        url = inventory_url(__opts__)
        with db.session(url) as sess:
            data = sess.scalars(select(Pillar.data).where(Pillar.minion_id == minion_id)).first()
            served = dict(data or {})
            host_values = host_pillar.host_pillar(sess, minion_id, lambda: _keyring(minion_id))
            served.update(host_values)
        if host_values:
            _add(served, _detectors(minion_id))
    except CorpusError as exc:
        log.error("corpus_inventory: no pillar for %s: %s", minion_id, exc)
        return {}
    except Exception as exc:  # pylint: disable=broad-except
        # Unreachable server, missing table: the statement's parameters are
        # hidden by db.engine, so this names no secret.
        log.error("corpus_inventory: cannot read the pillar of %s from the inventory: %s: %s",
                  minion_id, type(exc).__name__, _one_line(exc))
        return {}
    return served


def _add(served, extra):
    """Add ``extra`` to ``served``; their schedules are merged (the checks' entries and the
    detectors' both live under ``schedule``)."""
    schedule = dict(served.get("schedule") or {}, **(extra.get("schedule") or {}))
    served.update(extra)
    if schedule:
        served["schedule"] = schedule


def _detectors(minion_id):
    """A host's detector rules and their schedule; nothing when they are refused (the
    rest of its pillar is still served)."""
    try:
        return detectors.pillar(__opts__)
    except CorpusError as exc:
        log.error("corpus_inventory: no detectors for %s: %s", minion_id, exc)
        return {}


def _keyring(minion_id):
    """The controller's secrets keyring, or None (the minion then gets no secret variable)."""
    given = __opts__.get("corpus") or {}
    try:
        # The full settings only when the key file is not named (they look up this host's address).
        path = given.get("secrets_key") if isinstance(given, dict) and given.get("secrets_key") else \
            controller_settings(__opts__)["secrets_key"]
        return secrets_crypto.load(path)
    except CorpusError as exc:
        log.error("corpus_inventory: no secret variables for %s: %s", minion_id, exc)
        return None
