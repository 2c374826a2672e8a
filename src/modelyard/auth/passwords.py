"""Password hashing: argon2id through argon2-cffi (a maintained library), never a plain digest.

Verification takes tens of milliseconds by design; `modelyard.auth.cache` keeps a verified
credential per worker for a few seconds so a client's steady stream of requests pays it about once.
`verify` compares in constant time (argon2 does), and a user without a password (SSO) never matches.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from modelyard.exceptions import ModelyardException

#: MLflow's basic-auth app refuses shorter passwords too.
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024

_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
#: Verified against when the user does not exist, so a wrong name costs what a wrong password does.
_DUMMY_HASH = _HASHER.hash("modelyard-no-such-user-password")


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise ModelyardException.invalid_parameter(
            "Missing value for required parameter 'password'. See the API docs for more information about request parameters."
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise ModelyardException.invalid_parameter(
            f"Password must be at least {MIN_PASSWORD_CHARS} characters."
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ModelyardException.invalid_parameter(
            f"Password must be at most {MAX_PASSWORD_CHARS} characters."
        )
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(validate_password(password))


def verify(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash is checked against a dummy one (same cost)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
