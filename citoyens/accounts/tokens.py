"""Signed, expiring, single-use tokens for the links sent by e-mail.

Each token signs a fingerprint of the state it changes (the confirmation date,
the password hash, the e-mail address): once used, that state differs and the
token is dead.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "confirm-email"
RESET = "reset-password"
CHANGE_EMAIL = "change-email"
# The link an administrator sends a new staff account to set its password (a week, as the
# agent may be away): it also dies when the account is deactivated (session token rotated).
STAFF_WELCOME = "staff-welcome"
STAFF_WELCOME_MAX_AGE = timedelta(days=7)


def staff_welcome_max_age() -> timedelta:
    return current_app.config.get("STAFF_WELCOME_TOKEN_MAX_AGE", STAFF_WELCOME_MAX_AGE)


# The welcome e-mail of an imported family: a reset link that lives longer (days, not hours).
WELCOME = "welcome"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"citoyens:{purpose}")


def _fingerprint(user, purpose: str) -> str:
    if purpose in (RESET, CHANGE_EMAIL, WELCOME):
        # A new password kills pending links: an intruder's e-mail change dies at reset.
        state = user.password_hash or ""
    elif purpose == STAFF_WELCOME:
        state = f"{user.password_hash or ''}|{user.session_token}"
    elif purpose == CONFIRM:
        state = str(user.confirmed_at or "")
    else:
        state = ""
    return hashlib.sha256(f"{user.email}|{state}".encode()).hexdigest()[:16]


def make_token(user, purpose: str, **extra: str) -> str:
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user, purpose), **extra})


def read_token(token: str, purpose: str, max_age: timedelta) -> dict | None:
    """The data signed in the token, or None if forged or expired."""
    try:
        data = _serializer(purpose).loads(token, max_age=int(max_age.total_seconds()))
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data


def user_for_token(token: str, purpose: str, max_age: timedelta):
    """(user, data) when the token is genuine, fresh and not used yet; else (None, None)."""
    from citoyens.accounts.models import User
    from citoyens.extensions import db

    data = read_token(token, purpose, max_age)
    if data is None:
        return None, None
    user = db.session.get(User, data["u"])
    if user is None or not user.active or _fingerprint(user, purpose) != data.get("f"):
        return None, None
    return user, data
