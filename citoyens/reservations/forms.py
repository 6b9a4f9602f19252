"""Forms of the family's reservation pages. Ids are parsed here; the views check them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField
from wtforms.validators import InputRequired, ValidationError

from citoyens.enrolments.forms import FrenchDateField, MultiCheckboxField
from citoyens.forms import parse_id

WEEKDAY_CHOICES = [
    ("1", "Lundi"),
    ("2", "Mardi"),
    ("3", "Mercredi"),
    ("4", "Jeudi"),
    ("5", "Vendredi"),
]
MAX_PERIOD_DAYS = 366


def _ids(values) -> list[int]:
    """The well-formed ids among the values posted (the view answers 404 to the rest)."""
    return [n for n in map(parse_id, values or []) if n is not None]


class PlanForm(FlaskForm):
    """ "Planifier en un clic": children, activities, weekdays, period."""

    enfants = MultiCheckboxField("Enfants", coerce=str)
    activites = MultiCheckboxField("Activités", coerce=str)
    jours = MultiCheckboxField("Jours de la semaine", coerce=str, choices=WEEKDAY_CHOICES)
    du = FrenchDateField(
        "Du", format="%Y-%m-%d", validators=[InputRequired("Indiquez le premier jour.")]
    )
    au = FrenchDateField(
        "Au", format="%Y-%m-%d", validators=[InputRequired("Indiquez le dernier jour.")]
    )
    attente = BooleanField("Mettre sur liste d'attente les jours complets")

    @property
    def child_ids(self) -> list[int]:
        return _ids(self.enfants.data)

    @property
    def activity_ids(self) -> set[int]:
        return set(_ids(self.activites.data))

    @property
    def weekdays(self) -> set[int]:
        return {n for n in _ids(self.jours.data) if 1 <= n <= 7}

    def validate_enfants(self, field):
        if not self.child_ids:
            raise ValidationError("Choisissez au moins un enfant.")

    def validate_activites(self, field):
        if not self.activity_ids:
            raise ValidationError("Choisissez au moins une activité.")

    def validate_jours(self, field):
        if not self.weekdays:
            raise ValidationError("Choisissez au moins un jour de la semaine.")

    def validate_au(self, field):
        if self.du.data and field.data:
            if field.data < self.du.data:
                raise ValidationError("Le dernier jour doit suivre le premier.")
            if (field.data - self.du.data).days > MAX_PERIOD_DAYS:
                raise ValidationError("La période ne peut pas dépasser un an.")


class AbsenceForm(FlaskForm):
    fichier = FileField(
        "Certificat médical",
        description="PDF, JPEG, PNG ou photo HEIC, 10 Mo au plus.",
    )
