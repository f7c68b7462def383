"""A secret sealed to one Salt minion: only the holder of its RSA key opens it.

What the master publishes to a minion lands in the master's job cache (the
job's load, arguments included), so a secret sent to a node travels sealed:
a fresh Fernet key wrapped with RSA-OAEP (SHA-256) to the minion's public key
(the master keeps it under ``<pki_dir>/minions/<minion id>``), and the text
encrypted with that Fernet key. The node opens it with its ``minion.pem``.
"""

import base64
import binascii
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mc_project.errors import CorpusError

PREFIX = "sealed1:"


def _oaep():
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def seal(public_pem, text):
    """``text`` sealed to the RSA public key ``public_pem`` (PEM, PKCS#1 or SubjectPublicKeyInfo)."""
    try:
        public = serialization.load_pem_public_key(public_pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeError):
        raise CorpusError("A minion key is not a PEM public key.") from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise CorpusError("A minion key is not an RSA key.")
    key = Fernet.generate_key()
    wrapped = base64.b64encode(public.encrypt(key, _oaep())).decode("ascii")
    return "{}{}.{}".format(PREFIX, wrapped, Fernet(key).encrypt(text.encode("utf-8")).decode("ascii"))


def open_sealed(private_pem, sealed):
    """The text in ``sealed``, opened with the RSA private key ``private_pem`` (bytes or text)."""
    if isinstance(private_pem, str):
        private_pem = private_pem.encode("ascii")
    if not isinstance(sealed, str) or not sealed.startswith(PREFIX) or "." not in sealed:
        raise CorpusError("The sealed value is malformed.")
    wrapped, _, token = sealed[len(PREFIX):].partition(".")
    try:
        private = serialization.load_pem_private_key(private_pem, password=None)
        key = private.decrypt(base64.b64decode(wrapped, validate=True), _oaep())
        return Fernet(key).decrypt(token.encode("ascii")).decode("utf-8")
    except (ValueError, TypeError, binascii.Error, InvalidToken, UnicodeError, AttributeError):
        raise CorpusError("The sealed value cannot be opened with this minion's key.") from None


def seal_to_minion(pki_dir, minion_id, text):
    """``text`` sealed to the accepted key of ``minion_id`` in the master's ``pki_dir``."""
    path = os.path.join(pki_dir, "minions", minion_id)
    try:
        with open(path, encoding="ascii") as fh:
            return seal(fh.read(), text)
    except FileNotFoundError:
        raise CorpusError("The master has no accepted key for minion {}.".format(minion_id)) from None


def open_with_minion_key(pki_dir, sealed):
    """The text in ``sealed``, opened with ``<pki_dir>/minion.pem`` (on the minion)."""
    path = os.path.join(pki_dir, "minion.pem")
    try:
        with open(path, "rb") as fh:
            return open_sealed(fh.read(), sealed)
    except FileNotFoundError:
        raise CorpusError("This minion has no key {}.".format(path)) from None
