"""Everything the portal holds about one household, as plain data for its archive.

One query per section, whatever the number of rows (no query per row). Keys are French:
the archive is read by the family (LISEZMOI.txt explains each section). Never in it:
password hashes, session or calendar tokens, an IBAN in clear (masked as on the site),
staff's internal notes, another household's data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from citoyens.accounts.models import User
from citoyens.billing.models import HouseholdCredit, Invoice, InvoiceLine, Mandate, Payment
from citoyens.core.models import MailMessage
from citoyens.documents.models import Document
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.requests.models import Request, RequestEvent
from citoyens.reservations.models import ActivityDay, Booking, BookingChange
from citoyens.services.models import Activity, SchoolYear, Service


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(statement) -> list[dict]:
    """The statement's rows as dicts, keyed by the labels of its columns."""
    return [
        {key: _value(value) for key, value in row.items()}
        for row in db.session.execute(statement).mappings()
    ]


def _group(rows: list[dict], key: str) -> dict[Any, list[dict]]:
    grouped: dict[Any, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row.pop(key), []).append(row)
    return grouped


def household_section(household_id: int) -> dict:
    h = Household
    row = _rows(
        select(
            h.id.label("numero"),
            h.address_line.label("adresse"),
            h.address_extra.label("complement_adresse"),
            h.postcode.label("code_postal"),
            h.city.label("ville"),
            h.family_quotient.label("quotient_familial_retenu"),
            h.created_at.label("cree_le"),
            h.closed_at.label("ferme_le"),
        ).where(h.id == household_id)
    )
    return row[0] if row else {}


def people_section(household_id: int) -> list[dict]:
    p, m = Person, HouseholdMember
    return _rows(
        select(
            p.id.label("numero"),
            m.role.label("role"),
            m.relationship_label.label("lien"),
            p.civility.label("civilite"),
            p.first_name.label("prenom"),
            p.last_name.label("nom"),
            p.birth_date.label("date_de_naissance"),
            p.sex.label("sexe"),
            p.email.label("email"),
            p.mobile_phone.label("telephone_portable"),
            p.home_phone.label("telephone_domicile"),
            p.work_phone.label("telephone_travail"),
            p.address_line.label("adresse"),
            p.postcode.label("code_postal"),
            p.city.label("ville"),
            p.class_level.label("classe"),
            p.allergies.label("allergies"),
            p.diet.label("regime"),
            p.pai.label("pai"),
            p.doctor_name.label("medecin"),
            p.doctor_phone.label("telephone_medecin"),
            m.can_pick_up.label("peut_venir_chercher"),
            m.emergency_contact.label("contact_urgence"),
            m.created_at.label("membre_depuis"),
            m.left_at.label("parti_le"),
        )
        .join(m, m.person_id == p.id)
        .where(m.household_id == household_id)
        .order_by(m.id)
    )


def accounts_section(household_id: int) -> list[dict]:
    u = User
    return _rows(
        select(
            u.email.label("email"),
            u.first_name.label("prenom"),
            u.last_name.label("nom"),
            u.active.label("actif"),
            u.created_at.label("cree_le"),
            u.confirmed_at.label("confirme_le"),
            u.last_login_at.label("derniere_connexion"),
            u.password_changed_at.label("mot_de_passe_change_le"),
        )
        .where(u.household_id == household_id)
        .order_by(u.id)
    )


def consents_section(household_id: int) -> dict:
    """What the family agreed to: per child, image rights and outings; for the household,
    paperless invoices and the booking summary e-mail."""
    settings = _rows(
        select(
            Household.paperless_invoices.label("facture_en_ligne"),
            Household.booking_summary_mail.label("recapitulatif_des_reservations_par_email"),
        ).where(Household.id == household_id)
    )
    children = _rows(
        select(
            Person.first_name.label("prenom"),
            Person.last_name.label("nom"),
            Person.image_rights.label("droit_a_l_image"),
            Person.outing_consent.label("autorisation_de_sortie"),
        )
        .join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .where(HouseholdMember.household_id == household_id, HouseholdMember.role == "child")
        .order_by(HouseholdMember.id)
    )
    return {"foyer": settings[0] if settings else {}, "enfants": children}


def documents_query(household_id: int):
    """The household's documents, current and replaced, with their type and person."""
    return (
        select(Document)
        .options(selectinload(Document.type), selectinload(Document.person))
        .where(Document.household_id == household_id)
        .order_by(Document.uploaded_at, Document.id)
    )


def document_entry(document: Document, archive_name: str | None) -> dict:
    person = document.person
    return {
        "numero": document.id,
        "type": document.type.label,
        "personne": f"{person.first_name} {person.last_name}" if person else None,
        "nom_du_fichier_envoye": document.original_name,
        "format": document.content_type,
        "taille_octets": document.size,
        "envoye_le": _value(document.uploaded_at),
        "valable_jusqu_au": _value(document.valid_until),
        "statut": document.status,
        "examine_le": _value(document.reviewed_at),
        "motif_du_refus": document.refusal_reason,
        "remplace_le": _value(document.replaced_at),
        "fichier_dans_l_archive": archive_name,
    }


def enrolments_section(household_id: int) -> list[dict]:
    e = Enrolment
    enrolments = _rows(
        select(
            e.id.label("numero"),
            (Person.first_name + " " + Person.last_name).label("enfant"),
            Service.name.label("service"),
            SchoolYear.name.label("annee_scolaire"),
            e.status.label("statut"),
            e.created_at.label("demandee_le"),
            e.decided_at.label("decidee_le"),
            e.wished_start_on.label("debut_souhaite"),
            e.days_per_week.label("jours_par_semaine"),
            e.hours_per_week.label("heures_par_semaine"),
            e.comments.label("commentaires"),
        )
        .join(Person, Person.id == e.child_id)
        .join(Service, Service.id == e.service_id)
        .join(SchoolYear, SchoolYear.id == e.school_year_id)
        .where(e.household_id == household_id)
        .order_by(e.created_at, e.id)
    )
    activities = _group(
        _rows(
            select(EnrolmentActivity.enrolment_id.label("inscription"), Activity.name.label("nom"))
            .join(Activity, Activity.id == EnrolmentActivity.activity_id)
            .join(e, e.id == EnrolmentActivity.enrolment_id)
            .where(e.household_id == household_id)
            .order_by(EnrolmentActivity.id)
        ),
        "inscription",
    )
    for enrolment in enrolments:
        enrolment["activites"] = [a["nom"] for a in activities.get(enrolment["numero"], [])]
    return enrolments


def requests_section(household_id: int) -> list[dict]:
    r, ev = Request, RequestEvent
    requests = _rows(
        select(
            r.id.label("numero"),
            r.kind.label("type"),
            r.title.label("objet"),
            r.status.label("statut"),
            r.created_at.label("envoyee_le"),
            r.closed_at.label("close_le"),
        )
        .where(r.household_id == household_id)
        .order_by(r.created_at, r.id)
    )
    # The family's history as it sees it on the site: staff's internal notes are left out.
    events = _group(
        _rows(
            select(
                ev.request_id.label("demande"),
                ev.created_at.label("le"),
                ev.kind.label("evenement"),
                ev.from_status.label("ancien_statut"),
                ev.to_status.label("nouveau_statut"),
                ev.body.label("message"),
            )
            .join(r, r.id == ev.request_id)
            .where(r.household_id == household_id, ev.internal.is_(False), ev.kind != "note")
            .order_by(ev.created_at, ev.id)
        ),
        "demande",
    )
    for request in requests:
        request["historique"] = events.get(request["numero"], [])
    return requests


def bookings_section(household_id: int) -> list[dict]:
    b = Booking
    bookings = _rows(
        select(
            b.id.label("numero"),
            (Person.first_name + " " + Person.last_name).label("enfant"),
            Activity.name.label("activite"),
            b.day.label("jour"),
            b.status.label("statut"),
            b.late.label("annulation_tardive"),
            b.attendance.label("presence"),
            b.created_at.label("creee_le"),
        )
        .join(Person, Person.id == b.child_id)
        .join(ActivityDay, ActivityDay.id == b.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .where(b.household_id == household_id)
        .order_by(b.day, b.id)
    )
    changes = _group(
        _rows(
            select(
                BookingChange.booking_id.label("reservation"),
                BookingChange.created_at.label("le"),
                BookingChange.actor_kind.label("par"),
                BookingChange.from_state.label("avant"),
                BookingChange.to_state.label("apres"),
                BookingChange.note.label("note"),
            )
            .join(b, b.id == BookingChange.booking_id)
            .where(b.household_id == household_id)
            .order_by(BookingChange.created_at, BookingChange.id)
        ),
        "reservation",
    )
    for booking in bookings:
        booking["modifications"] = changes.get(booking["numero"], [])
    return bookings


def invoices_section(household_id: int) -> list[dict]:
    i = Invoice
    invoices = _rows(
        select(
            i.id.label("id"),
            i.number.label("numero"),
            i.kind.label("type"),
            i.month.label("mois"),
            i.issued_at.label("emise_le"),
            i.due_on.label("echeance"),
            i.total_cents.label("total_centimes"),
            i.status.label("statut"),
            i.addressee.label("destinataire"),
            i.address.label("adresse"),
            i.family_quotient.label("quotient_familial"),
            i.band_label.label("tranche"),
            i.debit_on.label("preleve_le"),
        )
        .where(i.household_id == household_id)
        .order_by(i.month, i.id)
    )
    lines = _group(
        _rows(
            select(
                InvoiceLine.invoice_id.label("facture"),
                InvoiceLine.kind.label("type"),
                InvoiceLine.child_name.label("enfant"),
                InvoiceLine.label.label("libelle"),
                InvoiceLine.unit_price_cents.label("prix_unitaire_centimes"),
                InvoiceLine.quantity.label("quantite"),
                InvoiceLine.amount_cents.label("montant_centimes"),
                InvoiceLine.days.label("jours"),
            )
            .join(i, i.id == InvoiceLine.invoice_id)
            .where(i.household_id == household_id)
            .order_by(InvoiceLine.id)
        ),
        "facture",
    )
    for invoice in invoices:
        invoice["lignes"] = lines.get(invoice.pop("id"), [])
    return invoices


def payments_section(household_id: int) -> list[dict]:
    return _rows(
        select(
            Invoice.number.label("facture"),
            Payment.method.label("moyen"),
            Payment.amount_cents.label("montant_centimes"),
            Payment.paid_at.label("paye_le"),
            Payment.rejected_at.label("rejete_le"),
            Payment.rejection_reason.label("motif_du_rejet"),
            Payment.reversed_at.label("annule_le"),
        )
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.household_id == household_id)
        .order_by(Payment.paid_at, Payment.id)
    )


def mandates_section(household_id: int) -> list[dict]:
    """SEPA mandates, the IBAN masked as on the site (never in clear in the archive)."""
    mandates = db.session.scalars(
        select(Mandate).where(Mandate.household_id == household_id).order_by(Mandate.id)
    )
    return [
        {
            "reference_unique_du_mandat": m.rum,
            "titulaire": m.holder_name,
            "iban_masque": m.masked_iban,
            "bic": m.bic,
            "signe_le": _value(m.signed_at),
            "premier_mois": _value(m.first_month),
            "revoque_le": _value(m.revoked_at),
        }
        for m in mandates
    ]


def credits_section(household_id: int) -> list[dict]:
    return _rows(
        select(
            HouseholdCredit.created_at.label("le"),
            HouseholdCredit.kind.label("type"),
            HouseholdCredit.amount_cents.label("montant_centimes"),
            Invoice.number.label("facture"),
            HouseholdCredit.note.label("note"),
        )
        .outerjoin(Invoice, Invoice.id == HouseholdCredit.invoice_id)
        .where(HouseholdCredit.household_id == household_id)
        .order_by(HouseholdCredit.created_at, HouseholdCredit.id)
    )


def mails_section(household_id: int) -> list[dict]:
    """E-mails the portal sent to the household's accounts (by account or by address)."""
    accounts = select(User.id).where(User.household_id == household_id)
    addresses = select(User.email).where(User.household_id == household_id)
    return _rows(
        select(
            MailMessage.created_at.label("le"),
            MailMessage.recipient.label("destinataire"),
            MailMessage.subject.label("objet"),
            MailMessage.status.label("statut"),
            MailMessage.sent_at.label("envoye_le"),
        )
        .where(
            or_(
                MailMessage.user_id.in_(accounts),
                and_(MailMessage.user_id.is_(None), MailMessage.recipient.in_(addresses)),
            )
        )
        .order_by(MailMessage.created_at, MailMessage.id)
    )
