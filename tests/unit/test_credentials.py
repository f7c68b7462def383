"""Passwords, their crypt(3) hashes, SSH key pairs, fingerprints and SSHFP records,
checked against the system's own tools (libcrypt, chpasswd, ssh-keygen)."""

import base64
import string
import subprocess
import warnings

import pytest
from cryptography.hazmat.primitives import serialization

from mc_project.controller import credentials
from mc_project.errors import CorpusError

needs_ssh_keygen = pytest.mark.needs("ssh-keygen")


def libcrypt(password, salt_or_hash):
    """glibc's crypt(3), to check our hashes with something other than openssl."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    return crypt.crypt(password, salt_or_hash)


def ssh_keygen(*args, stdin=None):
    proc = subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, input=stdin, check=True)
    return proc.stdout


# ---------------------------------------------------------------- passwords


def test_generated_passwords_are_long_random_and_shell_safe():
    passwords = {credentials.generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 24
        assert set(password) <= set(string.ascii_letters + string.digits)
    assert len(credentials.generate_password(40)) == 40


def test_short_password_is_refused():
    with pytest.raises(CorpusError, match="at least 12 characters"):
        credentials.generate_password(8)


def test_password_hash_is_sha512_crypt_that_libcrypt_verifies():
    password = credentials.generate_password()
    hashed = credentials.password_hash(password)
    assert hashed.startswith("$6$")
    _, scheme, salt, digest = hashed.split("$")
    assert (scheme, len(salt), len(digest)) == ("6", 16, 86)
    assert libcrypt(password, hashed) == hashed
    assert libcrypt(password + "x", hashed) != hashed
    # A fresh salt each time: the same password never gives the same hash twice.
    assert credentials.password_hash(password) != hashed


def test_password_hash_accepts_any_printable_password():
    password = "p@ss w0rd;$(rm -rf /)'\"\\é"
    hashed = credentials.password_hash(password)
    assert libcrypt(password, hashed) == hashed


def test_password_never_reaches_the_command_line(monkeypatch):
    seen = []
    real_run = subprocess.run

    def spy(cmd, **kwargs):
        seen.append((cmd, kwargs.get("input")))
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(credentials.subprocess, "run", spy)
    credentials.password_hash("s3cret-Value-42")
    [(cmd, stdin)] = seen
    assert not any("s3cret" in arg for arg in cmd)
    assert stdin == "s3cret-Value-42\n"


@pytest.mark.parametrize("password", ["", "two\nlines", "cr\rhere", "nul\0byte"])
def test_password_that_openssl_would_truncate_is_refused(password):
    with pytest.raises(CorpusError, match="single line") as info:
        credentials.password_hash(password)
    assert not password or password not in str(info.value)


@pytest.mark.needs("root", "chpasswd")  # chpasswd -R
def test_chpasswd_takes_the_hash(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("corpus:x:1000:1000::/home/corpus:/bin/sh\n")
    (etc / "group").write_text("corpus:x:1000:\n")
    (etc / "shadow").write_text("corpus:!:20000:0:99999:7:::\n")
    password = credentials.generate_password()
    hashed = credentials.password_hash(password)
    subprocess.run(
        ["chpasswd", "-e", "-R", str(tmp_path)], input="corpus:{}\n".format(hashed), text=True, check=True
    )
    stored = (etc / "shadow").read_text().split(":")[1]
    assert stored == hashed
    assert libcrypt(password, stored) == stored


# ---------------------------------------------------------------- SSH keys


@needs_ssh_keygen
def test_generated_key_pair_is_openssh_ed25519(tmp_path):
    private, public = credentials.generate_ssh_keypair("env-1@corpus")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.startswith("ssh-ed25519 AAAA") and public.endswith(" env-1@corpus")
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() == " ".join(public.split()[:2])
    # ssh itself reads the private key and derives the same public key from it.
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(private)
    key_file.chmod(0o600)
    assert ssh_keygen("-y", "-f", str(key_file)).split()[:2] == public.split()[:2]
    assert credentials.generate_ssh_keypair("x")[1] != public


def test_key_comment_on_two_lines_is_refused():
    with pytest.raises(CorpusError, match="single line"):
        credentials.generate_ssh_keypair("a\nb")


@needs_ssh_keygen
@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
def test_fingerprint_and_sshfp_match_ssh_keygen(tmp_path, key_type):
    key_file = tmp_path / "host_key"
    ssh_keygen("-q", "-t", key_type, "-N", "", "-C", "root@host", "-f", str(key_file))
    public = (tmp_path / "host_key.pub").read_text().strip()
    expected_fingerprint = ssh_keygen("-l", "-E", "sha256", "-f", str(key_file) + ".pub").split()[1]
    assert credentials.fingerprint(public) == expected_fingerprint
    # `ssh-keygen -r NAME` prints "NAME IN SSHFP ALG FPTYPE HEX" for both hash types.
    printed = ssh_keygen("-r", "host", "-f", str(key_file) + ".pub").splitlines()
    expected_sshfp = sorted(line.split(None, 3)[3] for line in printed)
    assert sorted(credentials.sshfp_records([public])) == expected_sshfp


def test_sshfp_algorithm_numbers():
    lines = [credentials.generate_ssh_keypair("a")[1], credentials.generate_ssh_keypair("b")[1]]
    records = credentials.sshfp_records(lines)
    assert [r.split()[:2] for r in records] == [["4", "1"], ["4", "2"]] * 2
    assert [len(r.split()[2]) for r in records] == [40, 64] * 2


@pytest.mark.parametrize(
    "line, message",
    [
        ("", "not an OpenSSH public key line"),
        ("ssh-ed25519", "not an OpenSSH public key line"),
        ("ssh-ed25519 not*base64", "not valid base64"),
    ],
)
def test_bad_public_key_lines_are_refused(line, message):
    with pytest.raises(CorpusError, match=message):
        credentials.fingerprint(line)
    with pytest.raises(CorpusError, match=message):
        credentials.sshfp_records([line])


def test_key_whose_blob_is_of_another_type_is_refused():
    blob = credentials.generate_ssh_keypair("x")[1].split()[1]
    with pytest.raises(CorpusError, match="does not hold a ssh-rsa key"):
        credentials.sshfp_records(["ssh-rsa " + blob])


def test_sshfp_refuses_an_unknown_key_type():
    # A well-formed blob of a type SSHFP has no number for.
    name = b"sk-ssh-ed25519@openssh.com"
    blob = len(name).to_bytes(4, "big") + name + b"\0\0\0\0"
    line = "sk-ssh-ed25519@openssh.com " + base64.b64encode(blob).decode()
    assert credentials.fingerprint(line).startswith("SHA256:")
    with pytest.raises(CorpusError, match="no algorithm number for sk-ssh-ed25519@openssh.com"):
        credentials.sshfp_records([line])
