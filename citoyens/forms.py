"""Shared form pieces: French messages and the field filters every form uses."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import wtforms
from wtforms import StringField
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import TelInput


def strip(value):
    return value.strip() if isinstance(value, str) else value


def required(what: str = "Ce champ") -> DataRequired:
    return DataRequired(message=f"{what} est obligatoire.")


def email_field_validators() -> list:
    return [
        required("L'adresse e-mail"),
        no_control_characters("L'adresse e-mail"),
        Length(max=254, message="L'adresse e-mail est trop longue."),
        Email(
            message="Saisissez une adresse e-mail valide, par exemple prenom.nom@exemple.fr.",
            check_deliverability=False,
        ),
    ]


def name_validators(what: str) -> list:
    return [
        required(what),
        no_control_characters(what),
        Length(max=100, message=f"{what} ne peut pas dépasser 100 caractères."),
    ]


# --- Shared pieces for the household forms (and any form that needs them) ----------------

PARIS = ZoneInfo("Europe/Paris")
PHONE_REGION = "FR"
# C0 and C1 control characters; tab, line feed and carriage return only in multi-line text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_id(value: str | None) -> int | None:
    """A database id typed in a URL or a form: ASCII digits within the integer column's
    range, else None ("²".isdigit() is true, and 10**20 overflows PostgreSQL)."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number < 2**31 else None


def today_in_paris() -> date:
    return datetime.now(PARIS).date()


def blank_to_none(value):
    """Form data to model value: an empty or blank string means "not given"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def max_length(limit: int, what: str) -> Length:
    return Length(max=limit, message=f"{what} ne peut pas dépasser {limit} caractères.")


def no_control_characters(what: str = "Ce champ", *, multiline: bool = False):
    """Refuse invisible control characters (NUL and the like) before they reach the database."""
    pattern = _CONTROL if multiline else _CONTROL_SINGLE_LINE

    def check(form, field):
        if isinstance(field.data, str) and pattern.search(field.data):
            raise StopValidation(f"{what} contient des caractères non autorisés.")

    return check


def optional_text(what: str, limit: int, *, multiline: bool = False) -> list:
    """An optional text field: at most `limit` characters, no control characters."""
    return [
        Optional(),
        no_control_characters(what, multiline=multiline),
        max_length(limit, what),
    ]


def required_text(what: str, limit: int) -> list:
    """A required single-line text: "<what> est obligatoire.", at most `limit` characters."""
    return [required(what), no_control_characters(what), max_length(limit, what)]


# --- Numbers ----------------------------------------------------------------------------------

# The most characters a number field parses. A longer value is refused before int() or
# Decimal() sees it: a 4,000-digit integer parses, then overflows in NumberRange (a 500).
NUMBER_MAX_LENGTH = 20
INVALID_NUMBER = "Saisissez un nombre valide, par exemple 12."


def _bounded(field, valuelist) -> None:
    """Refuse a too long value before the field parses it (ValueError, French)."""
    if valuelist and isinstance(valuelist[0], str) and len(valuelist[0]) > NUMBER_MAX_LENGTH:
        field.data = None
        raise ValueError(field.invalid_value_message or INVALID_NUMBER)


class IntegerField(wtforms.IntegerField):
    """WTForms' IntegerField with a bounded input length: every form uses this one."""

    def process_formdata(self, valuelist):
        _bounded(self, valuelist)
        super().process_formdata(valuelist)


class DecimalField(wtforms.DecimalField):
    """WTForms' DecimalField with a bounded input length: every form uses this one."""

    invalid_value_message = None

    def process_formdata(self, valuelist):
        _bounded(self, valuelist)
        super().process_formdata(valuelist)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def past_date(
    what: str = "La date de naissance", *, max_years: int = 120, too_old: str | None = None
):
    """A date not in the future and at most `max_years` years ago (Europe/Paris calendar)."""

    def check(form, field):
        if field.data is None:
            return
        today = today_in_paris()
        if field.data > today:
            raise ValidationError(f"{what} ne peut pas être dans le futur.")
        if field.data < _years_before(today, max_years):
            raise ValidationError(
                too_old or f"{what} ne peut pas remonter à plus de {max_years} ans."
            )

    return check


DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
INVALID_DATE = "Saisissez une date valide, par exemple 03/09/2017."


def normalize_phone(value: str, region: str = PHONE_REGION) -> str:
    """The number in E.164 (+33612345678). Raises ValueError with a French message."""
    message = "Saisissez un numéro de téléphone valide, par exemple 06 12 34 56 78."
    if not value or len(value) > 40:
        raise ValueError(message)
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(message) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(message)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(value: str | None, region: str = PHONE_REGION) -> str:
    """A stored E.164 number as people write it: "06 12 34 56 78", or "+44 20 …" abroad."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return value
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_number(what: str = "Le numéro de téléphone"):
    """Validate a phone number with `phonenumbers` and replace the data by its E.164 form."""

    def check(form, field):
        if not field.data:
            return
        try:
            field.data = normalize_phone(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    return check


class PhoneField(StringField):
    """A phone number: typed any way, stored E.164, shown French style in the form."""

    widget = TelInput()

    def __init__(self, label=None, validators=None, what="Le numéro de téléphone", **kwargs):
        kwargs.setdefault("filters", [strip])
        kwargs.setdefault("render_kw", {"autocomplete": "tel", "inputmode": "tel"})
        if validators is None:
            validators = [
                Optional(),
                no_control_characters(what),
                max_length(40, what),
                phone_number(what),
            ]
        super().__init__(label, validators, **kwargs)

    def post_validate(self, form, validation_stopped):
        # A valid number is shown back French style ("06 12 34 56 78"), not as typed.
        if self.data and not self.errors:
            self.raw_data = None

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return format_phone(self.data)


def optional_email_validators(what: str = "L'adresse e-mail") -> list:
    return [
        Optional(),
        no_control_characters(what),
        max_length(254, what),
        Email(
            message="Saisissez une adresse e-mail valide, par exemple prenom.nom@exemple.fr.",
            check_deliverability=False,
        ),
    ]
