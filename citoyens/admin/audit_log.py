"""The audit log as administrators read it: filters, pages (newest first) and a CSV export.

Plain queries (no HTTP, no templates). Events older than RETENTION_AUDIT_MONTHS are
deleted by the retention purge (citoyens/retention.py), so the log never shows them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import aliased

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.formatting import datetime_fr
from citoyens.forms import PARIS, RefusedInput, parse_query_day
from citoyens.tabular import neutralise

PAGE_SIZE = 50
EXPORT_LIMIT = 50_000  # rows in one CSV: twelve months of a commune fit well below

# What the codes mean, in French; a code missing here is shown as is.
ACTION_LABELS = {
    "access.denied": "Accès refusé",
    "audit.exported": "Journal exporté",
    "booking.absence": "Absence signalée",
    "calendar_feed.stopped": "Agenda en ligne arrêté",
    "confirm": "Adresse e-mail confirmée",
    "confirm.resent": "Lien de confirmation renvoyé",
    "credit.overpayment_reviewed": "Trop-perçu examiné",
    "direct_debit.downloaded": "Fichier de prélèvement téléchargé",
    "enrolment.viewed": "Dossier d'inscription consulté",
    "exclusion_set.created": "Activités exclusives créées",
    "export.downloaded": "Export préparé téléchargé",
    "export.familles": "Export des familles d'un service",
    "export.presences": "Export des présences",
    "exclusion_set.deleted": "Activités exclusives supprimées",
    "holiday.created": "Vacances ou jour férié ajouté",
    "household.closed": "Compte famille clos",
    "invitation.accepted": "Invitation acceptée",
    "invitation.sent": "Invitation envoyée",
    "invoice.pdf": "Facture téléchargée",
    "login": "Connexion",
    "login.failed": "Connexion refusée",
    "login.unconfirmed": "Connexion sans adresse confirmée",
    "mandate.password_refused": "Mandat : mot de passe refusé",
    "password.changed": "Mot de passe changé",
    "payment.late": "Paiement arrivé en retard",
    "payment.recorded": "Paiement enregistré",
    "privacy.export_downloaded": "Export des données téléchargé",
    "privacy.export_requested": "Export des données demandé",
    "request.opened": "Demande consultée",
    "request.status": "Demande traitée",
    "reservation_day.viewed": "Liste d'appel consultée",
    "reset.requested": "Mot de passe oublié",
    "school.created": "École ajoutée",
    "school.updated": "École modifiée",
    "school_year.created": "Année scolaire ajoutée",
    "service.created": "Service ajouté",
    "settings.updated": "Réglages modifiés",
    "signup": "Inscription au portail",
    "staff.created": "Compte agent créé",
    "tariff.surcharge_updated": "Majoration modifiée",
}

CSV_COLUMNS = ["Date", "Auteur", "E-mail", "Action", "Libellé", "Cible", "Adresse IP", "Détails"]


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, "")


@dataclass
class Filters:
    """The log's filters as typed; empty strings mean "all"."""

    actor: str = ""  # part of the author's name or e-mail
    action: str = ""  # an action code, or its beginning ("login")
    target: str = ""  # part of the target ("household:12")
    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, args) -> Filters:
        """From a query string; a malformed date is RefusedInput (a French 400)."""
        filters = cls(
            actor=(args.get("auteur") or "").strip()[:100],
            action=(args.get("action") or "").strip()[:60],
            target=(args.get("cible") or "").strip()[:120],
            start=parse_query_day(args.get("du"), "La date de début"),
            end=parse_query_day(args.get("au"), "La date de fin"),
        )
        if filters.start and filters.end and filters.start > filters.end:
            raise RefusedInput("La date de début est après la date de fin.")
        return filters

    def query_args(self) -> dict[str, str]:
        """The filters as a query string (the pages' links, the CSV link)."""
        values = {
            "auteur": self.actor,
            "action": self.action,
            "cible": self.target,
            "du": self.start.isoformat() if self.start else "",
            "au": self.end.isoformat() if self.end else "",
        }
        return {key: value for key, value in values.items() if value}


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS)


def _statement(filters: Filters) -> Select:
    actor = aliased(User)
    statement = select(AuditEvent, actor).outerjoin(actor, actor.id == AuditEvent.actor_id)
    if filters.actor:
        pattern = _like(filters.actor)
        statement = statement.where(
            or_(
                actor.email.ilike(pattern, escape="\\"),
                (actor.first_name + " " + actor.last_name).ilike(pattern, escape="\\"),
            )
        )
    if filters.action:
        escaped = filters.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(
            or_(
                AuditEvent.action == filters.action,
                AuditEvent.action.like(escaped + ".%", escape="\\"),
            )
        )
    if filters.target:
        statement = statement.where(AuditEvent.target.ilike(_like(filters.target), escape="\\"))
    if filters.start:
        statement = statement.where(AuditEvent.created_at >= _paris_midnight(filters.start))
    if filters.end:
        statement = statement.where(
            AuditEvent.created_at < _paris_midnight(filters.end + timedelta(days=1))
        )
    return statement


@dataclass
class Row:
    event: AuditEvent
    actor: User | None

    @property
    def label(self) -> str:
        return action_label(self.event.action)


@dataclass
class LogPage:
    rows: list[Row]
    next_cursor: str | None  # the "older events" link; None on the last page


def _parse_cursor(value: str | None) -> int | None:
    """The id of the last event shown ("42"); anything else → None (the first page)."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if 0 < number < 2**31 else None


def page(filters: Filters, cursor: str | None = None, per_page: int = PAGE_SIZE) -> LogPage:
    """One page of the filtered log, newest first (by id: events are numbered as they
    happen), continuing after `cursor`, the id of the last row shown (keyset). One query."""
    statement = _statement(filters)
    after = _parse_cursor(cursor)
    if after is not None:
        statement = statement.where(AuditEvent.id < after)
    found = db.session.execute(statement.order_by(AuditEvent.id.desc()).limit(per_page + 1)).all()
    rows = [Row(event, actor) for event, actor in found[:per_page]]
    more = len(found) > per_page
    return LogPage(rows, str(rows[-1].event.id) if more and rows else None)


def export_csv(filters: Filters) -> bytes:
    """The filtered log (newest first, at most EXPORT_LIMIT rows) as a CSV a spreadsheet
    opens (UTF-8 with BOM, `;`), every cell neutralised against formulas. One query."""
    found = db.session.execute(
        _statement(filters).order_by(AuditEvent.id.desc()).limit(EXPORT_LIMIT)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event, actor in found:
        writer.writerow(
            neutralise(value)
            for value in (
                datetime_fr(event.created_at),
                actor.full_name if actor else "",
                actor.email if actor else "",
                event.action,
                action_label(event.action),
                event.target,
                event.ip,
                event.details,
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
