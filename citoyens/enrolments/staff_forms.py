"""Back-office enrolment forms: the queue's filters, a decision, staff enrolling a child.

Nothing posted beyond these fields is read: the enrolment and its household come
from the URL, the decision from the button pressed; the choices offered (children,
services, activities) are the only values accepted.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from citoyens.enrolments.decisions import REFUSAL_REASON_MISSING
from citoyens.enrolments.staff import QUEUE_STATUSES
from citoyens.forms import IntegerField
from citoyens.requests.forms import (
    FilterForm,
    StatusButtonsForm,
    clean_text,
    message_field,
    plain_text,
)


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class QueueFilterForm(FilterForm):
    """The queue's filters, read from the query string (a GET form: no CSRF)."""

    FILTERS = ("service", "status", "year")

    class Meta:
        csrf = False

    service = SelectField("Service", choices=[], default="")
    status = SelectField("Statut", choices=_choices(QUEUE_STATUSES.items()), default="pending")
    year = SelectField("Année scolaire", choices=[], default="")

    def set_choices(self, services, years) -> None:
        self.service.choices = _choices(
            [("", "Tous mes services"), *((str(s.id), s.name) for s in services)]
        )
        self.year.choices = _choices(
            [("", "Toutes les années"), *((str(y.id), y.name) for y in years)]
        )


class DecisionForm(StatusButtonsForm):
    """Accept, refuse (the reason is required) or put a place request on the waiting list."""

    message = message_field(
        "Message à la famille",
        optional=True,
        description="Facultatif pour accepter ou mettre en liste d'attente ; "
        "obligatoire pour refuser (le motif est envoyé à la famille).",
    )
    accept = SubmitField("Accepter")
    wait = SubmitField("Liste d'attente")
    refuse = SubmitField("Refuser")

    BUTTONS = (("accepted", "accept"), ("waiting_list", "wait"), ("refused", "refuse"))
    CHOOSE = "Choisissez une décision : accepter, liste d'attente ou refuser."
    REFUSAL_REASON = REFUSAL_REASON_MISSING


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class FrenchDateField(DateField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Saisissez une date valide (jj/mm/aaaa).") from exc


class FrenchIntegerField(IntegerField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Saisissez un nombre entier.") from exc


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class EnrolForm(FlaskForm):
    """An agent enrols a child of the household in one of their services."""

    child = SelectField(
        "Enfant",
        coerce=_int_or_none,
        validators=[InputRequired("Choisissez l'enfant.")],
        invalid_choice_message="Choisissez un enfant du foyer.",
    )
    service = SelectField(
        "Service",
        coerce=_int_or_none,
        validators=[InputRequired("Choisissez le service.")],
        invalid_choice_message="Choisissez un de vos services.",
    )
    school_year = SelectField(
        "Année scolaire",
        coerce=_int_or_none,
        validators=[InputRequired("Choisissez l'année scolaire.")],
        invalid_choice_message="Choisissez une année scolaire de la liste.",
    )
    activities = CheckboxesField(
        "Activités",
        coerce=_int_or_none,
        invalid_choice_message="Choisissez des activités de la liste.",
    )
    # Multi-accueil place request.
    wished_start_on = FrenchDateField(
        "Date d'entrée souhaitée",
        validators=[Optional()],
        format="%Y-%m-%d",
        render_kw={"type": "date"},
    )
    days_per_week = FrenchIntegerField(
        "Jours par semaine",
        validators=[
            Optional(),
            NumberRange(1, 5, "Indiquez un nombre de jours entre 1 et 5."),
        ],
    )
    hours_per_week = FrenchIntegerField(
        "Heures par semaine",
        validators=[
            Optional(),
            NumberRange(1, 55, "Indiquez un nombre d'heures entre 1 et 55."),
        ],
    )
    comments = TextAreaField(
        "Précisions",
        filters=[clean_text],
        validators=[Optional(), plain_text],
        render_kw={"rows": 3, "maxlength": 2000},
    )

    def set_choices(self, children, services, activities, years) -> None:
        self.child.choices = _choices([(c.id, c.full_name) for c in children])
        self.service.choices = _choices([(s.id, s.name) for s in services])
        self.school_year.choices = _choices([(y.id, y.name) for y in years])
        self.activities.choices = _choices([(a.id, a.name) for a in activities])
        self._activity_service = {a.id: a.service_id for a in activities}
        names = {s.id: s for s in services}
        self.activities_by_service = [
            (names[s.id], [a for a in activities if a.service_id == s.id]) for s in services
        ]
        self._place_services = {s.id for s in services if s.place_request}

    def validate_activities(self, field):
        service_id = self.service.data
        others = [a for a in field.data or [] if self._activity_service.get(a) != service_id]
        if others:
            raise ValidationError("Choisissez seulement des activités du service choisi.")

    def validate_comments(self, field):
        if field.data and len(field.data) > 2000:
            raise ValidationError("Les précisions ne peuvent pas dépasser 2 000 caractères.")

    def activity_ids(self) -> list[int]:
        return [a for a in self.activities.data or [] if a is not None]

    def place(self) -> dict | None:
        """The place request's details, for a multi-accueil service only."""
        if self.service.data not in self._place_services:
            return None
        return {
            "wished_start_on": self.wished_start_on.data,
            "days_per_week": self.days_per_week.data,
            "hours_per_week": self.hours_per_week.data,
            "comments": self.comments.data or None,
        }
