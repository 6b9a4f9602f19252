"""Forms of the staff accounts pages (administrators only). Messages in French."""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import BooleanField, EmailField, HiddenField, SelectChoice, StringField
from wtforms.validators import AnyOf, InputRequired

from citoyens.extensions import db
from citoyens.forms import email_field_validators, name_validators, strip
from citoyens.services.forms import CheckboxesField
from citoyens.services.models import Service

UNKNOWN_SERVICE = "Choisissez des services de la liste."


class StaffAccountForm(FlaskForm):
    """Name, services and admin right of an existing account (its address never changes here)."""

    first_name = StringField("Prénom", filters=[strip], validators=name_validators("Le prénom"))
    last_name = StringField("Nom", filters=[strip], validators=name_validators("Le nom"))
    service_ids = CheckboxesField(
        "Services",
        description="L'agent voit les familles, demandes et réservations de ces services.",
        coerce=int,
        choices=[],
        invalid_choice_message=UNKNOWN_SERVICE,
        invalid_value_message=UNKNOWN_SERVICE,
    )
    admin = BooleanField("Administrateur (tous les services, réglages, comptes agents)")

    def __init__(self, *args, attached_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Active services, plus those the account is attached to even if closed since.
        query = select(Service.id, Service.name, Service.active).order_by(Service.name)
        query = query.where(or_(Service.active.is_(True), Service.id.in_(list(attached_ids))))
        self.service_ids.choices = [
            SelectChoice(sid, name if active else f"{name} (désactivé)")
            for sid, name, active in db.session.execute(query)
        ]

    def values(self) -> dict:
        return {
            "first_name": self.first_name.data,
            "last_name": self.last_name.data,
            "service_ids": list(self.service_ids.data or []),
            "admin": bool(self.admin.data),
        }


class NewStaffAccountForm(StaffAccountForm):
    email = EmailField(
        "Adresse e-mail",
        description="Le lien pour définir le mot de passe y est envoyé.",
        filters=[strip],
        validators=email_field_validators(),
        render_kw={"autocomplete": "off", "inputmode": "email", "autocapitalize": "none"},
    )

    def values(self) -> dict:
        return {**super().values(), "email": self.email.data}


class StaffActivationForm(FlaskForm):
    """Reactivate (1) or deactivate (0): explicit, so a double click is harmless."""

    active = HiddenField(validators=[InputRequired(), AnyOf(["0", "1"])])


class StaffLinkForm(FlaskForm):
    """Send the set-password link again: a button."""
