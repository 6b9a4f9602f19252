"""What the demo family's dashboard still lacked to show every card (issue 16).

Called by citoyens.demo.seed after the demo's last month (citoyens/demo_history.py), which
already gives the family booked days and invoices to pay. Idempotent: each part is made
only while the family never had one, so what staff or a visitor do with it stays.

- a justificatif de domicile accepted nearly three months ago: it expires within 30 days;
- a quotient familial declaration on which the services asked the family for a newer
  attestation: a request waiting for the family's answer.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from citoyens.documents.rules import add_months
from citoyens.extensions import db
from citoyens.households.models import Household

EXPIRES_IN_DAYS = 12
DECLARED_QUOTIENT = 720
QUOTIENT_QUESTION = (
    "Bonjour, l'attestation reçue date de l'an dernier. Pouvez-vous nous envoyer celle de "
    "cette année ? Elle se télécharge sur caf.fr, rubrique « Mon Compte ». Merci !"
)


def seed_dashboard(today=None) -> int:
    """Create what is missing; how many records were added."""
    from citoyens.forms import today_in_paris

    today = today or today_in_paris()
    family = db.session.scalar(select(Household).where(Household.external_ref == "DEMO-0001"))
    if family is None:
        return 0
    return _expiring_document(family, today) + _quotient_question(family, today)


def _parent(family: Household):
    from citoyens.accounts.models import User

    return db.session.scalar(
        select(User)
        .where(User.household_id == family.id, User.role == "parent")
        .order_by(User.id)
        .limit(1)
    )


def _expiring_document(family: Household, today) -> int:
    from citoyens.database import utcnow
    from citoyens.demo_history import _demo_pdf
    from citoyens.documents.models import Document, DocumentType
    from citoyens.documents.operations import upload_document
    from citoyens.documents.uploads import check_upload

    doc_type = db.session.scalar(
        select(DocumentType).where(DocumentType.code == "justificatif-domicile")
    )
    if doc_type is None or not doc_type.validity_months:
        return 0
    if db.session.scalar(
        select(Document.id)
        .where(Document.household_id == family.id, Document.type_id == doc_type.id)
        .limit(1)
    ):
        return 0
    # Sent on the day that makes it valid until EXPIRES_IN_DAYS from today.
    sent_on = add_months(today + timedelta(days=EXPIRES_IN_DAYS), -doc_type.validity_months)
    checked = check_upload(
        _demo_pdf("Facture d'électricité (justificatif de domicile)"), "facture-electricite.pdf"
    )
    document = upload_document(
        household_id=family.id,
        doc_type=doc_type,
        person=None,
        checked=checked,
        actor=_parent(family),
        today=sent_on,
        review=False,  # accepted at once below, as staff did back then
    )
    document.status = "accepted"
    document.reviewed_at = utcnow()
    db.session.flush()
    return 1


def _quotient_question(family: Household, today) -> int:
    from citoyens.accounts.models import User
    from citoyens.demo_history import _demo_pdf
    from citoyens.documents.uploads import check_upload
    from citoyens.households.quotient import KIND, declare_family_quotient
    from citoyens.requests.models import Request
    from citoyens.requests.operations import add_message

    parent = _parent(family)
    admin = db.session.scalar(select(User).where(User.role == "admin").order_by(User.id).limit(1))
    if parent is None or admin is None:
        return 0
    if db.session.scalar(
        select(Request.id).where(Request.household_id == family.id, Request.kind == KIND).limit(1)
    ):
        return 0
    checked = check_upload(
        _demo_pdf("Attestation de quotient familial (CAF)"), "attestation-caf.pdf"
    )
    request = declare_family_quotient(
        family.id, DECLARED_QUOTIENT, checked, actor=parent, today=today
    )
    add_message(request, QUOTIENT_QUESTION, actor=admin)
    return 2
