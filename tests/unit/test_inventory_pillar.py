"""The ext_pillar adds a host's resolved variables (secrets in plain text) under
``inventory`` to that host's minion only, beside the pillar row the controller wrote."""

import importlib.util
import os

import pytest
from sqlalchemy import select

from mc_project.inventory import db, fleet, secrets_crypto
from mc_project.inventory.models import ComputeNode, Environment, Pillar, Tenant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def ext_pillar(tmp_path):
    spec = importlib.util.spec_from_file_location("corpus_inventory_pillar",
                                                  os.path.join(ROOT, "_pillar", "corpus_inventory.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    module.__opts__ = {"corpus": {"db_url": url, "secrets_key": str(tmp_path / "secrets.key")}}
    db.init(url)
    keyring = secrets_crypto.load(str(tmp_path / "secrets.key"), create=True)
    with db.session(url) as sess:
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        node = ComputeNode(name="node1", address="192.0.2.1", tenant_id=tenant.id)
        sess.add(node)
        sess.flush()
        sess.add(Environment(name="web", node_id=node.id, minion_id="web.corpus.test", tenant_id=tenant.id))
        sess.add(Pillar(minion_id="web.corpus.test", data={"corpus": {"role": "environment"}}))
        fleet.set_variables(sess, keyring, "ada", tenant.id, "tenant", tenant.id, "acme",
                            variables={"ntp": "pool"}, secrets={"db_password": "hunter2"})
        web = fleet.host_by_name(sess, tenant.id, "web")
        fleet.set_variables(sess, keyring, "ada", tenant.id, "host", web["id"], "web", variables={"role": "www"})
        fleet.create_host(sess, "ada", tenant.id, {"name": "bare", "minion_id": "bare.example"})
    yield module
    db.dispose()


def test_the_hosts_minion_gets_its_variables_and_secrets(ext_pillar):
    assert ext_pillar.ext_pillar("web.corpus.test", {}) == {
        "corpus": {"role": "environment"},
        "inventory": {"ntp": "pool", "db_password": "hunter2", "role": "www"}}
    assert ext_pillar.ext_pillar("bare.example", {}) == {"inventory": {"ntp": "pool", "db_password": "hunter2"}}
    # node1 is a host too (its minion id is its name); another minion gets nothing.
    assert ext_pillar.ext_pillar("node1", {})["inventory"]["ntp"] == "pool"
    assert ext_pillar.ext_pillar("stranger", {}) == {}


def test_without_the_key_the_secrets_are_left_out_and_said_so(ext_pillar, caplog):
    os.unlink(ext_pillar.__opts__["corpus"]["secrets_key"])
    assert ext_pillar.ext_pillar("bare.example", {}) == {"inventory": {"ntp": "pool"}}
    assert "no secret variables for bare.example" in caplog.text and "hunter2" not in caplog.text
    with db.session(ext_pillar.__opts__["corpus"]["db_url"]) as sess:
        assert sess.scalars(select(Pillar.minion_id)).all() == ["web.corpus.test"]
