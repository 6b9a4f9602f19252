"""Forms of the schools children attend (public, or private with an OGEC canteen contact)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, RadioField, SelectChoice, StringField
from wtforms.validators import AnyOf, InputRequired, ValidationError

from citoyens.extensions import db
from citoyens.forms import optional_text, required_text, strip
from citoyens.services.models import SCHOOL_KINDS, School
from citoyens.services.school_rules import SCHOOL_FIELDS

CANTEEN_CONTACT_MISSING = "Indiquez qui gère la cantine (OGEC) pour une école privée."
DUPLICATE_NAME = "Ce nom d'école existe déjà."


class SchoolForm(FlaskForm):
    """A school: its name, public or private, and for a private one who runs the canteen."""

    name = StringField("Nom de l'école", filters=[strip], validators=required_text("Le nom", 120))
    kind = RadioField(
        "Type d'école",
        choices=[SelectChoice(value, label) for value, label in SCHOOL_KINDS.items()],
        default="public",
        invalid_choice_message="Choisissez « Publique » ou « Privée ».",
    )
    address = StringField("Adresse", filters=[strip], validators=optional_text("L'adresse", 255))
    canteen_contact = StringField(
        "Gestion de la cantine",
        description="Obligatoire pour une école privée : l'OGEC ou la personne qui gère "
        "la restauration scolaire, avec un moyen de la joindre. Affiché aux familles.",
        filters=[strip],
        validators=optional_text("La gestion de la cantine", 255),
    )

    def __init__(self, *args, school_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._school_id = school_id

    def validate(self, extra_validators=None) -> bool:
        # Not a validate_<field> method: Optional() on an empty contact would skip it.
        valid = super().validate(extra_validators)
        contact = self.canteen_contact
        if self.kind.data == "private" and not contact.data and not contact.errors:
            contact.errors.append(CANTEEN_CONTACT_MISSING)
            valid = False
        return valid

    def validate_name(self, field):
        # Compared in Python: SQLite's lower() ignores accents' case ("École" / "école"),
        # and the list of schools is a few dozen rows.
        wanted = field.data.casefold()
        query = select(School.id, School.name)
        if self._school_id is not None:
            query = query.where(School.id != self._school_id)
        if any(name.casefold() == wanted for _id, name in db.session.execute(query)):
            raise ValidationError(DUPLICATE_NAME)

    def values(self) -> dict:
        """What the operations take: empty optional texts become None."""
        return {name: self[name].data or None for name in SCHOOL_FIELDS}


class ActivationForm(FlaskForm):
    """Offer a school again (1) or no more (0): explicit, so a double click is harmless."""

    active = HiddenField(validators=[InputRequired(), AnyOf(["0", "1"])])
