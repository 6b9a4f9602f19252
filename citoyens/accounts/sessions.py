"""Session lifetime: an absolute limit and an idle timeout, checked on every request."""

from __future__ import annotations

import time

from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

AUTH_AT = "auth_at"
REMEMBERED = "remembered"
SEEN_AT = "seen_at"
CLEAR_CACHES = "clear_caches"


def login_id(user, issued_at: int) -> str:
    """What the session and the remember-me cookie carry (both signed with SECRET_KEY):
    the account's session token and the login's time, "<token>.<seconds>"."""
    return f"{user.session_token}.{issued_at}"


def load_user(login: str):
    """Flask-Login's user loader: the account whose session token the login carries, if
    the login is younger than the remember-me cookie's lifetime. So a remember-me cookie
    dies on the server too: at its 30 days (whatever the browser keeps), and with every
    other session when the token changes (password change or reset, logout)."""
    from sqlalchemy import select

    from citoyens.accounts.models import User
    from citoyens.extensions import db

    token, _, issued = login.partition(".")
    if not (token and issued.isascii() and issued.isdigit()):
        return None
    age = time.time() - int(issued)
    if not 0 <= age <= current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds():
        return None
    return db.session.scalar(select(User).where(User.session_token == token))


def start_session(user, remember: bool) -> None:
    """A fresh session for a fresh login: nothing from before survives (fixation)."""
    session.clear()
    login_user(user, remember=remember)
    session.permanent = True
    now = int(time.time())
    session["_user_id"] = login_id(user, now)  # the remember-me cookie is written from it
    session[AUTH_AT] = now
    session[SEEN_AT] = now
    session[REMEMBERED] = bool(remember)
    if not remember:
        # A remember-me cookie left by an earlier login on this browser must go.
        session["_remember"] = "clear"


def end_session() -> None:
    logout_user()
    session.clear()
    session["_remember"] = "clear"  # Flask-Login deletes the remember-me cookie
    session[CLEAR_CACHES] = True


def restored_from_cookie(_app, user) -> None:
    """user_loaded_from_cookie: a remembered login starts a fresh session clock."""
    now = int(time.time())
    session[REMEMBERED] = True
    session[AUTH_AT] = now
    session[SEEN_AT] = now


def enforce_lifetime():
    """before_request hook: log out a session past its absolute or idle limit."""
    if request.endpoint in (None, "static") or not current_user.is_authenticated:
        return None
    now = int(time.time())
    # A session restored from a remember-me cookie starts its clock now.
    auth_at = session.setdefault(AUTH_AT, now)
    seen_at = session.get(SEEN_AT, now)
    config = current_app.config
    if session.get(REMEMBERED):
        # "Se souvenir de moi": the phone stays logged in up to the cookie's 30 days.
        absolute = idle = config["REMEMBER_COOKIE_DURATION"].total_seconds()
    else:
        absolute = config["SESSION_ABSOLUTE_LIFETIME"].total_seconds()
        idle = config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    if now - auth_at > absolute or now - seen_at > idle:
        logout_user()
        session.clear()
        flash("Votre session a expiré. Reconnectez-vous.", "info")
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")), 303)
    if now - seen_at > 30:
        session[SEEN_AT] = now
    return None
