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

#: argon2id with the library's parameters (RFC 9106's low-memory profile: 64 MiB, 3 passes) unless
#: `configure` chose others. A hash records its parameters, so changing them affects new hashes only.
_HASHER = PasswordHasher()
#: Verified against when the user does not exist, so a wrong name costs what a wrong password does.
_dummy_hash: str | None = None


def configure(time_cost: int, memory_kib: int) -> None:
    """The cost of new hashes (`MODELYARD_AUTH_PASSWORD_HASH_TIME_COST` / `_MEMORY_KIB`)."""
    global _HASHER, _dummy_hash
    if (time_cost, memory_kib) != (_HASHER.time_cost, _HASHER.memory_cost):
        _HASHER = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _dummy_hash = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _HASHER.hash("modelyard-no-such-user-password")
    return _dummy_hash


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
        return _HASHER.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
