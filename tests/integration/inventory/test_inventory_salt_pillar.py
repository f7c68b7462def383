"""Through a real salt-master and minions: the ext_pillar gives a host's minion its
resolved inventory variables, secrets decrypted, and another minion none of them."""

import uuid

import pytest

SECRET = "pillar-only-secret"


@pytest.fixture
def minions(master):
    tag = uuid.uuid4().hex[:6]
    host_minion = master.salt_minion_daemon("corpus-inv-host-" + tag)
    other_minion = master.salt_minion_daemon("corpus-inv-other-" + tag)
    with host_minion.started(), other_minion.started():
        yield host_minion, other_minion


def test_a_hosts_minion_gets_its_variables_and_secrets_in_its_pillar(minions, corpus_cli):
    host_minion, other_minion = minions
    name = "pillar-" + host_minion.id[-6:]
    corpus_cli("inventory", "add", "group", "db-" + name)
    corpus_cli("inventory", "add", "host", name, "--minion", host_minion.id, "--group", "db-" + name)
    corpus_cli("inventory", "set", "tenant", "default", "ntp=pool.ntp.org")
    corpus_cli("inventory", "set", "group", "db-" + name, 'postgres={"version": 15}',
               "--secret", "db_password=" + SECRET)
    corpus_cli("inventory", "set", "host", name, "role=primary")

    # Salt masks the pillar values pillar.item prints; pillar.raw shows them as they are.
    answer = host_minion.salt_call_cli(timeout=120).run("pillar.raw", "key=inventory")
    assert answer.returncode == 0, answer
    inventory = answer.data
    assert inventory["db_password"] == SECRET
    assert inventory["postgres"] == {"version": 15} and inventory["role"] == "primary"
    assert inventory["ntp"] == "pool.ntp.org"

    other = other_minion.salt_call_cli(timeout=120).run("pillar.raw")
    assert other.returncode == 0, other
    assert "inventory" not in other.data and SECRET not in str(other.data)
    # The API shows the secret masked to the viewer of its change log.
    changes = corpus_cli("inventory", "changes", "group", "db-" + name).stdout
    assert SECRET not in changes and "db_password" in changes
