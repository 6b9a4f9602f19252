"""Forms of the invitation of a second responsible adult: inviting, accepting with a password."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import ValidationError

from citoyens.accounts.forms import new_password_field
from citoyens.accounts.passwords import password_problem
from citoyens.forms import email_field_validators, no_control_characters, optional_text, strip
from citoyens.households.forms import HouseholdFormBase, choices, int_or_none


class InviteForm(HouseholdFormBase):
    person_id = SelectField(
        "Qui invitez-vous ?",
        coerce=int_or_none,
        invalid_choice_message="Choisissez une personne de la liste.",
        invalid_value_message="Choisissez une personne de la liste.",
    )
    first_name = StringField(
        "Prénom",
        filters=[strip],
        validators=optional_text("Le prénom", 100),
    )
    last_name = StringField("Nom", filters=[strip], validators=optional_text("Le nom", 100))
    email = EmailField(
        "Son adresse e-mail",
        filters=[strip],
        validators=email_field_validators() + [no_control_characters("L'adresse e-mail")],
        render_kw={"autocomplete": "off", "inputmode": "email", "autocapitalize": "none"},
    )

    def set_people(self, people) -> None:
        self.person_id.choices = choices(
            [("", "Un nouvel adulte (saisir son nom ci-dessous)")]
            + [(person.id, person.full_name) for person in people]
        )

    def validate(self, extra_validators=None) -> bool:
        # A new adult needs a name; Optional() on the empty field would skip a validate_<field>.
        valid = super().validate(extra_validators)
        if self.person_id.data is None and not self.person_id.errors:
            for f, what in ((self.first_name, "Le prénom"), (self.last_name, "Le nom")):
                if not f.data and not f.errors:
                    f.errors.append(f"{what} est obligatoire pour un nouvel adulte.")
                    valid = False
        return valid


class AcceptInvitationForm(FlaskForm):
    password = new_password_field("Choisissez un mot de passe")

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._email = email

    def validate_password(self, field):
        problem = password_problem(field.data or "", self._email)
        if problem:
            raise ValidationError(problem)
