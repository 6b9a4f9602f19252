"""Brute-force guard for passwords (login, and the current password of the account forms).

Failures are counted per account *from one client address* and per client address
(all accounts together), in Flask-Limiter's storage (Redis when REDIS_URL is set, so
every process shares the count). Only failures count. The account's limit is low (5 in
15 minutes); the address's is high (60), since a town hall or a school network puts
many families behind one address: one person's failures never lock out another person,
nor the account's owner trying from elsewhere. The client address is the proxy's
unless TRUSTED_PROXIES says how many proxies to look through (X-Forwarded-For).
"""

from __future__ import annotations

import hashlib

from flask import current_app, request
from limits import parse

from citoyens.extensions import limiter


def _account_key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:account:{digest}:{request.remote_addr}"


def _counters(email: str) -> list[tuple]:
    config = current_app.config
    return [
        (parse(config["LOGIN_FAILURES_LIMIT"]), _account_key(email)),
        (parse(config["ADDRESS_FAILURES_LIMIT"]), f"login-fail:ip:{request.remote_addr}"),
    ]


def login_blocked(email: str) -> bool:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    return any(not limiter.limiter.test(limit, key) for limit, key in _counters(email))


def record_login_failure(email: str) -> None:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    for limit, key in _counters(email):
        limiter.limiter.hit(limit, key)


def clear_login_failures(email: str) -> None:
    """A successful login forgets the account's failures (not the address's)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limit, key = _counters(email)[0]
    limiter.limiter.clear(limit, key)
