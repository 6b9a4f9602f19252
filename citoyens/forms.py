"""Shared form pieces: French messages and the field filters every form uses."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import wtforms
from werkzeug.exceptions import BadRequest
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


# --- Query strings ------------------------------------------------------------------------------


class RefusedInput(BadRequest):
    """A value the portal refuses outright: a 400 page with the French reason."""

    def __init__(self, french_message: str):
        super().__init__(french_message)
        self.french_message = french_message


# Dates asked in a URL (?semaine=, ?mois=, ?jour=): a sane range, so that the page's
# neighbours (the week before, the month after) stay far inside Python's dates.
QUERY_YEARS = (1900, 2200)
_QUERY_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_QUERY_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _in_range(year: int, what: str) -> None:
    low, high = QUERY_YEARS
    if not low <= year <= high:
        raise RefusedInput(f"{what} doit être entre {low} et {high}.")


def parse_query_day(value: str | None, what: str = "La date demandée") -> date | None:
    """ "2030-09-04" → that day; blank → None; anything else → RefusedInput (a 400)."""
    value = (value or "").strip()
    if not value:
        return None
    match = _QUERY_DAY.fullmatch(value)
    if not match:
        raise RefusedInput(f"{what} n'est pas une date valide : écrivez-la ainsi, 2030-09-04.")
    _in_range(int(match[1]), what)
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise RefusedInput(f"{what} n'existe pas dans le calendrier.") from exc


def parse_query_week(value: str | None) -> date | None:
    """The Monday of the week of `value` ("2030-09-04"); blank → None; else RefusedInput."""
    day = parse_query_day(value, "La semaine demandée")
    return None if day is None else day - timedelta(days=day.weekday())


def parse_query_month(value: str | None) -> date | None:
    """ "2030-09" → 1 September 2030; blank → None; anything else → RefusedInput."""
    value = (value or "").strip()
    if not value:
        return None
    match = _QUERY_MONTH.fullmatch(value)
    if not match or not 1 <= int(match[2]) <= 12:
        raise RefusedInput("Le mois demandé n'est pas valide : écrivez-le ainsi, 2030-09.")
    _in_range(int(match[1]), "Le mois demandé")
    return date(int(match[1]), int(match[2]), 1)


NUL_REFUSED = "Un champ du formulaire contient des caractères non autorisés : corrigez-le."


def _carries_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return False
    # A loop, not a recursive call per item: a bulk insert binds tens of thousands.
    for item in value:
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict | list | tuple) and _carries_nul(item):
            return True
    return False


def refuse_nul_in_statements(engine) -> None:
    """The last line behind the form validators: a NUL character about to be sent to the
    database (PostgreSQL refuses it in any text: a 500) is refused with a French 400
    instead, on both engines alike, whatever form or field it came through. Fields with a
    `no_control_characters` validator give their own message before this point."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_nul(conn, cursor, statement, parameters, context, executemany):
        if parameters and _carries_nul(parameters):
            raise RefusedInput(NUL_REFUSED)


def refuse_control_characters_in_query() -> None:
    """before_request: a query string (names or values) with a control character, NUL
    above all (PostgreSQL refuses it in any text), is refused with a French 400 page,
    before any view reads it. Tab and line breaks pass (harmless, and browsers drop them
    from addresses); a view keeping a value strips them. Form fields have the same rule
    (`no_control_characters`)."""
    from flask import request

    for key, value in request.args.items(multi=True):
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise RefusedInput("L'adresse de la page contient des caractères non autorisés.")


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
