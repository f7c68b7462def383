"""The key/value store for configuration, as Consul's: one store per tenant.

A key is text (1 to 512 characters, no control characters, not starting with
``/``); its value is bytes, with ``flags``, an integer the store keeps for the
caller. Every change takes the next number of the tenant's counter: a key's
``create_index`` is the number it was made with, its ``modify_index`` the number
of its last change. The index of a key (or of a prefix) is the highest
``modify_index`` of it (of the keys under it) and of the tombstones its deletions
left; a watcher blocks until that index is no longer the one it knew.

Compare-and-set is one conditional statement, never a read then a write:
``UPDATE ... WHERE modify_index = N`` (``INSERT ... ON CONFLICT DO NOTHING`` for
N = 0, "only if absent"), and whether it touched a row says who won. Two writers
of the same key on PostgreSQL meet on that row's lock: the second one's
condition is evaluated again once the first commits, and fails. On SQLite the
database lock makes them take turns. The counter is bumped after the key's
statement and its row stays locked until the commit, so indexes follow the order
in which changes become visible: a watcher who saw index N never later finds a
change numbered below N it did not see.

Each function takes an open session (``db.session``): the caller's transaction.
"""

import time

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mc_project.errors import CorpusError
from mc_project.inventory.kv_models import MAX_KEY_LENGTH, KvEntry, KvStore, KvTombstone

# Consul's own limit of a value; configuration, not files.
MAX_VALUE_BYTES = 512 * 1024
MAX_FLAGS = 2 ** 63 - 1
# A tombstone is kept longer than the longest blocking read, so every watcher
# of a deleted key sees its deletion.
TOMBSTONE_SECONDS = 3600

_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


class KvError(CorpusError):
    """A request the store refuses (a bad key, a value too large): one sentence."""


def check_key(key, prefix=False):
    """``key`` if it is a valid key (or, with ``prefix``, a valid prefix, which may be empty)."""
    if not isinstance(key, str):
        raise KvError("A key is text.")
    if not key and not prefix:
        raise KvError("A key must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise KvError("A key has at most {} characters; this one has {}.".format(MAX_KEY_LENGTH, len(key)))
    if key.startswith("/"):
        raise KvError("A key does not start with '/': {}.".format(key[:80]))
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise KvError("A key must not hold control characters.")
    return key


def check_value(value):
    if not isinstance(value, (bytes, bytearray)):
        raise KvError("A value is bytes.")
    if len(value) > MAX_VALUE_BYTES:
        raise KvError("A value has at most {} bytes; this one has {}.".format(MAX_VALUE_BYTES, len(value)))
    return bytes(value)


def check_flags(flags):
    if isinstance(flags, bool) or not isinstance(flags, int) or not 0 <= flags <= MAX_FLAGS:
        raise KvError("Flags are an integer from 0 to {}.".format(MAX_FLAGS))
    return flags


def check_cas(cas):
    if cas is not None and (isinstance(cas, bool) or not isinstance(cas, int) or cas < 0):
        raise KvError("cas is a modify index, an integer of 0 or more.")
    return cas


def record(entry):
    """A key as the API shows it (its value as bytes)."""
    return {"key": entry.key, "value": entry.value, "flags": entry.flags,
            "create_index": entry.create_index, "modify_index": entry.modify_index}


def _insert(sess, model):
    return _INSERTS[sess.get_bind().dialect.name](model)


def _under(column, prefix):
    # substr, not LIKE: SQLite's LIKE ignores case and both treat % and _ as wildcards.
    return func.substr(column, 1, len(prefix)) == prefix if prefix else True


# --------------------------------------------------------------------------- reads

def get(sess, tenant_id, key):
    """The entry of ``key``, or None."""
    return sess.scalar(select(KvEntry).where(KvEntry.tenant_id == tenant_id, KvEntry.key == check_key(key)))


def entries(sess, tenant_id, prefix=""):
    """The entries whose key starts with ``prefix``, by key."""
    found = sess.scalars(select(KvEntry).where(KvEntry.tenant_id == tenant_id,
                                               _under(KvEntry.key, check_key(prefix, prefix=True)))).all()
    return sorted(found, key=lambda entry: entry.key)


def keys(sess, tenant_id, prefix="", separator=None):
    """The keys starting with ``prefix``; with ``separator``, each cut after the first
    separator past the prefix and listed once (the "folders" of a prefix)."""
    check_key(prefix, prefix=True)
    found = sess.scalars(select(KvEntry.key).where(KvEntry.tenant_id == tenant_id,
                                                   _under(KvEntry.key, prefix))).all()
    if separator:
        cut = set()
        for key in found:
            at = key.find(separator, len(prefix))
            cut.add(key if at < 0 else key[:at + len(separator)])
        found = cut
    return sorted(found)


def index_of(sess, tenant_id, key, recurse=False):
    """The index of ``key`` (of every key under it, with ``recurse``): 0 if it never was."""
    check_key(key, prefix=recurse)
    highest = 0
    for model in (KvEntry, KvTombstone):
        where = _under(model.key, key) if recurse else model.key == key
        found = sess.scalar(select(func.max(model.modify_index)).where(model.tenant_id == tenant_id, where))
        highest = max(highest, found or 0)
    return highest


def store_index(sess, tenant_id):
    """The number of the tenant's last change (0 before the first)."""
    return sess.scalar(select(KvStore.last_index).where(KvStore.tenant_id == tenant_id)) or 0


# --------------------------------------------------------------------------- writes

def _next_index(sess, tenant_id):
    """Take the tenant's next change number; its counter stays locked until the commit."""
    sess.execute(_insert(sess, KvStore).values(tenant_id=tenant_id, last_index=0).on_conflict_do_nothing())
    return sess.execute(update(KvStore).where(KvStore.tenant_id == tenant_id)
                        .values(last_index=KvStore.last_index + 1).returning(KvStore.last_index)).scalar_one()


def put(sess, tenant_id, key, value, flags=0, cas=None):
    """Set ``key`` to ``value``; with ``cas``, only if its modify index is ``cas`` (0: only if
    it does not exist). Returns ``(written, index)``: whether it was written, and the key's
    modify index (the new one, or the one that stopped a compare-and-set; 0 for none)."""
    check_key(key)
    value, flags, cas = check_value(value), check_flags(flags), check_cas(cas)
    where = (KvEntry.tenant_id == tenant_id, KvEntry.key == key)
    if cas is None:
        # An upsert: the row is made or changed in one statement; create_index 0 marks it new.
        statement = _insert(sess, KvEntry).values(tenant_id=tenant_id, key=key, value=value, flags=flags,
                                                  create_index=0, modify_index=0)
        row_id = sess.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id", "key"], set_={"value": value, "flags": flags})
            .returning(KvEntry.id)).scalar_one()
    elif cas == 0:
        row_id = sess.execute(_insert(sess, KvEntry).values(
            tenant_id=tenant_id, key=key, value=value, flags=flags, create_index=0, modify_index=0)
            .on_conflict_do_nothing().returning(KvEntry.id)).scalar()
    else:
        row_id = sess.execute(update(KvEntry).where(*where, KvEntry.modify_index == cas)
                              .values(value=value, flags=flags).returning(KvEntry.id)).scalar()
    if row_id is None:
        return False, index_of(sess, tenant_id, key)
    index = _next_index(sess, tenant_id)
    sess.execute(update(KvEntry).where(KvEntry.id == row_id).values(
        modify_index=index, create_index=func.coalesce(func.nullif(KvEntry.create_index, 0), index)))
    sess.execute(sql_delete(KvTombstone).where(KvTombstone.tenant_id == tenant_id, KvTombstone.key == key))
    return True, index


def delete(sess, tenant_id, key, recurse=False, cas=None):
    """Delete ``key`` (every key under the prefix ``key``, with ``recurse``); with ``cas``,
    only if its modify index is ``cas`` (0: only if it does not exist, so nothing to do).
    Returns ``(done, index)``: whether the condition held, and the index of the change
    (0 when nothing was deleted)."""
    check_key(key, prefix=recurse)
    cas = check_cas(cas)
    if recurse and cas is not None:
        raise KvError("cas applies to one key, not to a prefix deleted with recurse.")
    if cas == 0:
        return get(sess, tenant_id, key) is None, 0
    where = [KvEntry.tenant_id == tenant_id, _under(KvEntry.key, key) if recurse else KvEntry.key == key]
    if cas is not None:
        where.append(KvEntry.modify_index == cas)
    gone = sess.execute(sql_delete(KvEntry).where(*where).returning(KvEntry.key)).scalars().all()
    if not gone:
        return cas is None, 0
    index = _next_index(sess, tenant_id)
    now = int(time.time())
    for name in gone:
        sess.execute(_insert(sess, KvTombstone).values(tenant_id=tenant_id, key=name, modify_index=index,
                                                       deleted=now)
                     .on_conflict_do_update(index_elements=["tenant_id", "key"],
                                            set_={"modify_index": index, "deleted": now}))
    # Old tombstones go: a watcher of a prefix whose index then falls is answered at once.
    sess.execute(sql_delete(KvTombstone).where(KvTombstone.tenant_id == tenant_id,
                                               KvTombstone.deleted < now - TOMBSTONE_SECONDS))
    return True, index
