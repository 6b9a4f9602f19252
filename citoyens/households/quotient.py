"""Quotient familial: a family declares it with its CAF/MSA attestation, staff verify it.

`Household.family_quotient` is the QF staff accepted: the only one invoices and the
planner read. A family's figure is a request of kind "family_quotient" carrying the
attestation (its document) and the figure (a QuotientDeclaration row); accepting the
request copies the figure to the household, refusing leaves the household as it was.
Until then the last accepted QF applies, or the top band when none was ever accepted.
At most one declaration waits per household (a partial unique index on requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.models import Document
from citoyens.documents.operations import (
    decision_reason,
    discard_file,
    quotient_attestation_type,
    record_review,
    upload_document,
)
from citoyens.documents.uploads import CheckedFile
from citoyens.extensions import db
from citoyens.households.models import Household, QuotientDeclaration
from citoyens.households.operations import record_change
from citoyens.requests.models import OPEN_STATUSES, Request
from citoyens.requests.operations import (
    RequestError,
    on_decision,
    on_status_change,
    open_request,
)

KIND = "family_quotient"
MAX_QUOTIENT = 99_999
ALREADY_DECLARED = (
    "Une déclaration de quotient familial est déjà en cours de vérification. "
    "Attendez la réponse des services, ou annulez-la dans « Demandes » pour en faire une autre."
)


class QuotientError(ValueError):
    """A declaration the rules refuse; the message is French. The caller rolls back."""


def declaration_title(value: int) -> str:
    return f"Quotient familial déclaré : {value} €"


# --- What applies -----------------------------------------------------------------------------


@dataclass
class QuotientStatus:
    """The QF that prices invoices, the declaration waiting for staff, the band that applies."""

    accepted: int | None
    declared: int | None = None
    request_id: int | None = None
    declared_at: datetime | None = None
    band_label: str | None = None  # this school year's band of the accepted QF

    @property
    def pending(self) -> bool:
        return self.declared is not None

    @property
    def applied(self) -> str:
        """ "Tranche 5 (QF inconnu)", "Tranche 3 (QF 850 €)" or, without bands, the rule."""
        known = "QF inconnu" if self.accepted is None else f"QF {self.accepted} €"
        if self.band_label:
            return f"{self.band_label} ({known})"
        if self.accepted is None:
            return "le tarif le plus élevé (QF inconnu)"
        return f"le tarif de votre quotient familial ({self.accepted} €)"


def open_declaration(household_id: int) -> tuple[Request, int] | None:
    """The household's declaration waiting for staff, with the declared figure (1 query)."""
    row = db.session.execute(
        select(Request, QuotientDeclaration.family_quotient)
        .join(QuotientDeclaration, QuotientDeclaration.request_id == Request.id)
        .where(
            Request.household_id == household_id,
            Request.kind == KIND,
            Request.status.in_(OPEN_STATUSES),
        )
        .order_by(Request.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def quotient_status(
    household_id: int, today: date, household: Household | None = None
) -> QuotientStatus:
    """What the family pages say about the QF: two queries (three without `household`)."""
    from citoyens.billing.models import QfBand
    from citoyens.billing.tariffs import band_for
    from citoyens.services.models import SchoolYear

    if household is None:
        accepted = db.session.scalar(
            select(Household.family_quotient).where(Household.id == household_id)
        )
    else:
        accepted = household.family_quotient
    status = QuotientStatus(accepted=accepted)
    pending = open_declaration(household_id)
    if pending is not None:
        request, status.declared = pending
        status.request_id, status.declared_at = request.id, request.created_at
    # The bands of the school year `today` falls in (as services.rules.current_school_year).
    bands = db.session.scalars(
        select(QfBand)
        .join(SchoolYear, SchoolYear.id == QfBand.school_year_id)
        .where(
            SchoolYear.id
            == select(SchoolYear.id)
            .where(SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)
            .order_by(SchoolYear.starts_on.desc())
            .limit(1)
            .scalar_subquery()
        )
    ).all()
    band = band_for(bands, accepted)
    status.band_label = band.label if band is not None else None
    return status


# --- The family declares ----------------------------------------------------------------------


def declare_family_quotient(
    household_id: int, value: int, checked: CheckedFile, *, actor, today: date | None = None
) -> Request:
    """Store the attestation and open the declaration staff will accept or refuse.

    Nothing changes the household's QF here. Raises QuotientError (the caller rolls back).
    """
    if not 0 <= value <= MAX_QUOTIENT:
        raise QuotientError("Le quotient familial doit être entre 0 et 99 999.")
    if open_declaration(household_id) is not None:
        raise QuotientError(ALREADY_DECLARED)
    document = upload_document(
        household_id=household_id,
        doc_type=quotient_attestation_type(),
        person=None,
        checked=checked,
        actor=actor,
        today=today,
        review=False,
    )
    try:
        with db.session.begin_nested():
            request = open_request(
                KIND, household_id, declaration_title(value), actor=actor, document_id=document.id
            )
            db.session.add(QuotientDeclaration(request_id=request.id, family_quotient=value))
            db.session.flush()
    except IntegrityError:  # the other parent declared at the same instant
        discard_file(document)
        raise QuotientError(ALREADY_DECLARED) from None
    except BaseException:  # e.g. the database is busy: no file without its request
        discard_file(document)
        raise
    record_change(household_id, "quotient_declared", actor=actor, fields=("family_quotient",))
    audit.record(
        "household.quotient-declared",
        actor=actor,
        target=f"household:{household_id}",
        details=f"request:{request.id}",
    )
    db.session.flush()
    return request


# --- Staff decide (from the request's page or the attestation's) ------------------------------


@on_decision(KIND)
def _decide_declaration(request: Request, accepted: bool, actor) -> None:
    """Accepted: the declared figure becomes the household's QF. Refused: nothing changes.
    The attestation gets the same decision (unless replaced meanwhile: staff judged the
    file the request links to)."""
    reason = decision_reason(request)
    if not accepted and not reason:
        raise RequestError("Indiquez le motif du refus : il sera envoyé à la famille.")
    if request.document_id is not None:
        record_review(request.document_id, accepted=accepted, actor=actor, reason=reason)
    if not accepted:
        record_change(
            request.household_id, "quotient_refused", actor=actor, fields=("family_quotient",)
        )
        return
    declaration = db.session.get(QuotientDeclaration, request.id)
    if declaration is None:
        raise RequestError("Cette demande ne porte aucun quotient familial.")
    household = db.session.get(Household, request.household_id)
    household.family_quotient = declaration.family_quotient
    record_change(
        request.household_id, "quotient_accepted", actor=actor, fields=("family_quotient",)
    )
    audit.record(
        "household.quotient-accepted",
        actor=actor,
        target=f"household:{request.household_id}",
        details=f"request:{request.id}",
    )


@on_status_change(KIND)
def _withdraw_attestation(request: Request, from_status: str, to_status: str, actor) -> None:
    """A cancelled declaration takes its attestation with it: nobody is left to review it."""
    if to_status != "cancelled" or request.document_id is None:
        return
    db.session.execute(
        update(Document)
        .where(
            Document.id == request.document_id,
            Document.status == "pending",
            Document.replaced_at.is_(None),
        )
        .values(replaced_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    record_change(request.household_id, "quotient_withdrawn", actor=actor)
