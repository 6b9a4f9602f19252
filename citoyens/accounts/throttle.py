"""Brute-force guard: failed logins counted per address and per e-mail.

Uses Flask-Limiter's storage (Redis when REDIS_URL is set), so the count is
shared by every process. Only failures count; the 6th within the window is 429.
"""

from __future__ import annotations

import hashlib

from flask import current_app, request
from limits import parse

from citoyens.extensions import limiter


def _keys(email: str) -> list[str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:email:{digest}", f"login-fail:ip:{request.remote_addr}"]


def _limit():
    return parse(current_app.config["LOGIN_FAILURES_LIMIT"])


def login_blocked(email: str) -> bool:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    limit = _limit()
    return any(not limiter.limiter.test(limit, key) for key in _keys(email))


def record_login_failure(email: str) -> None:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limit = _limit()
    for key in _keys(email):
        limiter.limiter.hit(limit, key)


def clear_login_failures(email: str) -> None:
    """A successful login forgets the e-mail's failures (not the address's)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limiter.limiter.clear(_limit(), _keys(email)[0])
