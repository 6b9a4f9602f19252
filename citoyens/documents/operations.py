"""Document verbs: upload, review, open; document types. Each flushes and audits; the
caller commits (and, if its commit fails, calls `discard_file` for a new upload).

Reviewing goes through the generic request: every upload opens a
"document_review" request the family follows in "Mes demandes", and the
decision handler registered below turns the request's acceptance or refusal
into the document's status, whichever page staff decided from.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.models import Document, DocumentType
from citoyens.documents.rules import today_in_paris, validity_end
from citoyens.documents.storage import get_storage, new_key
from citoyens.documents.uploads import CheckedFile
from citoyens.extensions import db
from citoyens.households.models import Household, Person
from citoyens.requests.models import OPEN_STATUSES, Request
from citoyens.requests.operations import (
    RequestError,
    change_status,
    notify_family,
    on_decision,
    open_request,
)

REVIEW_KIND = "document_review"

log = logging.getLogger("citoyens.documents")


class DocumentError(ValueError):
    """A document action that cannot be done; the message is French."""


def review_title(doc_type: DocumentType, person: Person | None) -> str:
    if person is None:
        return f"Vérification : {doc_type.label}"
    return f"Vérification : {doc_type.label} — {person.full_name}"


# --- Upload ---------------------------------------------------------------------------------


def upload_document(
    *,
    household_id: int,
    doc_type: DocumentType,
    person: Person | None,
    checked: CheckedFile,
    actor,
    today=None,
    review: bool = True,
    activity_day_id: int | None = None,
) -> Document:
    """Store the file, make it the current document of its type for the person, open its review.

    `review=False`: the caller opens the request the document belongs to (a quotient
    familial declaration carries its attestation).
    `activity_day_id`: a certificate of absence for that day; it replaces only the one sent
    for the same day, not the child's certificates of other days.

    The household row is locked first (PostgreSQL; SQLite serialises writers), so two
    uploads at the same time replace one another in turn and one current document remains.
    Then requests before documents: the order a decision takes too, so neither waits on
    the other in a circle.
    """
    if (doc_type.scope == "child") != (person is not None):
        raise DocumentError("Ce document ne concerne pas cette personne.")
    today = today or today_in_paris()
    lock_household(household_id)
    now = utcnow()
    previous = list(
        db.session.scalars(
            select(Document).where(
                Document.household_id == household_id,
                Document.type_id == doc_type.id,
                Document.person_id == person.id if person else Document.person_id.is_(None),
                Document.activity_day_id == activity_day_id
                if activity_day_id
                else Document.activity_day_id.is_(None),
                Document.replaced_at.is_(None),
            )
        )
    )
    _cancel_reviews([old.id for old in previous], actor)
    for old in previous:
        old.replaced_at = now

    storage = get_storage()
    key = new_key(checked.extension)
    document = Document(
        household_id=household_id,
        person_id=person.id if person else None,
        type_id=doc_type.id,
        activity_day_id=activity_day_id,
        status="pending",
        storage_key=key,
        original_name=checked.original_name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by_id=getattr(actor, "id", None),
        uploaded_at=now,
        valid_until=validity_end(doc_type, today),
    )
    storage.save(key, checked.data)
    try:
        db.session.add(document)
        db.session.flush()
        if review:
            open_request(
                REVIEW_KIND,
                household_id,
                review_title(doc_type, person),
                actor=actor,
                person_id=document.person_id,
                document_id=document.id,
            )
        audit.record(
            "document.uploaded",
            actor=actor,
            target=f"document:{document.id}",
            details=f"{doc_type.code} {checked.content_type} {checked.size}",
        )
    except BaseException:
        storage.delete(key)
        raise
    return document


def lock_household(household_id: int) -> None:
    """Serialise the household's document changes (a row lock; a no-op on SQLite)."""
    db.session.execute(
        select(Household.id).where(Household.id == household_id).with_for_update()
    ).one()


def discard_file(document: Document) -> None:
    """Remove the stored file of an upload whose transaction did not commit."""
    get_storage().delete(document.storage_key)


def _cancel_reviews(document_ids: list[int], actor) -> None:
    """A replaced document is no longer reviewed: its open request is cancelled."""
    if not document_ids:
        return
    requests = db.session.scalars(
        select(Request).where(
            Request.kind == REVIEW_KIND,
            Request.document_id.in_(document_ids),
            Request.status.in_(OPEN_STATUSES),
        )
    )
    for request in requests:
        try:
            change_status(
                request,
                "cancelled",
                actor=actor,
                message="Un nouveau fichier a été envoyé : il sera vérifié à la place de celui-ci.",
            )
        except RequestError:  # decided by an agent a moment ago: nothing left to cancel
            continue


# --- Review ---------------------------------------------------------------------------------


def review_request(document: Document) -> Request | None:
    """The open request deciding a document, if any: its review, or the request it came
    with (a quotient familial declaration), so either page decides both alike."""
    return db.session.scalar(
        select(Request)
        .where(
            Request.document_id == document.id,
            Request.status.in_(OPEN_STATUSES),
        )
        .order_by(Request.id.desc())
        .limit(1)
    )


def review_document(document: Document, *, accepted: bool, actor, reason: str | None = None):
    """Staff accept or refuse a document through its request; the family gets an e-mail.

    Raises DocumentError or RequestError (French messages); the caller rolls back then.
    """
    reason = (reason or "").strip() or None
    if not accepted and not reason:
        raise DocumentError("Indiquez le motif du refus : il sera envoyé à la famille.")
    if document.replaced_at is not None:
        raise DocumentError("Ce document a été remplacé par un envoi plus récent.")
    if document.status != "pending":
        raise DocumentError("Ce document a déjà été vérifié.")
    lock_household(document.household_id)  # an upload replacing it now waits, or went first
    request = review_request(document)
    if request is None:  # e.g. the family cancelled its request: open one to tell the decision
        request = open_request(
            REVIEW_KIND,
            document.household_id,
            review_title(document.type, document.person),
            actor=actor,
            person_id=document.person_id,
            document_id=document.id,
        )
    event = change_status(
        request, "accepted" if accepted else "refused", actor=actor, message=reason
    )
    notify_family(request, event)
    return request


@on_decision(REVIEW_KIND)
def decide_document(request: Request, accepted: bool, actor) -> None:
    """Accepting or refusing a review request accepts or refuses its document."""
    if request.document_id is None:
        return
    reason = decision_reason(request)
    if not accepted and not reason:
        raise RequestError("Indiquez le motif du refus : il sera envoyé à la famille.")
    if not record_review(request.document_id, accepted=accepted, actor=actor, reason=reason):
        raise RequestError(
            "Ce document a été remplacé ou déjà vérifié entre-temps. "
            "Rechargez la page pour voir le document actuel."
        )


def decision_reason(request: Request) -> str | None:
    """The message of the status change just appended (change_status puts it last)."""
    last = request.events[-1] if request.events else None
    return last.body if last is not None and last.kind == "status" else None


def record_review(document_id: int, *, accepted: bool, actor, reason: str | None) -> bool:
    """Mark a pending, current document accepted or refused; False (and nothing changed)
    when it was replaced or reviewed meanwhile."""
    values = {
        "status": "accepted" if accepted else "refused",
        "reviewed_by_id": getattr(actor, "id", None),
        "reviewed_at": utcnow(),
        "refusal_reason": None if accepted else (reason or "")[:500] or None,
    }
    # Guarded like the request: a document replaced or reviewed meanwhile is left alone.
    result = db.session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.status == "pending",
            Document.replaced_at.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    document = db.session.get(Document, document_id)
    for key, value in values.items():
        set_committed_value(document, key, value)
    audit.record(
        "document.accepted" if accepted else "document.refused",
        actor=actor,
        target=f"document:{document_id}",
    )
    return True


# --- Opening a file -------------------------------------------------------------------------


def open_file(document: Document, *, actor) -> BinaryIO:
    """The stored file, for download or preview. Opening a health document is logged.

    Raises FileNotFoundError if the store lost the file (the caller answers 404).
    """
    try:
        stream = get_storage().open(document.storage_key)
    except FileNotFoundError:
        log.error("document:%s has no file in the store (%s)", document.id, document.storage_key)
        raise
    if document.type.health:
        audit.record("document.health-opened", actor=actor, target=f"document:{document.id}")
    return stream


# --- Document types (staff) -----------------------------------------------------------------

# The CAF/MSA attestation a quotient familial declaration carries (households.quotient).
QUOTIENT_TYPE = {
    "code": "quotient-familial",
    "label": "Attestation de quotient familial (CAF ou MSA)",
    "description": "L'attestation de la CAF ou de la MSA indiquant votre quotient familial.",
    "scope": "household",
    "validity_months": 12,
    "until_school_year_end": False,
    "health": False,
}


def quotient_attestation_type() -> DocumentType:
    """The type of the QF attestation, made on first use if the commune has none yet."""
    query = select(DocumentType).where(DocumentType.code == QUOTIENT_TYPE["code"])
    found = db.session.scalar(query)
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            return create_type(actor=None, **QUOTIENT_TYPE)
    except IntegrityError:  # made by a concurrent first declaration
        return db.session.scalar(query)


TYPE_FIELDS = (
    "code",
    "label",
    "description",
    "scope",
    "validity_months",
    "until_school_year_end",
    "health",
)


def create_type(*, actor, **values) -> DocumentType:
    doc_type = DocumentType(active=True, **{k: values[k] for k in TYPE_FIELDS})
    db.session.add(doc_type)
    db.session.flush()
    audit.record("document-type.created", actor=actor, target=f"document-type:{doc_type.id}")
    return doc_type


def update_type(doc_type: DocumentType, *, actor, **values) -> DocumentType:
    """Change a type. Documents already uploaded keep the validity end they were given."""
    changed = [k for k in TYPE_FIELDS if getattr(doc_type, k) != values[k]]
    for key in changed:
        setattr(doc_type, key, values[key])
    db.session.flush()
    audit.record(
        "document-type.updated",
        actor=actor,
        target=f"document-type:{doc_type.id}",
        details=",".join(changed) or None,
    )
    return doc_type


def set_type_active(doc_type: DocumentType, active: bool, *, actor) -> None:
    """A deactivated type is no longer asked of families; its documents stay for staff."""
    doc_type.active = active
    db.session.flush()
    audit.record(
        "document-type.activated" if active else "document-type.deactivated",
        actor=actor,
        target=f"document-type:{doc_type.id}",
    )
