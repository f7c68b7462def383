"""Secrets at rest: encrypt the values still in plain text with the controller's key.

The key file comes from ``db.init(url, secrets_key=PATH)`` (the controller
setting ``corpus:secrets_key``; made here if missing). Run without it (the
``alembic`` command line), this revision changes no row and
``corpus-controller init`` encrypts the leftovers. No schema change.

Revision ID: 0003
Revises: 0002
"""

from alembic import context, op
import sqlalchemy as sa

from mc_project.inventory import secrets_crypto


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _keyring(create):
    path = context.config.attributes.get("secrets_key")
    return secrets_crypto.load(path, create=create) if path else None


def upgrade():
    keyring = _keyring(create=True)
    if keyring is not None:
        secrets_crypto.encrypt_plaintext(op.get_bind(), keyring)


def downgrade():
    keyring = _keyring(create=False)
    if keyring is not None:
        secrets_crypto.decrypt_all(op.get_bind(), keyring)
        return
    values = op.get_bind().execute(sa.select(secrets_crypto.SECRETS.c.value)).scalars()
    if any(secrets_crypto.is_encrypted(value) for value in values):
        raise RuntimeError("Going below revision 0003 decrypts the secrets: it needs the secrets key.")
