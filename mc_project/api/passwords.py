"""Local users' passwords: argon2id hashes (argon2-cffi), never the password."""

import argon2

_HASHER = argon2.PasswordHasher()
# Verifying an unknown user costs as much as a known one: no timing tells them apart.
_DUMMY = _HASHER.hash("corpus-no-such-user")


def hash_password(password):
    return _HASHER.hash(password)


def verify(password_hash, password):
    """Whether ``password`` matches ``password_hash`` (None: an unknown user, still hashed)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
