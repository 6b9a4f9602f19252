"""Demo data of the requests domain, called by citoyens.demo.seed (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.requests.models import OPEN_STATUSES, Request, RequestEvent
from citoyens.requests.operations import add_message


def seed_demo() -> int:
    """Create what is missing; return how many records were added.

    Nothing: requests come from what families do (asking for a member's removal,
    sending a document), and a made-up one would be decided by staff with real
    effects on the demo household. The households and documents demos create theirs.
    """
    return 0


FAMILY_REPLY = (
    "Bonjour, l'attestation envoyée couvre Hugo jusqu'au 31 août. "
    "Faut-il aussi vous envoyer celle de Léa, ou une seule suffit pour le foyer ?"
)


def seed_family_reply() -> int:
    """The demo family has answered on its document under review (the staff home's
    « Réponses des familles »): once, while the request is open and has no reply yet."""
    parent = db.session.scalar(
        select(User)
        .join(Household, Household.id == User.household_id)
        .where(Household.external_ref == "DEMO-0001", User.role == "parent")
        .order_by(User.id)
        .limit(1)
    )
    if parent is None:
        return 0
    request = db.session.scalar(
        select(Request)
        .where(
            Request.household_id == parent.household_id,
            Request.kind == "document_review",
            Request.status.in_(OPEN_STATUSES),
        )
        .order_by(Request.id)
        .limit(1)
    )
    if request is None or db.session.scalar(
        select(RequestEvent.id).where(
            RequestEvent.request_id == request.id, RequestEvent.kind == "message"
        )
    ):
        return 0
    add_message(request, FAMILY_REPLY, actor=parent)
    return 1
