"""The key/value store over an SQLite inventory: indexes, compare-and-set, prefixes,
tombstones, refusals and tenant isolation (mc_project.health.kv)."""

import threading

import pytest
from sqlalchemy import select, update

from mc_project.health import kv
from mc_project.inventory import db
from mc_project.inventory.kv_models import KvEntry, KvTombstone
from mc_project.inventory.models import Tenant


@pytest.fixture
def store(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    with db.session(url) as sess:
        alpha, beta = Tenant(name="alpha"), Tenant(name="beta")
        sess.add_all([alpha, beta])
        sess.flush()
        ids = alpha.id, beta.id
    yield url, ids
    db.dispose()


def call(url, function, *args, **kwargs):
    with db.session(url) as sess:
        return function(sess, *args, **kwargs)


def test_indexes_follow_the_tenants_counter(store):
    url, (alpha, _beta) = store
    assert call(url, kv.put, alpha, "app/db/host", b"db1") == (True, 1)
    assert call(url, kv.put, alpha, "app/db/port", b"5432", flags=42) == (True, 2)
    assert call(url, kv.put, alpha, "app/db/host", b"db2") == (True, 3)
    entry = call(url, kv.get, alpha, "app/db/host")
    assert (entry.value, entry.create_index, entry.modify_index, entry.flags) == (b"db2", 1, 3, 0)
    assert call(url, kv.get, alpha, "app/db/port").flags == 42
    assert call(url, kv.store_index, alpha) == 3
    assert call(url, kv.index_of, alpha, "app/db/port") == 2
    assert call(url, kv.index_of, alpha, "app/", recurse=True) == 3
    assert call(url, kv.index_of, alpha, "never") == 0


def test_compare_and_set(store):
    url, (alpha, _beta) = store
    assert call(url, kv.put, alpha, "leader", b"a", cas=0) == (True, 1)
    # Only if absent: it exists now; the answer names the index that stopped it.
    assert call(url, kv.put, alpha, "leader", b"b", cas=0) == (False, 1)
    assert call(url, kv.put, alpha, "leader", b"b", cas=7) == (False, 1)
    assert call(url, kv.put, alpha, "leader", b"b", cas=1) == (True, 2)
    assert call(url, kv.put, alpha, "leader", b"c", cas=1) == (False, 2)
    assert call(url, kv.get, alpha, "leader").value == b"b"
    # A refused write takes no index.
    assert call(url, kv.store_index, alpha) == 2
    assert call(url, kv.delete, alpha, "leader", cas=1) == (False, 0)
    assert call(url, kv.delete, alpha, "leader", cas=2) == (True, 3)
    assert call(url, kv.get, alpha, "leader") is None
    assert call(url, kv.delete, alpha, "leader", cas=0) == (True, 0)
    assert call(url, kv.put, alpha, "leader", b"again", cas=0) == (True, 4)
    assert call(url, kv.get, alpha, "leader").create_index == 4


def test_prefixes_keys_and_separator(store):
    url, (alpha, _beta) = store
    for key in ("web/a", "web/b/c", "web/b/d", "Web/upper", "web%/odd", "webby", "db/x"):
        call(url, kv.put, alpha, key, key.encode())
    assert [entry.key for entry in call(url, kv.entries, alpha, "web/")] == ["web/a", "web/b/c", "web/b/d"]
    # A prefix is matched as it is written: case counts, % and _ are no wildcards.
    assert call(url, kv.keys, alpha, "web%") == ["web%/odd"]
    assert call(url, kv.keys, alpha, "web/", "/") == ["web/a", "web/b/"]
    assert call(url, kv.keys, alpha, "", "/") == ["Web/", "db/", "web%/", "web/", "webby"]
    assert len(call(url, kv.entries, alpha)) == 7


def test_a_deletion_leaves_a_tombstone_that_moves_the_index(store):
    url, (alpha, _beta) = store
    call(url, kv.put, alpha, "cfg/a", b"1")
    call(url, kv.put, alpha, "cfg/b", b"2")
    call(url, kv.put, alpha, "other", b"3")
    assert call(url, kv.index_of, alpha, "cfg/", recurse=True) == 2
    assert call(url, kv.delete, alpha, "cfg/", recurse=True) == (True, 4)
    assert call(url, kv.entries, alpha, "cfg/") == []
    assert call(url, kv.index_of, alpha, "cfg/", recurse=True) == 4
    assert call(url, kv.index_of, alpha, "cfg/a") == 4
    assert call(url, kv.get, alpha, "other").value == b"3"
    # Deleting what is not there changes nothing and takes no index.
    assert call(url, kv.delete, alpha, "cfg/a") == (True, 0)
    assert call(url, kv.store_index, alpha) == 4
    # Writing the key again clears its tombstone; an old tombstone is reaped by the next deletion.
    call(url, kv.put, alpha, "cfg/a", b"back")
    with db.session(url) as sess:
        assert sess.scalars(select(KvTombstone.key)).all() == ["cfg/b"]
        sess.execute(update(KvTombstone).values(deleted=0))
    call(url, kv.delete, alpha, "other")
    with db.session(url) as sess:
        assert sess.scalars(select(KvTombstone.key)).all() == ["other"]


def test_tenants_have_stores_of_their_own(store):
    url, (alpha, beta) = store
    call(url, kv.put, alpha, "shared/name", b"alpha's")
    assert call(url, kv.get, beta, "shared/name") is None
    assert call(url, kv.entries, beta) == []
    assert call(url, kv.put, beta, "shared/name", b"beta's", cas=0) == (True, 1)
    assert call(url, kv.delete, beta, "shared/", recurse=True) == (True, 2)
    assert call(url, kv.get, alpha, "shared/name").value == b"alpha's"
    assert call(url, kv.store_index, alpha) == 1


def test_bad_keys_are_one_sentence_and_change_nothing(store):
    url, (alpha, _beta) = store
    for key, message in (("", "must not be empty"), ("/etc/x", "does not start with '/'"),
                         ("a\nb", "control characters"), ("k" * 513, "at most 512 characters")):
        with pytest.raises(kv.KvError, match=message):
            call(url, kv.put, alpha, key, b"x")
    assert call(url, kv.store_index, alpha) == 0


def test_bad_values_flags_and_cas(store):
    url, (alpha, _beta) = store
    with pytest.raises(kv.KvError, match="at most"):
        call(url, kv.put, alpha, "big", b"x" * (kv.MAX_VALUE_BYTES + 1))
    with pytest.raises(kv.KvError, match="Flags"):
        call(url, kv.put, alpha, "f", b"x", flags=-1)
    with pytest.raises(kv.KvError, match="cas"):
        call(url, kv.put, alpha, "f", b"x", cas=-1)
    with pytest.raises(kv.KvError, match="not to a prefix"):
        call(url, kv.delete, alpha, "f", recurse=True, cas=1)
    with db.session(url) as sess:
        assert sess.scalars(select(KvEntry)).all() == []


def test_two_writers_racing_with_cas_on_sqlite(store):
    """Each round both read the counter's key and write it back plus one with cas:
    exactly one wins, and no increment is lost."""
    url, (alpha, _beta) = store
    call(url, kv.put, alpha, "counter", b"0")
    rounds = 40
    barrier = threading.Barrier(2)
    wins = {"a": 0, "b": 0}
    outcomes = []

    def writer(name):
        for _round in range(rounds):
            entry = call(url, kv.get, alpha, "counter")
            barrier.wait()
            done, _index = call(url, kv.put, alpha, "counter", str(int(entry.value) + 1).encode(),
                                cas=entry.modify_index)
            outcomes.append(done)
            wins[name] += done
            barrier.wait()

    threads = [threading.Thread(target=writer, args=(name,)) for name in wins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(outcomes) == rounds and len(outcomes) == 2 * rounds
    assert int(call(url, kv.get, alpha, "counter").value) == rounds
