"""Secret variables: kept in the ``secrets`` table, encrypted with the controller's key
(``secrets_crypto``), so ``corpus-controller rotate-key`` re-encrypts them with the
rest. An object's secret variables are the ``secrets`` rows whose owner is
``inventory:<level>:<id>``; its ``VariableSet.secret_keys`` lists their names.

Nothing here logs a value; the change log, the exports and the masked answers see
only ``resolve.MASK``.
"""

from sqlalchemy import delete, select

from mc_project.inventory import secrets_crypto
from mc_project.inventory.models import Secret
from mc_project.inventory.resolve import MASK, SecretRef, owner_of


def store(sess, keyring, level, object_id, secrets):
    """Write ``secrets`` (``{key: text}``) of an object, replacing those of the same keys."""
    owner = owner_of(level, object_id)
    if secrets:
        sess.execute(delete(Secret).where(Secret.owner == owner, Secret.name.in_(list(secrets))))
    for key, value in secrets.items():
        secrets_crypto.put(sess, keyring, owner, key, value)


def remove(sess, level, object_id, keys=None):
    """Forget an object's secret variables (``keys`` of them, or all)."""
    query = delete(Secret).where(Secret.owner == owner_of(level, object_id))
    if keys is not None:
        query = query.where(Secret.name.in_(list(keys)))
    sess.execute(query)


def masked(values):
    """``values`` with every secret shown as ``MASK``."""
    return {key: MASK if isinstance(value, SecretRef) else value for key, value in values.items()}


def reveal(sess, keyring, values):
    """``values`` with every secret in plain text, read in one query."""
    refs = [value for value in values.values() if isinstance(value, SecretRef)]
    if not refs:
        return dict(values)
    stored = {(row.owner, row.name): row.value for row in sess.scalars(
        select(Secret).where(Secret.owner.in_({ref.owner for ref in refs})))}
    shown = {}
    for key, value in values.items():
        if isinstance(value, SecretRef):
            found = stored.get((value.owner, value.key))
            value = keyring.decrypt(found) if found is not None else None
        shown[key] = value
    return shown


def owned_keys(sess, level, object_id):
    return sorted(sess.scalars(select(Secret.name).where(Secret.owner == owner_of(level, object_id))))
