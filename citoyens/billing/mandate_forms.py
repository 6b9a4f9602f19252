"""Forms of the prélèvement automatique page: sign a SEPA mandate, revoke it.

Both ask for the account's password again (SECURITY.md: changing an IBAN does); the
view checks it. The IBAN is never written back into the page: after an error the
family types it again, so the full IBAN never sits in an HTML response.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, StopValidation, ValidationError

from citoyens.accounts.passwords import MAX_LENGTH
from citoyens.billing import bank_details
from citoyens.forms import no_control_characters, required


class NotEchoedField(StringField):
    """A text field whose value never comes back in the page (like a password field)."""

    def _value(self):
        return ""


def _holder(form, field):
    field.data = bank_details.normalise_holder(field.data)
    problem = bank_details.holder_problem(field.data)
    if problem:
        raise StopValidation(problem)


def _password_field() -> PasswordField:
    return PasswordField(
        "Mot de passe de votre espace famille",
        description="Pour confirmer que c'est bien vous.",
        validators=[
            required("Le mot de passe"),
            Length(max=MAX_LENGTH, message="Mot de passe trop long."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class MandateForm(FlaskForm):
    holder_name = StringField(
        "Titulaire du compte",
        description="Nom et prénom, comme sur votre RIB.",
        validators=[
            required("Le nom du titulaire du compte"),
            no_control_characters("Le nom du titulaire"),
            Length(max=200, message=bank_details.HOLDER_TOO_LONG),
            _holder,
        ],
        render_kw={"autocomplete": "name", "maxlength": bank_details.HOLDER_MAX},
    )
    iban = NotEchoedField(
        "IBAN",
        description=(
            "Il figure sur votre RIB : 27 caractères pour un compte en France, commençant "
            "par FR. Les espaces sont acceptés. Pour votre sécurité, il n'est jamais "
            "réaffiché : en cas d'erreur, saisissez-le de nouveau."
        ),
        validators=[
            required("L'IBAN"),
            no_control_characters("L'IBAN"),
            Length(max=60, message=bank_details.IBAN_INVALID),
        ],
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
            "inputmode": "text",
        },
    )
    bic = StringField(
        "BIC (facultatif)",
        description=(
            "8 ou 11 caractères, sur votre RIB. Laissez vide : nous le trouvons à partir de "
            "l'IBAN pour la plupart des banques."
        ),
        validators=[
            no_control_characters("Le BIC"),
            Length(max=20, message=bank_details.BIC_INVALID),
        ],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )
    consent = BooleanField(
        "J'ai lu le mandat ci-dessus et j'autorise ce prélèvement.",
        validators=[DataRequired(message="Cochez la case pour donner votre accord au mandat.")],
    )
    password = _password_field()

    # Filled by validation: what the mandate will hold.
    iban_compact: str | None = None
    bic_code: str | None = None

    def validate_iban(self, field):
        try:
            self._parsed_iban = bank_details.parse_iban(field.data)
        except bank_details.MandateError as exc:
            self._parsed_iban = None
            raise ValidationError(str(exc)) from None
        self.iban_compact = self._parsed_iban.compact

    def validate_bic(self, field):
        parsed = getattr(self, "_parsed_iban", None)
        try:
            if parsed is not None:
                self.bic_code = bank_details.resolve_bic(parsed, field.data)
            elif field.data and field.data.strip():  # the IBAN's error is shown; check the BIC
                bank_details.parse_bic(field.data)
        except bank_details.MandateError as exc:
            raise ValidationError(str(exc)) from None


class RevokeForm(FlaskForm):
    password = _password_field()
