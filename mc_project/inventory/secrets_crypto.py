"""Secrets at rest: every ``Secret`` value is encrypted with a key kept outside the inventory.

The key file (the controller setting ``corpus:secrets_key``, 0600 root, in a
0700 directory) holds Fernet keys, one a line, the newest first: the first
encrypts, any of them decrypts (``MultiFernet``). A stored value is
``fernet:<token>``; a value without that prefix is plain text an older corpus
wrote, which migration 0003 and ``corpus-controller init`` encrypt.

``put``/``values`` are the one place where secrets are written and read.
``rotate`` replaces the keys without a moment where a secret is unreadable:
the new key is added first, every secret is re-encrypted with it in one
transaction, and only then is the old key dropped. Writers hold a shared lock
on ``<key file>.lock`` from loading the key to their commit, so no secret is
written with a key that a rotation is dropping.
"""

import contextlib
import fcntl
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
import sqlalchemy as sa
from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Secret

PREFIX = "fernet:"
KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class Keyring:
    """The keys of one key file: ``encrypt`` with the newest, ``decrypt`` with any."""

    def __init__(self, keys, path=None):
        if not keys:
            raise CorpusError("The secrets key file {} holds no key.".format(path))
        self.keys = list(keys)
        self.path = path
        try:
            self._fernet = MultiFernet([Fernet(key) for key in self.keys])
        except (ValueError, TypeError):
            raise CorpusError("The secrets key file {} holds something that is not a Fernet key.".format(
                path)) from None

    def encrypt(self, text):
        if not isinstance(text, str):
            raise CorpusError("A secret must be text.")
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, stored):
        """The plain text of a stored value (a plain-text leftover is returned as it is)."""
        if not is_encrypted(stored):
            return stored
        token = stored[len(PREFIX):].encode("ascii")
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeError):
            pass
        # A rotation may have finished since these keys were read: read them again, once.
        if self.path and os.path.exists(self.path):
            fresh = read_keys(self.path)
            if fresh != self.keys:
                self.__init__(fresh, self.path)
                return self.decrypt(stored)
        raise CorpusError("A secret cannot be decrypted with the keys in {}.".format(self.path))

    def reencrypt(self, stored):
        """``stored`` encrypted with the newest key."""
        return self.encrypt(self.decrypt(stored))


def is_encrypted(value):
    return isinstance(value, str) and value.startswith(PREFIX)


# --------------------------------------------------------------------------- the key file

def read_keys(path):
    try:
        with open(path, encoding="ascii") as fh:
            return [line.strip().encode("ascii") for line in fh if line.strip()]
    except FileNotFoundError:
        raise CorpusError("There is no secrets key file {}; run corpus-controller init.".format(path)) from None
    except (OSError, UnicodeError) as exc:
        raise CorpusError("Cannot read the secrets key file {}: {}.".format(path, type(exc).__name__)) from None


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(path, keys):
    directory = os.path.dirname(path)
    temporary = os.path.join(directory, ".{}.{}.new".format(os.path.basename(path), os.getpid()))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with open(fd, "w", encoding="ascii") as fh:
        fh.write("".join(key.decode("ascii") + "\n" for key in keys))
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(temporary, KEY_FILE_MODE)
    return temporary


def write_keys(path, keys):
    """Replace the key file at once: a reader sees the old keys or the new ones, never half."""
    temporary = _write_temporary(path, keys)
    os.replace(temporary, path)
    _fsync_dir(os.path.dirname(path))


def ensure_key(path):
    """Create the key file with one new key if it is missing; tighten its modes. Say if it was made."""
    directory = os.path.dirname(os.path.abspath(path))
    # A new directory is 0700; one that exists may be shared (/etc) and is left as it is.
    os.makedirs(directory, mode=KEY_DIR_MODE, exist_ok=True)
    created = False
    if not os.path.exists(path):
        temporary = _write_temporary(path, [Fernet.generate_key()])
        try:
            os.link(temporary, path)  # fails if another process made it first: theirs is kept
            created = True
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
        _fsync_dir(directory)
    os.chmod(path, KEY_FILE_MODE)
    return created


def load(path, create=False):
    """The keyring of the key file at ``path`` (made first when ``create`` and missing)."""
    if not path:
        raise CorpusError("No secrets key file is configured (corpus:secrets_key).")
    if create and not os.path.exists(path):
        ensure_key(path)
    return Keyring(read_keys(path), path)


@contextlib.contextmanager
def _key_lock(path, exclusive):
    lock_path = path + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, KEY_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(path):
    """The keyring to write secrets with; keep the block open until they are committed."""
    load(path, create=True)  # makes the key file (and its directory) when missing
    with _key_lock(path, exclusive=False):
        yield load(path)


# --------------------------------------------------------------------------- rows

def put(sess, keyring, owner, name, value):
    """Add the secret ``owner``/``name`` (encrypted) to the session."""
    row = Secret(owner=owner, name=name, value=keyring.encrypt(value))
    sess.add(row)
    return row


def values(sess, keyring, owner):
    """``{name: plain text}`` of ``owner``'s secrets."""
    return {row.name: keyring.decrypt(row.value)
            for row in sess.scalars(select(Secret).where(Secret.owner == owner))}


# The columns these functions touch, apart from the model: migrations use them too.
SECRETS = sa.table("secrets", sa.column("id", sa.Integer), sa.column("value", sa.Text))


def encrypt_plaintext(connection, keyring):
    """Encrypt the values still in plain text (through a Core connection); return how many."""
    table = SECRETS
    plain = [(row.id, row.value) for row in connection.execute(select(table.c.id, table.c.value))
             if not is_encrypted(row.value)]
    for row_id, value in plain:
        connection.execute(table.update().where(table.c.id == row_id).values(value=keyring.encrypt(value)))
    return len(plain)


def decrypt_all(connection, keyring):
    """Turn every value back to plain text (a downgrade below migration 0003); return how many."""
    table = SECRETS
    rows = [(row.id, row.value) for row in connection.execute(select(table.c.id, table.c.value))
            if is_encrypted(row.value)]
    for row_id, value in rows:
        connection.execute(table.update().where(table.c.id == row_id).values(value=keyring.decrypt(value)))
    return len(rows)


def encrypt_leftovers(url, path):
    """Encrypt plain-text values left in the inventory at ``url``; return how many."""
    with writing(path) as keyring, db.engine(url).begin() as connection:
        return encrypt_plaintext(connection, keyring)


def _lock_secrets(connection):
    """Keep other writers off the secrets table until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE secrets IN SHARE ROW EXCLUSIVE MODE")


def rotate(url, path):
    """Re-encrypt every secret with a new key and drop the old ones; return how many secrets.

    Each stage leaves every secret readable: (1) the key file gets the new key
    in front of the old ones; (2) one transaction re-encrypts every value with
    the new key; (3) the key file keeps only the new key. A crash after (1) or
    (2) leaves old and new keys side by side, and the next rotation drops both.
    """
    load(path)  # no key file: one sentence, before anything changes
    with _key_lock(path, exclusive=True):
        old = Keyring(read_keys(path), path)
        new_key = Fernet.generate_key()
        keyring = Keyring([new_key] + old.keys, path)
        write_keys(path, keyring.keys)
        table = SECRETS
        with db.engine(url).begin() as connection:
            _lock_secrets(connection)
            rows = list(connection.execute(select(table.c.id, table.c.value)))
            for row in rows:
                connection.execute(table.update().where(table.c.id == row.id).values(
                    value=keyring.reencrypt(row.value)))
        write_keys(path, [new_key])
    return len(rows)
