"""The administrators' settings form (/admin/reglages): checks only; the rules and the write
are in citoyens/core/settings.py."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import (
    Email,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from citoyens.billing import bank_details, creditor_id
from citoyens.billing.mandate_forms import NotEchoedField
from citoyens.core import settings
from citoyens.forms import IntegerField, PhoneField, optional_text, required_text, strip

SAISIE_CHOICES = [
    SelectChoice("", "Celui de la configuration du serveur"),
    SelectChoice("T", "T : paiements de test"),
    SelectChoice("X", "X : production, par le portail"),
    SelectChoice("W", "W : production activée par la DGFiP"),
]


REMINDER_MAX_DAYS = 90


def reminder_days(label: str, description: str) -> IntegerField:
    """A number of days, 0 to 90; 0 turns the reminder off, empty means the server's value."""
    return IntegerField(
        label,
        description=description,
        validators=[
            Optional(),
            NumberRange(
                0,
                REMINDER_MAX_DAYS,
                message=f"Indiquez un nombre de jours entre 0 et {REMINDER_MAX_DAYS}.",
            ),
        ],
        invalid_value_message="Indiquez un nombre de jours entier, par exemple 5.",
        render_kw={"inputmode": "numeric"},
    )


def _upper_compact(value):
    return "".join(value.split()).upper() if isinstance(value, str) else value


class SettingsForm(FlaskForm):
    name = StringField(
        "Nom de la commune", filters=[strip], validators=required_text("Le nom de la commune", 120)
    )
    address = StringField(
        "Adresse de la mairie", filters=[strip], validators=optional_text("L'adresse", 255)
    )
    contact_email = StringField(
        "E-mail de contact",
        filters=[strip],
        validators=[
            *optional_text("L'adresse e-mail", 254),
            Email(message="Saisissez une adresse e-mail valide.", check_deliverability=False),
        ],
    )
    phone = PhoneField("Téléphone", what="Le téléphone")
    website = StringField(
        "Site internet",
        filters=[strip],
        validators=[
            *optional_text("Le site internet", 255),
            Regexp(r"https://\S+", message="Le site internet commence par https://."),
        ],
    )
    primary_color = StringField(
        "Couleur principale",
        description="En hexadécimal, par exemple #1f4e8c : le bandeau du portail, en texte blanc.",
        filters=[strip],
        validators=[Optional()],
    )
    logo = FileField(
        "Logo", description="Image PNG ou JPEG, 2 Mo au plus : l'en-tête et l'application."
    )
    remove_logo = BooleanField("Retirer le logo")
    mail_sender_name = StringField(
        "Nom de l'expéditeur des e-mails",
        description="Par exemple « Mairie de Chalonnes » ; l'adresse reste celle du serveur.",
        filters=[strip],
        validators=optional_text("Le nom de l'expéditeur", 100),
    )
    payfip_numcli = StringField(
        "Numéro client PayFiP",
        description="Les 6 chiffres donnés par la DGFiP. Vide : celui de la configuration.",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(r"\d{6}", message="Le numéro client PayFiP compte 6 chiffres."),
        ],
    )
    payfip_saisie = SelectField("Mode PayFiP", choices=SAISIE_CHOICES, default="")
    sepa_creditor_name = StringField(
        "Nom du créancier SEPA",
        filters=[strip],
        validators=optional_text("Le nom du créancier", 70),
    )
    sepa_creditor_iban = NotEchoedField(
        "IBAN du créancier",
        description="Jamais réaffiché. Laissez vide pour garder l'IBAN enregistré.",
        filters=[_upper_compact],
        validators=[Optional()],
    )
    sepa_creditor_bic = StringField(
        "BIC du créancier", filters=[_upper_compact], validators=[Optional()]
    )
    sepa_creditor_id = StringField(
        "Identifiant créancier SEPA (ICS)",
        description="Donné par la Banque de France, par exemple FR72ZZZ123456.",
        filters=[_upper_compact],
        validators=[Optional()],
    )

    invoice_reminder_days_before = reminder_days(
        "Rappel avant l'échéance (en jours)",
        "Un e-mail aux familles qui paient sans prélèvement, ce nombre de jours avant la date "
        "d'échéance d'une facture restant à payer. 0 : pas de rappel.",
    )
    invoice_reminder_days_after = reminder_days(
        "Relance après l'échéance (en jours)",
        "Un e-mail ce nombre de jours après la date d'échéance d'une facture impayée. "
        "0 : pas de relance.",
    )

    def validate_primary_color(self, field):
        if field.data and (problem := settings.color_problem(field.data)):
            raise StopValidation(problem)

    def validate_sepa_creditor_iban(self, field):
        try:
            field.data = bank_details.parse_iban(field.data).compact
        except bank_details.MandateError as exc:
            raise ValidationError(str(exc)) from None

    def validate_sepa_creditor_bic(self, field):
        try:
            field.data = bank_details.parse_bic(field.data)
        except bank_details.MandateError as exc:
            raise ValidationError(str(exc)) from None

    def validate_sepa_creditor_id(self, field):
        if not creditor_id.is_valid(field.data):
            raise ValidationError(
                "Cet identifiant créancier SEPA (ICS) n'est pas valide : vérifiez-le, par "
                "exemple FR72ZZZ123456."
            )
        field.data = creditor_id.normalise(field.data)

    def values(self) -> dict:
        """Column → value; empty text is None; a blank IBAN is None (left unchanged). The
        logo's key is the view's: it stores the file."""
        numbers = set(settings.NUMBERS.values())
        return {
            column: getattr(self, column).data
            if column in numbers
            else getattr(self, column).data or None
            for column in settings.EDITABLE
            if column != "logo_key"
        }
