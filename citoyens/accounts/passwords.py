"""Password policy and hashing (SECURITY.md: 12 to 128 characters, argon2)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that the answer takes
# as long as for a real account (no enumeration by timing).
_DUMMY_HASH = _hasher.hash("citoyens-dummy-password-for-timing")


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("citoyens").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, email: str | None = None) -> str | None:
    """The French sentence saying why a password is refused, or None if it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères."
    if len(password) > MAX_LENGTH:
        return f"Le mot de passe ne peut pas dépasser {MAX_LENGTH} caractères."
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return "Ce mot de passe est trop courant. Choisissez-en un autre, par exemple une phrase."
    if email and lowered == email.strip().lower():
        return "Le mot de passe ne peut pas être votre adresse e-mail."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches. Costs one argon2 check even without a hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
