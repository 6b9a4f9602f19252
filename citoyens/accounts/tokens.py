"""Signed, expiring, single-use tokens for the links sent by e-mail.

Each token signs a fingerprint of the state it changes (the confirmation date,
the password hash): once used, that state differs and the token is dead.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "confirm-email"
RESET = "reset-password"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"citoyens:{purpose}")


def _fingerprint(user, purpose: str) -> str:
    state = user.password_hash or "" if purpose == RESET else str(user.confirmed_at or "")
    return hashlib.sha256(f"{user.email}|{state}".encode()).hexdigest()[:16]


def make_token(user, purpose: str) -> str:
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user, purpose)})


def read_token(token: str, purpose: str, max_age: timedelta) -> tuple[int, str] | None:
    """The (user id, fingerprint) signed in the token, or None if forged or expired."""
    try:
        data = _serializer(purpose).loads(token, max_age=int(max_age.total_seconds()))
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data["u"], str(data.get("f", ""))


def token_matches(user, purpose: str, fingerprint: str) -> bool:
    return _fingerprint(user, purpose) == fingerprint
