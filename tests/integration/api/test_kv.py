"""The key/value store against the real corpus-api (conftest.py): two writers racing
with compare-and-set, a blocking read woken by a write, tenants and roles, the
``corpus kv`` round trip, and the sdb driver read by a real minion's salt-call."""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

BIN = os.path.dirname(sys.executable)
ROUNDS = 60


def kv_index(answer):
    return int(answer.headers["X-Corpus-Index"])


@pytest.fixture(scope="module")
def alice(login):
    return login("alice")


def test_two_writers_racing_with_cas_exactly_one_wins_each_round(api, alice, login):
    """Each round both writers read the key, then both write it back plus one with cas
    at once: exactly one is answered true; after every round the value is the number of
    rounds so far (no update is lost)."""
    key = "race/{}".format(uuid.uuid4().hex[:8])
    headers = {"a": alice, "b": login("alice")}
    with httpx.Client(base_url=api, timeout=30) as setup:
        assert setup.put("/v1/kv/" + key, content=b"0", headers=alice).json() is True
    barrier = threading.Barrier(2, timeout=60)
    results = {"a": [], "b": []}
    failures = []

    def writer(name):
        try:
            with httpx.Client(base_url=api, timeout=30, headers=headers[name]) as client:
                for _round in range(ROUNDS):
                    entry = client.get("/v1/kv/" + key).json()
                    barrier.wait()
                    value = int(base64.b64decode(entry["value"])) + 1
                    answer = client.put("/v1/kv/{}?cas={}".format(key, entry["modify_index"]),
                                        content=str(value).encode())
                    assert answer.status_code == 200, answer.text
                    results[name].append(answer.json())
                    barrier.wait()
        except Exception as exc:  # noqa: BLE001 - reported by the test's thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures
    assert len(results["a"]) == len(results["b"]) == ROUNDS
    assert all(a != b for a, b in zip(results["a"], results["b"])), "both or neither won a round"
    with httpx.Client(base_url=api, timeout=30) as client:
        assert client.get("/v1/kv/{}?raw=true".format(key), headers=alice).content == str(ROUNDS).encode()
    # Both won some rounds: the writers did race.
    assert 0 < sum(results["a"]) < ROUNDS


def test_free_running_increments_with_cas_lose_nothing(api, alice):
    key = "counter/{}".format(uuid.uuid4().hex[:8])
    per_writer = 40
    retries = []

    def writer():
        with httpx.Client(base_url=api, timeout=30, headers=alice) as client:
            for _each in range(per_writer):
                while True:
                    found = client.get("/v1/kv/" + key)
                    current = int(base64.b64decode(found.json()["value"])) if found.status_code == 200 else 0
                    cas = found.json()["modify_index"] if found.status_code == 200 else 0
                    if client.put("/v1/kv/{}?cas={}".format(key, cas), content=str(current + 1).encode()).json():
                        break
                    retries.append(1)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    with httpx.Client(base_url=api, timeout=30) as client:
        assert client.get("/v1/kv/{}?raw=true".format(key), headers=alice).content == str(2 * per_writer).encode()
    print("free-running CAS increments: {} writes, {} refused and retried".format(2 * per_writer, len(retries)))


def test_a_blocking_get_is_woken_by_a_put(http, alice):
    key = "blocking/{}".format(uuid.uuid4().hex[:8])
    known = kv_index(http.put("/v1/kv/" + key, content=b"before", headers=alice))
    seen = {}

    def watch():
        with httpx.Client(base_url=str(http.base_url), timeout=60, headers=alice) as client:
            answer = client.get("/v1/kv/{}?raw=true&index={}&wait=30s".format(key, known))
            seen.update(answer=answer, at=time.monotonic())

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(1.5)
    assert watcher.is_alive(), "the blocking read answered before any change"
    written = http.put("/v1/kv/" + key, content=b"after", headers=alice)
    put_done = time.monotonic()
    watcher.join(30)
    assert seen["answer"].status_code == 200 and seen["answer"].content == b"after"
    assert kv_index(seen["answer"]) == kv_index(written) > known
    latency = seen["at"] - put_done
    print("blocking GET answered {:.3f} s after the PUT's answer".format(latency))
    assert latency < 2


def test_tenants_and_roles(http, alice, login):
    key = "isolated/{}".format(uuid.uuid4().hex[:8])
    assert http.put("/v1/kv/" + key, content=b"alpha", headers=alice).json() is True
    carol, bob = login("carol"), login("bob")
    assert http.get("/v1/kv/{}?raw=true".format(key), headers=carol).content == b"alpha"
    refused = http.put("/v1/kv/" + key, content=b"carol", headers=carol)
    assert refused.status_code == 403 and "deployer" in refused.json()["error"]["message"]
    assert http.get("/v1/kv/" + key, headers=bob).status_code == 404
    assert http.get("/v1/kv/{}?tenant=alpha".format(key), headers=bob).status_code == 404
    assert http.delete("/v1/kv/{}?tenant=alpha".format(key), headers=bob).status_code == 404
    assert http.get("/v1/kv/{}?raw=true".format(key), headers=alice).content == b"alpha"


@pytest.fixture(scope="module")
def cli_env(api, alice, tmp_path_factory):
    home = tmp_path_factory.mktemp("kv-home")
    config = home / ".makinastates.conf"
    config.write_text("[corpus]\nurl = {}\nuser = alice\ntoken = {}\n".format(
        api, alice["Authorization"].split(" ", 1)[1]))
    os.chmod(config, 0o600)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CORPUS_")}
    env.update(HOME=str(home), CORPUS_CONFIG=str(config), XDG_CONFIG_HOME=str(home / ".config"))
    return env


def corpus(env, *args, stdin=None):
    result = subprocess.run([os.path.join(BIN, "corpus"), *args], env=env, capture_output=True, timeout=120,
                            input=stdin)
    assert b"Traceback" not in result.stdout + result.stderr
    return result


def test_the_cli_round_trip(cli_env):
    key = "cli/{}/db_host".format(uuid.uuid4().hex[:8])
    put = corpus(cli_env, "kv", "put", key, "db1.example.com")
    assert put.returncode == 0 and b"set (index" in put.stdout, put
    got = corpus(cli_env, "kv", "get", key)
    assert (got.returncode, got.stdout) == (0, b"db1.example.com\n")
    document = corpus(cli_env, "kv", "get", key, "--json")
    record = json.loads(document.stdout)
    index = record["modify_index"]
    stale = corpus(cli_env, "kv", "put", key, "db2", "--cas", str(index - 1))
    assert stale.returncode == 1 and "was not set: its modify index is {}".format(index).encode() in stale.stderr
    assert corpus(cli_env, "kv", "put", key, "-", "--cas", str(index), stdin=b"db2\n").returncode == 0
    assert corpus(cli_env, "kv", "get", key).stdout == b"db2\n"

    watcher = subprocess.Popen([os.path.join(BIN, "corpus"), "kv", "watch", key, "--count", "3", "--wait", "20"],
                               env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = watcher.stdout.readline()
        assert first == b"db2\n"
        corpus(cli_env, "kv", "put", key, "db3")
        assert watcher.stdout.readline() == b"db3\n"
        corpus(cli_env, "kv", "put", key, "db4")
        out, err = watcher.communicate(timeout=30)
        assert out == b"db4\n" and watcher.returncode == 0, err
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    listed = corpus(cli_env, "kv", "get", key.rsplit("/", 1)[0] + "/", "--recurse")
    assert listed.returncode == 0 and key.encode() in listed.stdout and b"db4" in listed.stdout
    assert corpus(cli_env, "kv", "rm", key, "--cas", "1").returncode == 1
    assert corpus(cli_env, "kv", "rm", key).returncode == 0
    missing = corpus(cli_env, "kv", "get", key)
    assert missing.returncode == 2 and missing.stderr.startswith(b"corpus: No key ")
    bad = corpus(cli_env, "kv", "put", "/absolute", "x")
    assert bad.returncode == 2 and b"does not start with '/'" in bad.stderr


@pytest.fixture(scope="module")
def sdb_minion(master, api, http, alice, tmp_path_factory):
    """A real minion of the API's master whose configuration has a corpus_kv profile
    with an API token of alice's in a 0600 file, and an option read through sdb."""
    token = http.post("/v1/tokens", json={"name": "salt-sdb", "expires_in_days": 1}, headers=alice).json()["token"]
    token_file = tmp_path_factory.mktemp("kv-sdb") / "corpus-kv.token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    overrides = {
        "corpus_kv": {"driver": "corpus_kv", "url": api, "token_file": str(token_file), "tenant": "alpha"},
        "app_db_host": "sdb://corpus_kv/sdb/app/db_host",
    }
    factory = master.salt_minion_daemon("corpus-kv-{}".format(uuid.uuid4().hex[:6]), overrides=overrides)
    with factory.started():
        yield factory


def test_the_sdb_driver_through_a_real_minion(sdb_minion, http, alice):
    assert http.put("/v1/kv/sdb/app/db_host", content="db-é.example.com".encode(), headers=alice).json() is True
    salt_call = sdb_minion.salt_call_cli(timeout=120)

    answer = salt_call.run("sdb.get", "sdb://corpus_kv/sdb/app/db_host")
    assert answer.returncode == 0 and answer.data == "db-é.example.com", answer
    # A template of a state renders it; a configuration option pointing at it reads it.
    rendered = salt_call.run("slsutil.renderer", default_renderer="jinja|yaml",
                             string="host: {{ salt['sdb.get']('sdb://corpus_kv/sdb/app/db_host') }}")
    assert rendered.returncode == 0 and rendered.data == {"host": "db-é.example.com"}, rendered
    option = salt_call.run("config.get", "app_db_host")
    assert option.returncode == 0 and option.data == "db-é.example.com", option

    assert salt_call.run("sdb.set", "sdb://corpus_kv/sdb/app/written", "by-salt").returncode == 0
    assert http.get("/v1/kv/sdb/app/written?raw=true", headers=alice).content == b"by-salt"
    missing = salt_call.run("sdb.get", "sdb://corpus_kv/sdb/app/missing")
    assert missing.returncode == 0 and missing.data is None, missing
