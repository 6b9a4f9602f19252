"""Back-office forms of the calendar: a holiday (public or school) and a closure of a
service or one of its activities."""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import ValidationError

from citoyens.extensions import db
from citoyens.forms import required_text, strip
from citoyens.reservations import closures as ops
from citoyens.reservations.models import HOLIDAY_KINDS, Holiday
from citoyens.services.forms import choice_list, date_field, in_order

MAX_SPAN_DAYS = 366


def _one_day_by_default(first, last) -> None:
    """An empty last day means the first day alone."""
    if first.data is not None and last.data is None and not last.errors:
        last.data = first.data


def _span_problem(first: date, last: date) -> str | None:
    if (last - first).days >= MAX_SPAN_DAYS:
        return "La période ne peut pas dépasser un an."
    return None


def valid_span(form, valid: bool, order_message: str) -> bool:
    """A form's `starts_on`/`ends_on`: one day when the end is empty, in order, not too long."""
    _one_day_by_default(form.starts_on, form.ends_on)
    if not (in_order(form.starts_on, form.ends_on, order_message) and valid):
        return False
    problem = _span_problem(form.starts_on.data, form.ends_on.data)
    if problem:
        form.ends_on.errors.append(problem)
        return False
    return True


class HolidayForm(FlaskForm):
    """A public holiday or a school holiday period (zone B), corrected by staff."""

    kind = RadioField(
        "Type",
        choices=choice_list(HOLIDAY_KINDS),
        default="public",
        invalid_choice_message="Choisissez « Jour férié » ou « Vacances scolaires ».",
    )
    name = StringField(
        "Nom",
        filters=[strip],
        validators=required_text("Le nom", 120),
        description="Par exemple : Armistice, Vacances de la Toussaint, Pont de l'Ascension.",
    )
    starts_on = date_field("Premier jour", "Le premier jour")
    ends_on = date_field(
        "Dernier jour",
        "Le dernier jour",
        is_required=False,
        description="Laissez vide pour un seul jour.",
    )

    def __init__(self, *args, holiday_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._holiday_id = holiday_id

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid_span(self, valid, "Le dernier jour ne peut pas précéder le premier jour."):
            return False
        query = select(Holiday.id).where(
            Holiday.kind == self.kind.data, Holiday.starts_on == self.starts_on.data
        )
        if self._holiday_id is not None:
            query = query.where(Holiday.id != self._holiday_id)
        if db.session.scalar(query) is not None:
            what = "Un jour férié" if self.kind.data == "public" else "Une période de vacances"
            self.starts_on.errors.append(f"{what} commence déjà à cette date.")
            return False
        return True

    def values(self) -> dict:
        return {
            "kind": self.kind.data,
            "name": self.name.data,
            "starts_on": self.starts_on.data,
            "ends_on": self.ends_on.data,
        }


def optional_id(value):
    """Select value to id: "" (the whole service) is None."""
    if value in ("", None):
        return None
    return int(value)


class ClosureForm(FlaskForm):
    """A service, or one of its activities, closed for a few days."""

    service_id = SelectField(
        "Service",
        coerce=int,
        choices=[],
        invalid_choice_message="Choisissez un de vos services dans la liste.",
        invalid_value_message="Choisissez un de vos services dans la liste.",
    )
    activity_id = SelectField(
        "Activité",
        coerce=optional_id,
        choices=[],
        description="« Tout le service » ferme toutes ses activités.",
        invalid_choice_message="Choisissez une activité dans la liste.",
        invalid_value_message="Choisissez une activité dans la liste.",
    )
    starts_on = date_field("Premier jour fermé", "Le premier jour fermé")
    ends_on = date_field(
        "Dernier jour fermé",
        "Le dernier jour fermé",
        is_required=False,
        description="Laissez vide pour un seul jour.",
    )
    reason = StringField(
        "Motif",
        filters=[strip],
        validators=required_text("Le motif", 200),
        description="Repris dans l'e-mail envoyé aux familles dont les réservations sont "
        "annulées. Par exemple : grève, travaux, formation du personnel.",
    )

    def __init__(self, *args, services=(), activities=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.service_id.choices = [SelectChoice(s.id, s.name) for s in services]
        self.activity_id.choices = [SelectChoice("", "Tout le service")] + [
            SelectChoice(a.id, f"{a.service.name} — {a.name}") for a in activities
        ]
        self._activity_services = {a.id: a.service_id for a in activities}

    def validate_activity_id(self, field):
        if field.data is None or self.service_id.errors:
            return
        if self._activity_services.get(field.data) != self.service_id.data:
            raise ValidationError("Cette activité n'appartient pas au service choisi.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid_span(
            self, valid, "Le dernier jour fermé ne peut pas précéder le premier jour."
        ):
            return False
        for day_field in (self.starts_on, self.ends_on):
            if ops.school_year_of(day_field.data) is None:
                day_field.errors.append(
                    "Aucune année scolaire ne contient cette date : une fermeture se place "
                    "dans une année scolaire définie."
                )
                valid = False
        return valid
