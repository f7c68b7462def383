"""Credentials for an environment: root password, its crypt(3) hash, SSH keys, SSHFP.

The password itself only ever goes to the ``secrets`` table; nodes get its
SHA-512 crypt hash (what ``chpasswd -e`` takes). The hash comes from
``openssl passwd -6`` with the password on stdin, so it is never on a command
line; Python's ``crypt`` module is deprecated and gone from newer Pythons.
"""

import base64
import binascii
import hashlib
import secrets
import string
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mc_project.errors import CorpusError

# Letters and digits only: a password that needs no quoting in a shell, a URL or YAML.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
MIN_PASSWORD_LENGTH = 12

# SSHFP algorithm numbers: RFC 4255 (RSA 1, DSA 2), RFC 6594 (ECDSA 3), RFC 7479 (Ed25519 4),
# RFC 8709 (Ed448 6).
SSHFP_ALGORITHMS = {
    "ssh-rsa": 1,
    "ssh-dss": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "ssh-ed25519": 4,
    "ssh-ed448": 6,
}
# SSHFP fingerprint types: 1 is SHA-1 (RFC 4255), 2 is SHA-256 (RFC 6594).
SSHFP_HASHES = ((1, hashlib.sha1), (2, hashlib.sha256))


def generate_password(length=24):
    """A random password of ``length`` letters and digits, from the ``secrets`` module."""
    if length < MIN_PASSWORD_LENGTH:
        raise CorpusError("A password must be at least {} characters long.".format(MIN_PASSWORD_LENGTH))
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def password_hash(password):
    """The SHA-512 crypt(3) hash of ``password`` (``$6$salt$...``), for ``chpasswd -e``."""
    if not password or "\n" in password or "\r" in password or "\0" in password:
        # openssl reads one line from stdin: anything past a line break would be lost.
        raise CorpusError("A password must be non-empty and on a single line.")
    try:
        proc = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise CorpusError("openssl is not installed, so the password cannot be hashed.") from None
    hashed = proc.stdout.strip()
    if proc.returncode or not hashed.startswith("$6$"):
        # stderr cannot hold the password (it came on stdin), but keep only its last line.
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CorpusError("openssl could not hash the password: {}.".format(reason.rstrip(".")))
    return hashed


def generate_ssh_keypair(comment):
    """A new ed25519 key pair: ``(private key in OpenSSH PEM, "ssh-ed25519 AAAA... comment")``."""
    comment = (comment or "").strip()
    if any(c in comment for c in "\r\n"):
        raise CorpusError("An SSH key comment must be on a single line.")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    return private, " ".join(filter(None, [public, comment]))


def _key_blob(public_line):
    """``(key type, decoded key blob)`` of an OpenSSH public key line."""
    fields = (public_line or "").split()
    if len(fields) < 2:
        raise CorpusError("{!r} is not an OpenSSH public key line.".format(_clip(public_line)))
    key_type, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CorpusError("The {} key {!r} is not valid base64.".format(key_type, _clip(encoded))) from None
    # The blob starts with its own type as an SSH string: a 4-byte length, then the name.
    length = int.from_bytes(blob[:4], "big")
    if blob[4:4 + length].decode("ascii", "replace") != key_type:
        raise CorpusError(
            "The {} key {!r} does not hold a {} key.".format(key_type, _clip(encoded), key_type)
        )
    return key_type, blob


def fingerprint(public_line):
    """The OpenSSH fingerprint of a public key line: ``SHA256:<base64, no padding>``."""
    _, blob = _key_blob(public_line)
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def sshfp_records(host_key_lines):
    """SSHFP contents ``"ALG FPTYPE HEX"`` for each host key, SHA-1 and SHA-256."""
    records = []
    for line in host_key_lines:
        key_type, blob = _key_blob(line)
        algorithm = SSHFP_ALGORITHMS.get(key_type)
        if algorithm is None:
            raise CorpusError("SSHFP has no algorithm number for {} host keys.".format(key_type))
        for fptype, digest in SSHFP_HASHES:
            records.append("{} {} {}".format(algorithm, fptype, digest(blob).hexdigest()))
    return records


def _clip(text, limit=40):
    text = str(text or "")
    return text if len(text) <= limit else text[:limit] + "..."
