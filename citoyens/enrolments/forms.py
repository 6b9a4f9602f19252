"""Forms of the enrolment domain: the choice (GET, step by step) and the request (POST).

Ids are only parsed here; the view checks them against the household and the
service (a forged one answers 404).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectMultipleField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from citoyens.documents.forms import ID_RANGE, WholeNumberField, no_control_characters
from citoyens.enrolments.operations import COMMENTS_MAX_LENGTH
from citoyens.forms import IntegerField, strip, today_in_paris


class IdField(IntegerField):
    """An optional id: anything but a whole number in range counts as a forged value."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Identifiant invalide.") from exc


class ChoiceForm(FlaskForm):
    """?enfant=&service=&annee= : what the form shows next. A GET: no CSRF token."""

    class Meta:
        csrf = False

    enfant = IdField(validators=[Optional(), ID_RANGE])
    service = IdField(validators=[Optional(), ID_RANGE])
    annee = IdField(validators=[Optional(), ID_RANGE])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        # Unknown activity ids are the view's business (404), not a form message.
        pass


class FrenchDateField(DateField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Saisissez une date valide, par exemple 01/09/2026.") from exc


class EnrolmentForm(FlaskForm):
    """The request sent: the choice again (hidden), the activities, the place request."""

    enfant = IntegerField(validators=[InputRequired(), ID_RANGE])
    service = IntegerField(validators=[InputRequired(), ID_RANGE])
    annee = IntegerField(validators=[InputRequired(), ID_RANGE])
    activities = MultiCheckboxField("Activités", coerce=str)
    wished_start_on = FrenchDateField(
        "Date d'entrée souhaitée", validators=[Optional()], format="%Y-%m-%d"
    )
    days_per_week = WholeNumberField(
        "Jours par semaine",
        description="Entre 1 et 5.",
        validators=[
            Optional(),
            NumberRange(min=1, max=5, message="Indiquez un nombre de jours entre 1 et 5."),
        ],
    )
    hours_per_week = WholeNumberField(
        "Heures par semaine",
        description="Entre 1 et 55.",
        validators=[
            Optional(),
            NumberRange(min=1, max=55, message="Indiquez un nombre d'heures entre 1 et 55."),
        ],
    )
    comments = TextAreaField(
        "Commentaires",
        description="Facultatif : horaires, besoins particuliers… (2000 caractères au plus).",
        filters=[strip],
        validators=[
            Optional(),
            Length(
                max=COMMENTS_MAX_LENGTH,
                message="Les commentaires ne peuvent pas dépasser 2000 caractères.",
            ),
            no_control_characters(multiline=True),
        ],
    )

    def __init__(self, *args, place_request: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._place_request = place_request

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self._place_request:
            for name, message in (
                ("wished_start_on", "Indiquez la date d'entrée souhaitée."),
                ("days_per_week", "Indiquez le nombre de jours par semaine."),
                ("hours_per_week", "Indiquez le nombre d'heures par semaine."),
            ):
                f = self[name]
                if f.data is None and not f.errors:
                    f.errors = [*f.errors, message]
                    valid = False
        elif not self.activities.data and not self.activities.errors:
            self.activities.errors = ["Choisissez au moins une activité."]
            valid = False
        return valid

    def validate_wished_start_on(self, field):
        if field.data is not None and field.data < today_in_paris():
            raise ValidationError("La date d'entrée souhaitée ne peut pas être déjà passée.")

    def activity_ids(self) -> list[int] | None:
        """The chosen ids; None when one is not a whole number (a forged form)."""
        ids = []
        for value in self.activities.data or []:
            value = str(value)
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) < 2**31:
                return None
            ids.append(int(value))
        return ids

    def place(self) -> dict:
        return {
            "wished_start_on": self.wished_start_on.data,
            "days_per_week": self.days_per_week.data,
            "hours_per_week": self.hours_per_week.data,
            "comments": self.comments.data or None,
        }
