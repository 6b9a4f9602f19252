"""Shared form pieces: French messages and the field filters every form uses."""

from __future__ import annotations

from wtforms.validators import DataRequired, Email, Length


def strip(value):
    return value.strip() if isinstance(value, str) else value


def required(what: str = "Ce champ") -> DataRequired:
    return DataRequired(message=f"{what} est obligatoire.")


def email_field_validators() -> list:
    return [
        required("L'adresse e-mail"),
        Length(max=254, message="L'adresse e-mail est trop longue."),
        Email(
            message="Saisissez une adresse e-mail valide, par exemple prenom.nom@exemple.fr.",
            check_deliverability=False,
        ),
    ]


def name_validators(what: str) -> list:
    return [required(what), Length(max=100, message=f"{what} ne peut pas dépasser 100 caractères.")]
