"""The key/value store's compare-and-set on a real PostgreSQL (the API's tests use SQLite):
two writers, each in its own connection and transaction, race on one key."""

import threading

import pytest

from support.postgresql import postgresql_server, postgresql_url  # noqa: F401  (fixtures)

from mc_project.health import kv
from mc_project.inventory import db
from mc_project.inventory.models import Tenant

ROUNDS = 100


@pytest.fixture
def store(postgresql_url):  # noqa: F811
    db.init(postgresql_url)
    with db.session(postgresql_url) as sess:
        tenant = Tenant(name="alpha")
        sess.add(tenant)
        sess.flush()
        tenant_id = tenant.id
    yield postgresql_url, tenant_id
    db.dispose()


def call(url, function, *args, **kwargs):
    with db.session(url) as sess:
        return function(sess, *args, **kwargs)


def run_writers(count, target):
    failures = []

    def guarded(name):
        try:
            target(name)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(name,)) for name in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures


def test_two_writers_racing_with_cas_exactly_one_wins_each_round(store):
    url, tenant = store
    call(url, kv.put, tenant, "counter", b"0")
    barrier = threading.Barrier(2, timeout=60)
    results = {0: [], 1: []}

    def writer(name):
        for _round in range(ROUNDS):
            entry = call(url, kv.get, tenant, "counter")
            barrier.wait()
            done, _index = call(url, kv.put, tenant, "counter", str(int(entry.value) + 1).encode(),
                                cas=entry.modify_index)
            results[name].append(done)
            barrier.wait()

    run_writers(2, writer)
    assert all(a != b for a, b in zip(results[0], results[1])) and len(results[0]) == ROUNDS
    assert call(url, kv.get, tenant, "counter").value == str(ROUNDS).encode()
    assert 0 < sum(results[0]) < ROUNDS  # both won rounds: they did race


def test_free_running_increments_lose_nothing_and_indexes_stay_unique(store):
    url, tenant = store
    per_writer = 60
    indexes = []

    def writer(_name):
        for _each in range(per_writer):
            while True:
                entry = call(url, kv.get, tenant, "hits")
                current, cas = (int(entry.value), entry.modify_index) if entry else (0, 0)
                done, index = call(url, kv.put, tenant, "hits", str(current + 1).encode(), cas=cas)
                if done:
                    indexes.append(index)
                    break

    run_writers(2, writer)
    assert call(url, kv.get, tenant, "hits").value == str(2 * per_writer).encode()
    assert sorted(indexes) == list(range(1, 2 * per_writer + 1))


def test_only_one_of_many_creates_with_cas_zero_wins(store):
    url, tenant = store
    barrier = threading.Barrier(4, timeout=60)
    won = []

    def writer(name):
        barrier.wait()
        if call(url, kv.put, tenant, "leader", "writer-{}".format(name).encode(), cas=0)[0]:
            won.append(name)

    run_writers(4, writer)
    assert len(won) == 1
    assert call(url, kv.get, tenant, "leader").value == "writer-{}".format(won[0]).encode()
