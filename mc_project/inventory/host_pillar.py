"""What the ext_pillar adds for one minion: its host's resolved variables, secrets in
plain text, under one key (``inventory``), and its fleet-health checks with their
schedule (``health.check_pillar``). Only the minion of that host gets them: the host
is found by the minion id Salt authenticated."""

from mc_project.health import check_pillar
from mc_project.inventory import host_rows, resolve, secret_vars

PILLAR_KEY = "inventory"


def host_pillar(sess, minion_id, keyring_of):
    """``{"inventory": {...}}`` for ``minion_id``'s host, or ``{}`` when it is no host's.

    ``keyring_of()`` gives the ``secrets_crypto.Keyring`` that decrypts the secrets,
    asked for only when the host has some; when it gives None they are left out.
    """
    host = host_rows.by_minion(sess, minion_id)
    if host is None:
        return {}
    values, _sources = resolve.host_variables(sess, host, with_sources=False)
    if any(isinstance(value, resolve.SecretRef) for value in values.values()):
        keyring = keyring_of()
        values = secret_vars.reveal(sess, keyring, values) if keyring else resolve.without_secrets(values)
    return dict(check_pillar.checks_pillar(sess, host), **{PILLAR_KEY: values})
