"""Forms of school years and enrolment windows (issue 4)."""

from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import ValidationError

from citoyens.extensions import db
from citoyens.forms import max_length, required, strip
from citoyens.services.forms import date_field, in_order
from citoyens.services.models import SchoolYear

DUPLICATE_YEAR = "Cette année scolaire existe déjà."
BAD_YEAR_NAME = "Le nom s'écrit avec deux années qui se suivent, par exemple « 2026-2027 »."
SCHOOL_YEAR_NAME = re.compile(r"^([0-9]{4})-([0-9]{4})\Z")


def school_year_bounds(first_year: int) -> tuple[date, date]:
    """The default dates of a school year: 1 September to 31 August (DOMAIN.md)."""
    return date(first_year, 9, 1), date(first_year + 1, 8, 31)


class SchoolYearForm(FlaskForm):
    """A school year: "2026-2027", from 1 September to 31 August unless staff say otherwise."""

    name = StringField(
        "Année scolaire",
        description="Par exemple 2026-2027.",
        filters=[strip],
        validators=[required("Le nom de l'année scolaire"), max_length(9, "Le nom")],
        render_kw={"inputmode": "numeric", "maxlength": 9},
    )
    starts_on = date_field(
        "Premier jour",
        "Le premier jour",
        is_required=False,
        description="Laissez vide pour le 1er septembre.",
    )
    ends_on = date_field(
        "Dernier jour",
        "Le dernier jour",
        is_required=False,
        description="Laissez vide pour le 31 août.",
    )

    def __init__(self, *args, school_year_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._school_year_id = school_year_id

    def validate_name(self, field):
        match = SCHOOL_YEAR_NAME.match(field.data or "")
        if not match or int(match.group(2)) != int(match.group(1)) + 1:
            raise ValidationError(BAD_YEAR_NAME)
        if not 2000 <= int(match.group(1)) <= 2098:
            raise ValidationError(BAD_YEAR_NAME)
        query = select(SchoolYear.id).where(SchoolYear.name == field.data)
        if self._school_year_id is not None:
            query = query.where(SchoolYear.id != self._school_year_id)
        if db.session.scalar(query) is not None:
            raise ValidationError(DUPLICATE_YEAR)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid:
            return False
        first = int(self.name.data[:4])
        default_start, default_end = school_year_bounds(first)
        self.starts_on.data = self.starts_on.data or default_start
        self.ends_on.data = self.ends_on.data or default_end
        starts, ends = self.starts_on.data, self.ends_on.data
        if ends <= starts:
            self.ends_on.errors.append("Le dernier jour doit être après le premier jour.")
            return False
        if starts.year != first:
            self.starts_on.errors.append(f"Le premier jour doit être en {first}.")
            valid = False
        if ends.year != first + 1:
            self.ends_on.errors.append(f"Le dernier jour doit être en {first + 1}.")
            valid = False
        return valid

    def values(self) -> dict:
        return {
            "name": self.name.data,
            "starts_on": self.starts_on.data,
            "ends_on": self.ends_on.data,
        }


class EnrolmentWindowForm(FlaskForm):
    """When families may send enrolments to one service for one school year."""

    school_year_id = SelectField(
        "Année scolaire",
        coerce=int,
        choices=[],
        validate_choice=True,
        invalid_choice_message="Choisissez une année scolaire de la liste.",
        invalid_value_message="Choisissez une année scolaire de la liste.",
    )
    opens_on = date_field("Ouverture des inscriptions", "La date d'ouverture")
    closes_on = date_field("Clôture des inscriptions", "La date de clôture")

    def __init__(self, *args, school_years=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.school_year_id.choices = [SelectChoice(y.id, y.name) for y in school_years]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        message = "La date de clôture ne peut pas précéder la date d'ouverture."
        return in_order(self.opens_on, self.closes_on, message) and valid
