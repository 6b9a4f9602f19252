"""Document verbs: upload, review, open; document types. Each flushes and audits; the
caller commits (and, if its commit fails, calls `discard_file` for a new upload).

Reviewing goes through the generic request, one per batch of documents: the documents a
family sends outside an enrolment wait in the household's one open "documents to check"
request; when an enrolment is sent, the documents it requires move to that enrolment's
own one (`gather_for_enrolment`). Each document is accepted or refused on its own, with
its reason; the request closes once every document in it is decided. The family hears of
the decisions grouped, a few minutes after the last one (`citoyens.documents.notices`).
Accepting or refusing the whole request (the generic request page) decides every
document still pending in it, through the decision handler registered below.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.models import Document, DocumentType
from citoyens.documents.rules import today_in_paris, validity_end
from citoyens.documents.storage import get_storage, new_key
from citoyens.documents.uploads import CheckedFile
from citoyens.extensions import db
from citoyens.households.models import Household, Person
from citoyens.requests.models import OPEN_STATUSES, Request, RequestEvent
from citoyens.requests.operations import (
    RequestError,
    change_status,
    notify_family,
    on_decision,
    open_request,
)

REVIEW_KIND = "document_review"
REVIEW_TITLE = "Documents à vérifier"
# The statuses the partial unique index `uq_requests_open_document_review` covers.
REVIEW_OPEN = ("sent", "in_review")

log = logging.getLogger("citoyens.documents")


class DocumentError(ValueError):
    """A document action that cannot be done; the message is French."""


def review_title(doc_type: DocumentType, person: Person | None) -> str:
    """How one document is named in a review's list and in the family's e-mail."""
    if person is None:
        return doc_type.label
    return f"{doc_type.label} — {person.full_name}"


# --- The review requests --------------------------------------------------------------------


def review_for(household_id: int, *, actor, for_request: Request | None = None) -> Request:
    """The open "documents to check" request of the household (`for_request` None) or of
    an enrolment's request, opened if there is none.

    The partial unique index decides between two uploads at the same instant: the one
    that loses its insert takes the request the other made.
    """
    query = (
        select(Request)
        .where(
            Request.kind == REVIEW_KIND,
            Request.household_id == household_id,
            Request.status.in_(REVIEW_OPEN),
            Request.for_request_id == for_request.id
            if for_request is not None
            else Request.for_request_id.is_(None),
        )
        .order_by(Request.id)
        .limit(1)
    )
    found = db.session.scalar(query)
    if found is not None:
        return found
    title = REVIEW_TITLE if for_request is None else f"{REVIEW_TITLE} — {for_request.title}"
    try:
        with db.session.begin_nested():
            return open_request(
                REVIEW_KIND,
                household_id,
                title,
                actor=actor,
                service_id=for_request.service_id if for_request is not None else None,
                person_id=for_request.person_id if for_request is not None else None,
                for_request_id=for_request.id if for_request is not None else None,
            )
    except IntegrityError:  # opened by a concurrent upload a moment ago
        found = db.session.scalar(query)
        if found is None:
            raise
        return found


def request_documents(request_id: int) -> list[Document]:
    """The documents reviewed in a request, current ones first, in the order sent."""
    return list(
        db.session.scalars(
            select(Document)
            .options(joinedload(Document.type), joinedload(Document.person))
            .where(Document.review_request_id == request_id)
            .order_by(Document.replaced_at.is_not(None), Document.id)
        )
    )


def _pending_in(request: Request) -> list[Document]:
    """Current documents of the request still waiting for a decision (a request opened
    before grouped reviews names its one document in `document_id`)."""
    owned = Document.review_request_id == request.id
    if request.document_id is not None:
        owned = or_(owned, Document.id == request.document_id)
    return list(
        db.session.scalars(
            select(Document)
            .where(owned, Document.status == "pending", Document.replaced_at.is_(None))
            .order_by(Document.id)
        )
    )


def close_if_decided(request: Request, *, actor) -> None:
    """Close the review once every current document in it is decided: accepted when all
    are, refused when one is (the family reads each reason in the grouped e-mail)."""
    if not request.is_open or request.kind != REVIEW_KIND or _pending_in(request):
        return
    documents = [d for d in request_documents(request.id) if d.replaced_at is None]
    if not documents:
        return
    lines = [
        f"{review_title(d.type, d.person)} : "
        + ("accepté" if d.status == "accepted" else f"refusé ({d.refusal_reason or ''})")
        for d in documents
    ]
    refused = any(d.status == "refused" for d in documents)
    change_status(
        request, "refused" if refused else "accepted", actor=actor, message="\n".join(lines)
    )


def _retire_if_empty(request: Request, *, actor, moved_to: Request) -> None:
    """The household's review lost its documents to an enrolment's: an untouched one
    goes (the family never needed it), one with a history is cancelled with why."""
    if not request.is_open or _pending_in(request):
        return
    untouched = (
        db.session.scalar(
            select(func.count(RequestEvent.id)).where(
                RequestEvent.request_id == request.id, RequestEvent.kind != "created"
            )
        )
        == 0
    )
    decided = db.session.scalar(
        select(func.count(Document.id)).where(Document.review_request_id == request.id)
    )
    if untouched and not decided:
        audit.record(
            "request.merged",
            actor=actor,
            target=f"request:{request.id}",
            details=f"request:{moved_to.id}",
        )
        db.session.delete(request)
        db.session.flush()
        return
    change_status(
        request,
        "cancelled",
        actor=actor,
        message=f"Les documents sont vérifiés avec la demande « {moved_to.title} ».",
    )


def gather_for_enrolment(
    enrolment_request: Request, type_ids: list[int], child_id: int, *, actor
) -> Request | None:
    """Move the documents an enrolment requires, still waiting in the household's review,
    to the enrolment's own one (opened then): staff check them together, with it."""
    if not type_ids:
        return None
    household_id = enrolment_request.household_id
    pool = db.session.scalar(
        select(Request.id).where(
            Request.kind == REVIEW_KIND,
            Request.household_id == household_id,
            Request.status.in_(REVIEW_OPEN),
            Request.for_request_id.is_(None),
        )
    )
    if pool is None:
        return None
    documents = list(
        db.session.scalars(
            select(Document)
            .join(DocumentType, DocumentType.id == Document.type_id)
            .where(
                Document.household_id == household_id,
                Document.review_request_id == pool,
                Document.type_id.in_(type_ids),
                Document.status == "pending",
                Document.replaced_at.is_(None),
                Document.activity_day_id.is_(None),
                or_(
                    (DocumentType.scope == "household") & Document.person_id.is_(None),
                    (DocumentType.scope == "child") & (Document.person_id == child_id),
                ),
            )
        )
    )
    if not documents:
        return None
    review = review_for(household_id, actor=actor, for_request=enrolment_request)
    for document in documents:
        document.review_request_id = review.id
    db.session.flush()
    _retire_if_empty(db.session.get(Request, pool), actor=actor, moved_to=review)
    return review


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
    """Store the file, make it the current document of its type for the person, put it
    in a review.

    It takes the place of the document it replaces in that one's open review (an
    enrolment's stays the enrolment's), else joins the household's open review.
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
    carried = _open_review_of(previous) if review else None
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
            request = carried or review_for(household_id, actor=actor)
            document.review_request_id = request.id
            request.updated_at = now
            db.session.flush()
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


def _open_review_of(previous: list[Document]) -> Request | None:
    """The open review a replaced, still pending document was waiting in."""
    ids = [d.review_request_id for d in previous if d.status == "pending" and d.review_request_id]
    if not ids:
        return None
    return db.session.scalar(
        select(Request)
        .where(Request.id.in_(ids), Request.kind == REVIEW_KIND, Request.status.in_(REVIEW_OPEN))
        .order_by(Request.id)
        .limit(1)
    )


def lock_household(household_id: int) -> None:
    """Serialise the household's document changes (a row lock; a no-op on SQLite)."""
    db.session.execute(
        select(Household.id).where(Household.id == household_id).with_for_update()
    ).one()


def discard_file(document: Document) -> None:
    """Remove the stored file of an upload whose transaction did not commit."""
    get_storage().delete(document.storage_key)


# --- Review ---------------------------------------------------------------------------------


def review_request(document: Document) -> Request | None:
    """The open request deciding a document, if any: its review, or the request it came
    with (a quotient familial declaration), so either page decides both alike."""
    if document.review_request_id is not None:
        request = db.session.get(Request, document.review_request_id)
        if request is not None and request.is_open:
            return request
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
    """Staff accept or refuse one document; the family is told with the household's other
    decisions of these minutes (one e-mail). The review closes when nothing is left in it.

    Raises DocumentError or RequestError (French messages); the caller rolls back then.
    """
    from citoyens.documents.notices import queue_notice

    reason = (reason or "").strip() or None
    if not accepted and not reason:
        raise DocumentError("Indiquez le motif du refus : il sera envoyé à la famille.")
    if document.replaced_at is not None:
        raise DocumentError("Ce document a été remplacé par un envoi plus récent.")
    if document.status != "pending":
        raise DocumentError("Ce document a déjà été vérifié.")
    lock_household(document.household_id)  # an upload replacing it now waits, or went first
    request = review_request(document)
    if request is not None and request.kind != REVIEW_KIND:
        # Its own request decides it (a quotient familial declaration and its attestation).
        event = change_status(
            request, "accepted" if accepted else "refused", actor=actor, message=reason
        )
        notify_family(request, event)
        return request
    if request is None:  # its review was closed meanwhile: the household's takes it
        request = review_for(document.household_id, actor=actor)
        document.review_request_id = request.id
        db.session.flush()
    if not record_review(document.id, accepted=accepted, actor=actor, reason=reason):
        raise DocumentError(
            "Ce document a été remplacé ou déjà vérifié entre-temps. "
            "Rechargez la page pour voir le document actuel."
        )
    queue_notice(document, accepted=accepted, reason=reason)
    request.updated_at = utcnow()
    close_if_decided(request, actor=actor)
    return request


@on_decision(REVIEW_KIND)
def decide_document(request: Request, accepted: bool, actor) -> None:
    """Accepting or refusing a whole review request decides every document still pending
    in it, with the same reason (a refusal needs one)."""
    from citoyens.documents.notices import queue_notice

    pending = _pending_in(request)
    if not pending:
        return
    reason = decision_reason(request)
    if not accepted and not reason:
        raise RequestError("Indiquez le motif du refus : il sera envoyé à la famille.")
    for document in pending:
        if not record_review(document.id, accepted=accepted, actor=actor, reason=reason):
            raise RequestError(
                "Ce document a été remplacé ou déjà vérifié entre-temps. "
                "Rechargez la page pour voir le document actuel."
            )
        queue_notice(document, accepted=accepted, reason=reason)


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
