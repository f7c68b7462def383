"""The health listener's batches, without a master: the results waiting on the bus are
recorded in one transaction; a result its minion did not sign, or of a minion that is
no host, is dropped and the others of the batch are kept; a change in the batch is
told to a real webhook once."""

import time
import types

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mc_project.api.users import ensure_tenant
from mc_project.health import definitions, listener, reports
from mc_project.inventory import db, fleet
from mc_project.inventory.fleet_models import Host
from mc_project.inventory.health_models import CheckState
from support.webhook import WebhookSink

HOSTS = ("web1", "web2", "web3")


def _key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return private, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def fleet_parts(tmp_path):
    """Hosts web1..web3 (minions m-web1..) in group web with check http, each minion
    with a key of its own (m-stranger's is accepted, but it is no host); a webhook
    handler on the group."""
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    keys = {"m-" + name: _key_pair() for name in HOSTS + ("stranger",)}
    with WebhookSink() as sink:
        with db.session(url) as sess:
            tenant = ensure_tenant(sess, "default").id
            fleet.create_group(sess, "ada", tenant, "web")
            for name in HOSTS:
                fleet.create_host(sess, "ada", tenant, {"name": name, "minion_id": "m-" + name, "groups": ["web"]})
            definitions.create_check(sess, tenant, "http", "http", group="web",
                                     params={"url": "http://127.0.0.1:9/"}, interval=30)
            definitions.create_handler(sess, tenant, "hook", "webhook", sink.url("/hooks/web"), group="web")
        health = listener.Listener({}, url, {}, lambda minion: keys.get(minion, (None, None))[1])
        yield types.SimpleNamespace(url=url, keys=keys, listener=health, sink=sink)
    db.dispose()


def _event(keys, minion, state, signer=None):
    tag = reports.tag(minion, "http")
    body = reports.sign(keys[signer or minion][0], tag, {"state": state, "output": state.lower(), "duration": 0.01,
                                                         "at": time.time()})
    return tag, {"id": minion, "tag": tag, "data": body}


def _states(url):
    with db.session(url) as sess:
        return dict(sess.execute(select(Host.name, CheckState.state).join(Host, Host.id == CheckState.host_id)).all())


def test_a_batch_is_recorded_whole_but_for_the_results_that_are_dropped(fleet_parts):
    keys, health = fleet_parts.keys, fleet_parts.listener
    batch = [_event(keys, "m-web1", "OK"), _event(keys, "m-web2", "OK", signer="m-web3"),
             _event(keys, "m-stranger", "OK"), _event(keys, "m-web3", "OK"), ("salt/job/1/ret", {})]
    assert health.handle_batch(batch) == []
    assert _states(fleet_parts.url) == {"web1": "OK", "web3": "OK"}

    assert health.handle_batch([_event(keys, "m-web2", "OK"), _event(keys, "m-web1", "CRITICAL"),
                                _event(keys, "m-web1", "CRITICAL")]) == ["sent"]
    assert _states(fleet_parts.url) == {"web1": "CRITICAL", "web2": "OK", "web3": "OK"}
    [(path, body)] = fleet_parts.sink.posts
    assert path == "/hooks/web" and body["text"].startswith("CRITICAL: check http on host web1 (was OK).")
    assert health.handle(*_event(keys, "m-stranger", "OK")) is None
    assert health.handle(*_event(keys, "m-web2", "OK")) == []
