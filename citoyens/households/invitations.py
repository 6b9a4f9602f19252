"""Invitation of a second responsible adult: the link, sending it, accepting it.

Callable from views, CLI and tests (no request parsing); the caller commits.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update

from citoyens import audit
from citoyens.core import settings as commune_settings
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households import rules
from citoyens.households.models import Invitation
from citoyens.households.operations import (
    HouseholdError,
    _external_url,
    add_member,
    record_change,
)
from citoyens.mail import send_mail

INVITATION_SALT = "citoyens:invitation"
INVALID_INVITATION = (
    "Ce lien d'invitation n'est plus valable : il a déjà servi, il a expiré, ou la personne "
    "invitée ne fait plus partie du foyer. Demandez une nouvelle invitation."
)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITATION_SALT)


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps({"i": invitation.id})


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation behind a genuine, fresh, unused link; None otherwise."""
    max_age = int(rules.invitation_max_age().total_seconds())
    try:
        data = _serializer().loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int):
        return None
    invitation = db.session.get(Invitation, data["i"])
    if invitation is None or invitation.accepted_at is not None or invitation.person_id is None:
        return None
    if rules.active_membership(invitation.household_id, invitation.person_id) is None:
        return None
    return invitation


def invite_adult(
    household_id: int,
    email: str,
    *,
    actor,
    person_id: int | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> Invitation:
    """Invite an adult to create their own account on this household, by a link sent by mail.

    `person_id` names an adult already in the household without an account; otherwise
    the adult is added from `first_name` and `last_name`.

    An address that already has an account is answered the same (no enumeration): the
    invitation is recorded, but its owner gets no link (an invitation cannot create a
    second account), only a message saying to ask the town hall to attach the account.
    """
    from citoyens.accounts.operations import find_user, normalize_email

    email = normalize_email(email)
    existing = find_user(email)
    pending = rules.open_invitations(household_id)
    if any(invitation.email == email for invitation in pending):
        raise HouseholdError("Une invitation est déjà en attente pour cette adresse.")
    if len(pending) >= rules.MAX_OPEN_INVITATIONS:
        raise HouseholdError(
            f"Votre foyer a déjà {rules.MAX_OPEN_INVITATIONS} invitations en attente : "
            "attendez qu'elles soient acceptées ou qu'elles expirent."
        )
    if person_id is not None:
        allowed = {p.id: p for p in rules.adults_without_account(household_id)}
        person = allowed.get(person_id)
        if person is None:
            raise HouseholdError("Choisissez un adulte de votre foyer qui n'a pas encore d'espace.")
        if any(invitation.person_id == person_id for invitation in pending):
            raise HouseholdError(
                f"{person.full_name} a déjà une invitation en attente : "
                "elle reste valable jusqu'à son expiration."
            )
        if not person.email:
            person.email = email
    else:
        person = add_member(
            household_id,
            "adult",
            {"first_name": first_name, "last_name": last_name, "email": email},
            actor=actor,
        ).person
    invitation = Invitation(
        household_id=household_id,
        person_id=person.id,
        email=email,
        invited_by_id=getattr(actor, "id", None),
    )
    db.session.add(invitation)
    db.session.flush()
    record_change(household_id, "invited", actor=actor, person_id=person.id)
    if existing is not None:
        send_mail(
            "invitation-account-exists",
            email,
            f"Invitation à l'espace famille de {commune_settings.current().name}",
            "invitation_account_exists",
            first_name=person.first_name,
            inviter=getattr(actor, "full_name", ""),
            login_url=_external_url("accounts.login"),
        )
        audit.record("invitation.existing-account", actor=actor, target=f"user:{existing.id}")
        return invitation
    send_mail(
        "invitation",
        email,
        f"Invitation à l'espace famille de {commune_settings.current().name}",
        "invitation_household",
        sensitive=True,
        first_name=person.first_name,
        inviter=getattr(actor, "full_name", ""),
        link=_external_url("households.accept_invitation", token=invitation_token(invitation)),
        days=rules.invitation_max_age().days,
    )
    audit.record("invitation.sent", actor=actor, target=f"invitation:{invitation.id}")
    return invitation


def accept_invitation(invitation: Invitation, password: str):
    """Create the invited adult's account (confirmed: the link proves the address).

    Single use: the invitation is claimed by a conditional UPDATE, so two clicks at
    once create one account.
    """
    from citoyens.accounts.models import User
    from citoyens.accounts.operations import find_user
    from citoyens.accounts.passwords import hash_password

    membership = rules.active_membership(invitation.household_id, invitation.person_id or 0)
    if membership is None or membership.role != "adult" or find_user(invitation.email) is not None:
        raise HouseholdError(INVALID_INVITATION)
    # Two invitations for one person (two addresses): the first accepted wins.
    if db.session.scalar(select(User.id).where(User.person_id == membership.person_id)):
        raise HouseholdError(INVALID_INVITATION)
    claimed = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise HouseholdError(INVALID_INVITATION)
    db.session.refresh(invitation)
    person = membership.person
    person.email = person.email or invitation.email
    user = User(
        email=invitation.email,
        password_hash=hash_password(password),
        role="parent",
        first_name=person.first_name,
        last_name=person.last_name,
        household_id=invitation.household_id,
        person_id=person.id,
        confirmed_at=utcnow(),
        password_changed_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    record_change(invitation.household_id, "joined", actor=user, person_id=person.id)
    audit.record("invitation.accepted", actor=user, target=f"invitation:{invitation.id}")
    return user
