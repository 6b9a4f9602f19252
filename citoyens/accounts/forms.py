"""Account forms. Every message is in French; nothing posted beyond these fields is read."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import Length, ValidationError

from citoyens.accounts.passwords import MAX_LENGTH, password_problem
from citoyens.forms import (
    email_field_validators,
    name_validators,
    no_control_characters,
    required,
    strip,
)


class ButtonForm(FlaskForm):
    """A form that is only a button: CSRF token and nothing else."""


class LoginForm(FlaskForm):
    email = EmailField(
        "Identifiant",
        description="Votre adresse e-mail",
        filters=[strip],
        validators=[
            required("L'identifiant"),
            no_control_characters("L'identifiant"),
            Length(max=254, message="Identifiant trop long."),
        ],
        render_kw={"autocomplete": "username", "inputmode": "email", "autocapitalize": "none"},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[
            required("Le mot de passe"),
            Length(max=MAX_LENGTH, message="Mot de passe trop long."),
        ],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Se souvenir de moi")


class NewPasswordMixin:
    """A new password checked against the policy (length, common passwords)."""

    def validate_password(self, field):
        email = getattr(getattr(self, "email", None), "data", None)
        problem = password_problem(field.data or "", email)
        if problem:
            raise ValidationError(problem)


def new_password_field(label: str = "Mot de passe") -> PasswordField:
    return PasswordField(
        label,
        description="12 caractères au moins. Une phrase facile à retenir convient très bien.",
        validators=[required("Le mot de passe")],
        render_kw={"autocomplete": "new-password", "minlength": 12, "maxlength": MAX_LENGTH},
    )


class SignupForm(NewPasswordMixin, FlaskForm):
    first_name = StringField(
        "Prénom",
        filters=[strip],
        validators=name_validators("Le prénom"),
        render_kw={"autocomplete": "given-name"},
    )
    last_name = StringField(
        "Nom",
        filters=[strip],
        validators=name_validators("Le nom"),
        render_kw={"autocomplete": "family-name"},
    )
    email = EmailField(
        "Adresse e-mail",
        filters=[strip],
        validators=email_field_validators(),
        render_kw={"autocomplete": "email", "inputmode": "email", "autocapitalize": "none"},
    )
    password = new_password_field()


class EmailOnlyForm(FlaskForm):
    email = EmailField(
        "Adresse e-mail",
        filters=[strip],
        validators=email_field_validators(),
        render_kw={"autocomplete": "email", "inputmode": "email", "autocapitalize": "none"},
    )


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    password = new_password_field("Nouveau mot de passe")


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField(
        "Mot de passe actuel",
        validators=[required("Le mot de passe actuel"), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    password = new_password_field("Nouveau mot de passe")


class ChangeEmailForm(FlaskForm):
    email = EmailField(
        "Nouvelle adresse e-mail",
        filters=[strip],
        validators=email_field_validators(),
        render_kw={"autocomplete": "email", "inputmode": "email", "autocapitalize": "none"},
    )
    current_password = PasswordField(
        "Mot de passe actuel",
        # Its own id: the password form on the same page has a `current_password` too.
        id="email-current-password",
        validators=[required("Le mot de passe actuel"), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
