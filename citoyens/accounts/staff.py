"""Staff accounts managed by administrators (DOMAIN.md "Staff and scope").

Plain functions for the views, the CLI and the tests. Each one runs inside the caller's
`write_transaction`: it flushes, records an audit event with its actor, and sends its
e-mail only after the commit (`after_commit`). A refused change raises `StaffAccountError`
(a French message, and the form field it belongs to).

Rules:
- an address already used by any account (a parent's included) is refused: a parent
  account never becomes staff silently;
- an agent works for at least one service (administrators see them all);
- an administrator neither removes their own admin right nor deactivates themselves, and
  the last active administrator stays one: the active administrators' rows are locked
  (FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE serialises writers on SQLite) before counting;
- deactivating ends every session and remember-me cookie of the account at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select

from citoyens import audit
from citoyens.accounts import tokens
from citoyens.accounts.models import User
from citoyens.accounts.operations import create_staff, find_user, send_reset_link
from citoyens.extensions import db
from citoyens.mail import absolute_url, send_mail
from citoyens.services.models import Service, StaffService
from citoyens.transactions import after_commit


class StaffAccountError(ValueError):
    """A refused change: `message` is French, `field` the form field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


PARENT_EMAIL = (
    "Cette adresse est celle d'un compte famille : un agent doit avoir une autre adresse."
)
STAFF_EMAIL = "Un compte agent existe déjà avec cette adresse."
NO_SERVICE = "Choisissez au moins un service pour un agent (un administrateur les voit tous)."
UNKNOWN_SERVICE = "Choisissez des services de la liste."
OWN_ADMIN_RIGHT = "Vous ne pouvez pas retirer vos propres droits d'administrateur."
OWN_ACCOUNT = "Vous ne pouvez pas désactiver votre propre compte."
LAST_ADMIN = "C'est le dernier administrateur actif : nommez d'abord un autre administrateur."
INACTIVE = "Ce compte est désactivé : réactivez-le d'abord."


@dataclass
class StaffRow:
    user: User
    services: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """Invited, password never set."""
        return self.user.password_hash is None


def staff_accounts() -> list[StaffRow]:
    """Every staff account, administrators first, with its services' names. Two queries."""
    users = db.session.scalars(
        select(User)
        .where(User.role.in_(("staff", "admin")))
        .order_by(User.active.desc(), User.role, User.last_name, User.first_name, User.id)
    ).all()
    rows = {user.id: StaffRow(user) for user in users}
    links = db.session.execute(
        select(StaffService.user_id, Service.name)
        .join(Service, Service.id == StaffService.service_id)
        .join(User, User.id == StaffService.user_id)
        .where(User.role.in_(("staff", "admin")))
        .order_by(Service.name)
    )
    for user_id, name in links:
        rows[user_id].services.append(name)
    return list(rows.values())


def service_ids_of(user_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(StaffService.service_id)
            .where(StaffService.user_id == user_id)
            .order_by(StaffService.service_id)
        )
    )


def get_staff_account(user_id: int) -> User | None:
    """A staff or administrator account by id; None for a parent's or a missing one."""
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_staff else None


# --- Verbs ------------------------------------------------------------------------------------


def create_staff_account(
    *,
    actor,
    email: str,
    first_name: str,
    last_name: str,
    service_ids: list[int],
    admin: bool,
) -> User:
    """A confirmed account with no usable password, attached to its services; a welcome
    e-mail with a link to set the password leaves after the commit."""
    existing = find_user(email)
    if existing is not None:
        raise StaffAccountError(STAFF_EMAIL if existing.is_staff else PARENT_EMAIL, "email")
    service_ids = _checked_services(service_ids, admin)
    user = create_staff(
        email, first_name.strip(), last_name.strip(), None, admin=admin, actor=actor
    )
    db.session.add_all(StaffService(user_id=user.id, service_id=sid) for sid in service_ids)
    db.session.flush()
    if service_ids:
        audit.record(
            "staff.services",
            actor=actor,
            target=f"user:{user.id}",
            details="+" + ",".join(map(str, service_ids)),
        )
    _welcome_after_commit(user.id, actor.full_name)
    return user


def update_staff_account(
    user_id: int,
    *,
    actor,
    first_name: str,
    last_name: str,
    service_ids: list[int],
    admin: bool,
) -> list[str]:
    """Change the name, services and admin right. Returns what changed (nothing: [])."""
    _lock_active_admins()
    user = _locked_staff(user_id)
    if user.is_admin and not admin:
        if user.id == actor.id:
            raise StaffAccountError(OWN_ADMIN_RIGHT, "admin")
        _ensure_another_admin(user)
    wanted = set(_checked_services(service_ids, admin))
    current = set(service_ids_of(user.id))
    changed = []
    first_name, last_name = first_name.strip(), last_name.strip()
    if (user.first_name, user.last_name) != (first_name, last_name):
        user.first_name, user.last_name = first_name, last_name
        changed.append("nom")
    role = "admin" if admin else "staff"
    if user.role != role:
        changed.append(f"rôle {user.role}→{role}")
        user.role = role
    if wanted != current:
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if removed:
            db.session.execute(
                delete(StaffService).where(
                    StaffService.user_id == user.id, StaffService.service_id.in_(removed)
                )
            )
        db.session.add_all(StaffService(user_id=user.id, service_id=sid) for sid in added)
        changed.append(
            "services " + " ".join([f"+{sid}" for sid in added] + [f"-{sid}" for sid in removed])
        )
    if changed:
        db.session.flush()
        audit.record(
            "staff.updated", actor=actor, target=f"user:{user.id}", details="; ".join(changed)
        )
    return changed


def set_staff_active(user_id: int, active: bool, *, actor) -> bool:
    """Deactivate (every session ends now, login refused) or reactivate an account.

    A reactivated account that never set its password gets a new link. Returns whether
    anything changed."""
    _lock_active_admins()
    user = _locked_staff(user_id)
    if user.active == active:
        return False
    if not active:
        if user.id == actor.id:
            raise StaffAccountError(OWN_ACCOUNT)
        if user.is_admin:
            _ensure_another_admin(user)
    user.active = active
    user.end_all_sessions()
    db.session.flush()
    audit.record(
        "staff.reactivated" if active else "staff.deactivated",
        actor=actor,
        target=f"user:{user.id}",
    )
    if active and user.password_hash is None:
        _welcome_after_commit(user.id, actor.full_name)
    return True


def send_password_link(user_id: int, *, actor) -> str:
    """Send the account a link to set its password: the welcome link (7 days) when it has
    never set one, else the usual reset link. Returns "welcome" or "reset"."""
    user = get_staff_account(user_id)
    if user is None:
        raise LookupError(user_id)
    if not user.active:
        raise StaffAccountError(INACTIVE)
    kind = "welcome" if user.password_hash is None else "reset"
    audit.record("staff.link-sent", actor=actor, target=f"user:{user.id}", details=kind)
    if kind == "welcome":
        _welcome_after_commit(user.id, actor.full_name)
    else:
        after_commit(lambda: send_reset_link(db.session.get(User, user_id)))
    return kind


# --- Pieces -----------------------------------------------------------------------------------


def send_staff_welcome(user: User, invited_by: str) -> None:
    """The staff welcome e-mail: « Votre compte agent… définissez votre mot de passe »."""
    max_age = tokens.staff_welcome_max_age()
    send_mail(
        "staff-welcome",
        user.email,
        "Votre compte agent : définissez votre mot de passe",
        "staff_welcome",
        sensitive=True,
        user=user,
        first_name=user.first_name,
        invited_by=invited_by,
        admin=user.is_admin,
        link=absolute_url(
            "accounts.reset_password", token=tokens.make_token(user, tokens.STAFF_WELCOME)
        ),
        days=max(1, int(max_age.total_seconds() // 86400)),
        login_url=absolute_url("accounts.login"),
    )


def _welcome_after_commit(user_id: int, invited_by: str) -> None:
    def send() -> None:
        user = db.session.get(User, user_id)
        if user is not None and user.active:
            send_staff_welcome(user, invited_by)

    after_commit(send)


def _checked_services(service_ids: list[int], admin: bool) -> list[int]:
    wanted = sorted(set(service_ids))
    if wanted:
        known = set(db.session.scalars(select(Service.id).where(Service.id.in_(wanted))))
        if known != set(wanted):
            raise StaffAccountError(UNKNOWN_SERVICE, "service_ids")
    elif not admin:
        raise StaffAccountError(NO_SERVICE, "service_ids")
    return wanted


def _lock_active_admins() -> list[int]:
    """Lock the active administrators' rows, always in id order (no deadlock between two
    administrators changing each other): what `_ensure_another_admin` counts cannot change
    before the commit."""
    return list(
        db.session.scalars(
            select(User.id)
            .where(User.role == "admin", User.active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
    )


def _ensure_another_admin(user: User) -> None:
    if not [admin_id for admin_id in _lock_active_admins() if admin_id != user.id]:
        raise StaffAccountError(LAST_ADMIN, "admin")


def _locked_staff(user_id: int) -> User:
    user = db.session.scalar(
        select(User)
        .where(User.id == user_id, User.role.in_(("staff", "admin")))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise LookupError(user_id)
    return user
