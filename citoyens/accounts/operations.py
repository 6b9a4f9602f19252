"""Account verbs, callable from views, CLI and tests alike (no request parsing here).

Each verb flushes and records an audit event; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import func, select

from citoyens import audit
from citoyens.accounts import tokens
from citoyens.accounts.models import User
from citoyens.accounts.passwords import hash_password, needs_rehash, verify_password
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.mail import send_mail


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def _external_url(endpoint: str, **values) -> str:
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def register_parent(email: str, password: str, first_name: str, last_name: str) -> User | None:
    """Create an account with its household and adult person, and mail the confirmation link.

    If the address already has an account nothing is created and its owner is
    told by e-mail instead: the page answers the same either way, and as slowly (the
    password is hashed all the same, the costly step of a new account).
    """
    email = normalize_email(email)
    existing = find_user(email)
    if existing is not None:
        hash_password(password)  # same work as a new account: no enumeration by timing
        send_mail(
            "account-exists",
            existing.email,
            "Votre espace existe déjà",
            "account_exists",
            user=existing,
            login_url=_external_url("accounts.login"),
            reset_url=_external_url("accounts.forgot_password"),
            activation=existing.password_hash is None,  # an imported account: no password yet
        )
        audit.record("signup.existing-email", target=f"user:{existing.id}")
        return None
    household = Household()
    person = Person(first_name=first_name.strip(), last_name=last_name.strip())
    household.memberships.append(HouseholdMember(person=person, role="adult"))
    user = User(
        email=email,
        password_hash=hash_password(password),
        role="parent",
        first_name=person.first_name,
        last_name=person.last_name,
        household=household,
        person=person,
        password_changed_at=utcnow(),
    )
    db.session.add_all([household, person, user])
    db.session.flush()
    send_confirmation(user)
    audit.record("signup", actor=user, target=f"user:{user.id}")
    return user


def send_confirmation(user: User) -> None:
    token = tokens.make_token(user, tokens.CONFIRM)
    send_mail(
        "confirm-email",
        user.email,
        "Confirmez votre adresse e-mail",
        "confirm_email",
        sensitive=True,
        user=user,
        first_name=user.first_name,
        link=_external_url("accounts.confirm_email", token=token),
        hours=int(current_app.config["CONFIRM_TOKEN_MAX_AGE"].total_seconds() // 3600),
    )


def resend_confirmation(email: str) -> None:
    """Send a new confirmation link if the address has an unconfirmed account; else nothing."""
    user = find_user(email)
    if user is not None and user.confirmed_at is None and user.password_hash:
        send_confirmation(user)
        audit.record("confirm.resent", target=f"user:{user.id}")


def confirm_email(token: str) -> User | None:
    """Mark the address confirmed. None for a forged, expired or already used token."""
    user, _ = tokens.user_for_token(
        token, tokens.CONFIRM, current_app.config["CONFIRM_TOKEN_MAX_AGE"]
    )
    if user is None:
        return None
    user.confirmed_at = utcnow()
    audit.record("confirm", actor=user, target=f"user:{user.id}")
    return user


@dataclass
class LoginAttempt:
    """What checking the credentials found, before anything is written."""

    email: str
    user_id: int | None = None
    password_hash: str | None = None  # the hash the password was checked against
    ok: bool = False  # right password, active account
    new_hash: str | None = None  # the password hashed with today's parameters, if older


@dataclass
class LoginResult:
    user: User | None = None
    unconfirmed: bool = False


def check_credentials(email: str, password: str) -> LoginAttempt:
    """Read the account and verify the password; write nothing.

    argon2 takes a tenth of a second on purpose: it runs here, outside any write
    transaction, and `record_login` then writes in a short one. (On SQLite a transaction
    that reads, hashes, then writes fails with "database is locked" as soon as another
    login committed meanwhile: a crowd of parents logging in at once got 503s.)
    """
    user = find_user(email)
    attempt = LoginAttempt(email=normalize_email(email))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        return attempt
    attempt.user_id, attempt.password_hash = user.id, user.password_hash
    attempt.ok = ok and user.active
    if attempt.ok and needs_rehash(user.password_hash):
        attempt.new_hash = hash_password(password)
    return attempt


def record_login(attempt: LoginAttempt) -> LoginResult:
    """Write what a login attempt leaves: its audit event and, for a success, the login
    time (and the rehashed password). Run it in its own write transaction, after
    `check_credentials`. An unconfirmed account is told so only with the right password.

    An account whose password changed or that was closed since it was checked is a failure.
    """
    user = db.session.get(User, attempt.user_id) if attempt.user_id else None
    if (
        user is None
        or not attempt.ok
        or not user.active
        or user.password_hash != attempt.password_hash
    ):
        audit.record("login.failed", target=f"user:{user.id}" if user else None)
        return LoginResult()
    if user.confirmed_at is None:
        audit.record("login.unconfirmed", target=f"user:{user.id}")
        return LoginResult(unconfirmed=True)
    if attempt.new_hash:
        user.password_hash = attempt.new_hash
    user.last_login_at = utcnow()
    audit.record("login", actor=user, target=f"user:{user.id}")
    return LoginResult(user=user)


def request_password_reset(email: str) -> None:
    """Mail a reset link (or an activation link for an imported account) if the address is known."""
    user = find_user(email)
    if user is None or not user.active:
        audit.record("reset.unknown-email")
        return
    send_reset_link(user)
    audit.record("reset.requested", target=f"user:{user.id}")


def send_reset_link(user: User) -> None:
    """Mail the account a link to choose its password (valid RESET_TOKEN_MAX_AGE)."""
    token = tokens.make_token(user, tokens.RESET)
    activation = user.password_hash is None
    send_mail(
        "activate-account" if activation else "reset-password",
        user.email,
        "Activez votre espace" if activation else "Choisissez un nouveau mot de passe",
        "reset_password",
        sensitive=True,
        user=user,
        first_name=user.first_name,
        activation=activation,
        link=_external_url("accounts.reset_password", token=token),
        hours=int(current_app.config["RESET_TOKEN_MAX_AGE"].total_seconds() // 3600),
    )


def user_for_reset_token(token: str) -> User | None:
    """The account of a reset link, of a staff welcome link or of an imported family's
    welcome link (`welcome_link`): the same page sets the password for all three."""
    user, _ = tokens.user_for_token(token, tokens.RESET, current_app.config["RESET_TOKEN_MAX_AGE"])
    if user is None:
        user, _ = tokens.user_for_token(token, tokens.STAFF_WELCOME, tokens.staff_welcome_max_age())
    if user is None:
        user, _ = tokens.user_for_token(token, tokens.WELCOME, welcome_token_max_age())
    return user


def welcome_token_max_age() -> timedelta:
    return current_app.config.get("WELCOME_TOKEN_MAX_AGE", timedelta(days=14))


def welcome_link(user: User) -> str:
    """A link to choose the password of an imported account: dead once a password is set."""
    return _external_url("accounts.reset_password", token=tokens.make_token(user, tokens.WELCOME))


def set_password(user: User, password: str) -> None:
    """Set a new password and end every session of the account.

    Following a reset link proves the address, so it also confirms it.
    """
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    if user.confirmed_at is None:
        user.confirmed_at = utcnow()
    user.end_all_sessions()
    audit.record("password.changed", actor=user, target=f"user:{user.id}")


def request_email_change(user: User, new_email: str) -> None:
    """Mail a link to the new address; the change happens only when it is opened.

    If the new address already belongs to an account nothing is sent, but the
    answer is the same (no enumeration).
    """
    new_email = normalize_email(new_email)
    if find_user(new_email) is not None:
        audit.record("email-change.taken", actor=user, target=f"user:{user.id}")
        return
    token = tokens.make_token(user, tokens.CHANGE_EMAIL, e=new_email)
    send_mail(
        "change-email",
        new_email,
        "Confirmez votre nouvelle adresse e-mail",
        "change_email",
        sensitive=True,
        user=user,
        first_name=user.first_name,
        link=_external_url("accounts.confirm_email_change", token=token),
        hours=int(current_app.config["CONFIRM_TOKEN_MAX_AGE"].total_seconds() // 3600),
    )
    audit.record("email-change.requested", actor=user, target=f"user:{user.id}")


def confirm_email_change(token: str) -> User | None:
    """Switch the account to the new address; tell the old one. None if the link is dead."""
    user, data = tokens.user_for_token(
        token, tokens.CHANGE_EMAIL, current_app.config["CONFIRM_TOKEN_MAX_AGE"]
    )
    new_email = str((data or {}).get("e", ""))
    if user is None or not new_email or find_user(new_email) is not None:
        return None
    old_email = user.email
    user.email = new_email
    user.end_all_sessions()
    send_mail(
        "email-changed",
        old_email,
        "L'adresse de votre espace a changé",
        "email_changed",
        user=user,
        first_name=user.first_name,
        new_email=new_email,
    )
    audit.record("email-change.done", actor=user, target=f"user:{user.id}")
    return user


def create_staff(
    email: str,
    first_name: str,
    last_name: str,
    password: str | None,
    *,
    admin: bool = False,
    actor=None,
) -> User:
    """Create an agent's (or administrator's) account, confirmed, with no household."""
    user = User(
        email=normalize_email(email),
        password_hash=hash_password(password) if password else None,
        role="admin" if admin else "staff",
        first_name=first_name,
        last_name=last_name,
        confirmed_at=utcnow(),
        password_changed_at=utcnow() if password else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("staff.created", actor=actor, target=f"user:{user.id}", details=user.role)
    return user
