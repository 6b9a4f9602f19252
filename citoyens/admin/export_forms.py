"""Forms of the exports page (/admin/exports): what to export, for which period, in which
format. The choices are the staff member's services and their activities only; a value
naming another service never reaches the form's validation (the view answers 404)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, RadioField, SelectChoice, SelectField

from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.reservations.staff import visible_services
from citoyens.reservations.staff_forms import valid_span
from citoyens.services.forms import date_field
from citoyens.services.models import Activity, SchoolYear, Service

BAD_FORMAT = "Choisissez le format XLSX ou CSV."
CHOOSE = "Choisissez une activité ou un service dans la liste."


@dataclass
class Choices:
    """What the staff member may export: their services and the activities of these."""

    services: list[Service]
    activities: list[Activity]

    @property
    def service_ids(self) -> set[int]:
        return {service.id for service in self.services}

    def activity(self, activity_id: int) -> Activity | None:
        return next((a for a in self.activities if a.id == activity_id), None)


def choices_for(user) -> Choices:
    """The user's services (all for administrators) and their activities. Two queries."""
    services = visible_services(user)
    ids = [service.id for service in services]
    activities = (
        list(
            db.session.scalars(
                select(Activity)
                .where(Activity.service_id.in_(ids))
                .order_by(Activity.active.desc(), Activity.start_time, Activity.name, Activity.id)
            )
        )
        if ids
        else []
    )
    return Choices(services, activities)


def parse_target(value: str | None) -> tuple[str, int] | None:
    """ "service:3" → ("service", 3), "activite:12" → ("activity", 12); else None."""
    kind, _, number = (value or "").partition(":")
    kinds = {"service": "service", "activite": "activity"}
    target_id = parse_id(number)
    if kind not in kinds or target_id is None:
        return None
    return kinds[kind], target_id


def _format_field(xlsx: str, csv: str):
    """XLSX (every sheet) or CSV (the first sheet only: a CSV holds one table)."""
    return RadioField(
        "Format",
        choices=[
            SelectChoice("xlsx", f"Classeur Excel (XLSX) : {xlsx}"),
            SelectChoice("csv", f"CSV : {csv} seulement"),
        ],
        default="xlsx",
        invalid_choice_message=BAD_FORMAT,
        validate_choice=True,
    )


class AttendanceExportForm(FlaskForm):
    """Attendance of one activity, or of a whole service, from one date to another."""

    target = SelectField(
        "Activité ou service",
        choices=[],
        invalid_choice_message=CHOOSE,
        description="« Tout le service » réunit toutes ses activités.",
    )
    starts_on = date_field("Du", "Le premier jour")
    ends_on = date_field("Au", "Le dernier jour", description="Un an au plus.")
    fmt = _format_field("le détail et la synthèse par enfant", "le détail")

    def __init__(self, *args, choices: Choices, **kwargs):
        kwargs.setdefault("prefix", "presences")
        super().__init__(*args, **kwargs)
        options = []
        for service in choices.services:
            group = service.name
            options.append(
                SelectChoice(f"service:{service.id}", f"{group} — tout le service", optgroup=group)
            )
            options += [
                SelectChoice(
                    f"activite:{activity.id}",
                    activity.name if activity.active else f"{activity.name} (désactivée)",
                    optgroup=group,
                )
                for activity in choices.activities
                if activity.service_id == service.id
            ]
        self.target.choices = options

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        return valid_span(self, valid, "Le dernier jour ne peut pas précéder le premier jour.")


class FamiliesExportForm(FlaskForm):
    """The children enrolled in a service for a school year, and their families."""

    service_id = SelectField(
        "Service",
        coerce=str,
        choices=[],
        invalid_choice_message="Choisissez un de vos services dans la liste.",
    )
    school_year_id = SelectField(
        "Année scolaire",
        coerce=str,
        choices=[],
        invalid_choice_message="Choisissez une année scolaire dans la liste.",
    )
    pending = BooleanField("Inclure aussi les inscriptions en attente de validation")
    fmt = _format_field("les enfants et les contacts", "les enfants")

    def __init__(self, *args, choices: Choices, years: list[SchoolYear], **kwargs):
        kwargs.setdefault("prefix", "familles")
        super().__init__(*args, **kwargs)
        self.service_id.choices = [SelectChoice(str(s.id), s.name) for s in choices.services]
        self.school_year_id.choices = [SelectChoice(str(y.id), y.name) for y in years]


def school_years() -> list[SchoolYear]:
    """Every school year, the most recent first. One query."""
    return list(db.session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on.desc())))


def current_year_id(years: list[SchoolYear], today: date) -> int | None:
    """The school year `today` falls in, else the most recent one."""
    for year in years:
        if year.starts_on <= today <= year.ends_on:
            return year.id
    return years[0].id if years else None
