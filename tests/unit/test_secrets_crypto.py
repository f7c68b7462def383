"""Secrets at rest (Fernet key file, rotation, the migration that encrypts leftovers) and
secrets sealed to a minion's RSA key (what the controller sends a node)."""

import importlib.util
import os
import stat

import alembic.command
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, text

from mc_project import sealed
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import Secret

PASSWORD = "Pl41nPassw0rdNeverStored"
PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n" \
          "-----END OPENSSH PRIVATE KEY-----\n"
MODULE_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "_modules", "mc_lxc.py")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def key(tmp_path):
    return str(tmp_path / "etc" / "corpus" / "secrets.key")


@pytest.fixture
def url(tmp_path, key):
    url = "sqlite:///{}".format(tmp_path / "lib" / "inventory.sqlite")
    db.init(url, secrets_key=key)
    yield url
    db.dispose()


def raw_values(url):
    with db.engine(url).connect() as connection:
        return dict(connection.execute(text("SELECT name, value FROM secrets")).all())


def store(url, key, owner="env:web"):
    with secrets_crypto.writing(key) as keyring, db.session(url) as sess:
        secrets_crypto.put(sess, keyring, owner, "root_password", PASSWORD)
        secrets_crypto.put(sess, keyring, owner, "ssh_private_key", PRIVATE)


def read(url, key, owner="env:web"):
    with db.session(url) as sess:
        return secrets_crypto.values(sess, secrets_crypto.load(key), owner)


def test_encrypt_and_decrypt(key):
    secrets_crypto.ensure_key(key)
    keyring = secrets_crypto.load(key)
    first, second = keyring.encrypt(PASSWORD), keyring.encrypt(PASSWORD)
    assert first.startswith("fernet:") and first != second and PASSWORD not in first
    assert keyring.decrypt(first) == keyring.decrypt(second) == PASSWORD
    assert keyring.decrypt("left-in-plain-text") == "left-in-plain-text"
    other = secrets_crypto.Keyring([secrets_crypto.Fernet.generate_key()], "/elsewhere")
    with pytest.raises(CorpusError, match="cannot be decrypted with the keys in /elsewhere"):
        other.decrypt(first)


def test_the_key_file_is_private_and_made_once(key):
    assert secrets_crypto.ensure_key(key)
    assert mode(key) == 0o600 and mode(os.path.dirname(key)) == 0o700
    keys = secrets_crypto.read_keys(key)
    assert not secrets_crypto.ensure_key(key) and secrets_crypto.read_keys(key) == keys
    with pytest.raises(CorpusError, match="no secrets key file"):
        secrets_crypto.load(key + ".missing")


def test_the_inventory_file_is_private_and_holds_no_plain_secret(url, key, tmp_path):
    store(url, key)
    database = str(tmp_path / "lib" / "inventory.sqlite")
    assert mode(database) == 0o600 and mode(os.path.dirname(database)) == 0o700
    stored = raw_values(url)
    assert all(value.startswith("fernet:") for value in stored.values())
    with open(database, "rb") as fh:
        content = fh.read()
    assert PASSWORD.encode() not in content and b"PRIVATE KEY" not in content
    assert read(url, key) == {"root_password": PASSWORD, "ssh_private_key": PRIVATE}


def test_rotation_changes_every_ciphertext_and_drops_the_old_key(url, key):
    store(url, key)
    store(url, key, owner="env:other")
    before, old_keys = raw_values(url), secrets_crypto.read_keys(key)
    with db.session(url) as sess:
        before_rows = {(row.owner, row.name): row.value for row in sess.scalars(select(Secret))}
    assert secrets_crypto.rotate(url, key) == 4
    new_keys = secrets_crypto.read_keys(key)
    assert len(new_keys) == 1 and new_keys[0] not in old_keys and mode(key) == 0o600
    with db.session(url) as sess:
        after_rows = {(row.owner, row.name): row.value for row in sess.scalars(select(Secret))}
    assert all(after_rows[name] != value for name, value in before_rows.items())
    assert raw_values(url) != before
    assert read(url, key) == read(url, key, "env:other") == {"root_password": PASSWORD,
                                                             "ssh_private_key": PRIVATE}
    with pytest.raises(CorpusError):
        secrets_crypto.Keyring(old_keys).decrypt(after_rows[("env:web", "root_password")])


def test_a_rotation_that_dies_before_dropping_the_old_key_leaves_all_readable(url, key, monkeypatch):
    store(url, key)
    real_write = secrets_crypto.write_keys
    calls = []

    def dies_the_second_time(path, keys):
        calls.append(keys)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real_write(path, keys)

    monkeypatch.setattr(secrets_crypto, "write_keys", dies_the_second_time)
    with pytest.raises(KeyboardInterrupt):
        secrets_crypto.rotate(url, key)
    monkeypatch.setattr(secrets_crypto, "write_keys", real_write)
    assert len(secrets_crypto.read_keys(key)) == 2
    assert read(url, key)["root_password"] == PASSWORD
    secrets_crypto.rotate(url, key)  # the next one finishes the job
    assert len(secrets_crypto.read_keys(key)) == 1 and read(url, key)["ssh_private_key"] == PRIVATE


def test_a_rotation_that_dies_mid_transaction_changes_no_row(url, key, monkeypatch):
    store(url, key)
    before = raw_values(url)
    real = secrets_crypto.Keyring.reencrypt
    done = []

    def dies_on_the_second_row(self, stored):
        done.append(stored)
        if len(done) == 2:
            raise KeyboardInterrupt("killed")
        return real(self, stored)

    monkeypatch.setattr(secrets_crypto.Keyring, "reencrypt", dies_on_the_second_row)
    with pytest.raises(KeyboardInterrupt):
        secrets_crypto.rotate(url, key)
    assert raw_values(url) == before
    assert read(url, key) == {"root_password": PASSWORD, "ssh_private_key": PRIVATE}


def test_the_migration_encrypts_plain_secrets_and_the_downgrade_decrypts_them(tmp_path, key):
    url = "sqlite:///{}".format(tmp_path / "old.sqlite")
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0002")
    with db.engine(url).begin() as connection:
        connection.execute(text("INSERT INTO secrets (owner, name, value) VALUES ('env:web', 'root_password', :v)"),
                           {"v": PASSWORD})
    assert db.init(url, secrets_key=key) == db.head_revision()
    assert raw_values(url)["root_password"].startswith("fernet:")
    assert read(url, key) == {"root_password": PASSWORD}
    config = db.alembic_config(url)
    config.attributes["secrets_key"] = key
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.downgrade(config, "0002")
    assert raw_values(url) == {"root_password": PASSWORD}
    db.dispose()


def test_without_a_key_the_migration_leaves_rows_for_init_to_encrypt(tmp_path, key):
    url = "sqlite:///{}".format(tmp_path / "old.sqlite")
    config = db.alembic_config(url)
    with db.engine(url).begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0002")
        connection.execute(text("INSERT INTO secrets (owner, name, value) VALUES ('env:web', 'root_password', :v)"),
                           {"v": PASSWORD})
    db.init(url)
    assert raw_values(url) == {"root_password": PASSWORD}
    assert secrets_crypto.encrypt_leftovers(url, key) == 1
    assert secrets_crypto.encrypt_leftovers(url, key) == 0
    assert read(url, key) == {"root_password": PASSWORD}
    db.dispose()


# --------------------------------------------------------------------------- sealed to a minion

def rsa_pair(public_format=serialization.PublicFormat.SubjectPublicKeyInfo):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, public_format).decode()
    return private, public


HASH = "$6$abcdefgh$" + "x" * 86


@pytest.mark.parametrize("public_format", [serialization.PublicFormat.SubjectPublicKeyInfo,
                                           serialization.PublicFormat.PKCS1])
def test_a_sealed_value_opens_only_with_the_minion_key(public_format):
    private, public = rsa_pair(public_format)
    box = sealed.seal(public, HASH)
    assert box.startswith("sealed1:") and HASH not in box and "$6$" not in box
    assert sealed.seal(public, HASH) != box
    assert sealed.open_sealed(private, box) == HASH
    other_private, _ = rsa_pair()
    with pytest.raises(CorpusError, match="cannot be opened"):
        sealed.open_sealed(other_private, box)
    with pytest.raises(CorpusError, match="malformed"):
        sealed.open_sealed(private, HASH)
    with pytest.raises(CorpusError, match="not a PEM public key"):
        sealed.seal("nonsense", HASH)


def test_the_node_module_opens_the_sealed_hash_with_its_minion_key(tmp_path, monkeypatch):
    private, public = rsa_pair()
    master_pki, minion_pki = tmp_path / "master", tmp_path / "minion"
    (master_pki / "minions").mkdir(parents=True)
    minion_pki.mkdir()
    (master_pki / "minions" / "node1").write_text(public)
    (minion_pki / "minion.pem").write_bytes(private)
    box = sealed.seal_to_minion(str(master_pki), "node1", HASH)
    with pytest.raises(CorpusError, match="no accepted key for minion node2"):
        sealed.seal_to_minion(str(master_pki), "node2", HASH)

    spec = importlib.util.spec_from_file_location("mc_lxc_sealed_test", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__context__ = {}
    module.__opts__ = {"pki_dir": str(minion_pki)}
    module.__salt__ = {"config.get": lambda key, default=None: default}
    given = []
    monkeypatch.setattr(module.inside, "set_root_password",
                        lambda name, password_hash, lxc_path: given.append(password_hash) or {"name": name})
    module.set_root_password("ct", sealed_hash=box, lxc_path="/x")
    module.set_root_password("ct", HASH, lxc_path="/x")  # the plain form, for direct calls
    assert given == [HASH, HASH]
