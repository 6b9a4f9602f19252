"""The commune's settings as the whole app reads them: the `Commune` row edited by
administrators in /admin/reglages, over the environment's settings (citoyens/config.py).

`current()` is the one accessor: pages, the PWA manifest, e-mails, invoice PDFs, online
payment and the SEPA export read the same values. One query per request (cached in `g`).
A column left empty means "the environment's value".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import filetype
from flask import current_app, g, has_app_context
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from citoyens import audit
from citoyens.core.models import Commune
from citoyens.database import utcnow
from citoyens.documents.storage import get_storage, new_key
from citoyens.documents.uploads import UploadError, check_upload
from citoyens.extensions import db

DEFAULT_PRIMARY_COLOR = "#1f4e8c"
MIN_CONTRAST = 4.5  # WCAG AA, normal text (RGAA criterion 3.2): white text on the colour

# Environment setting → the Commune column that, when set, takes its place.
OVERRIDES = {
    "COMMUNE_NAME": "name",
    "PAYFIP_NUMCLI": "payfip_numcli",
    "PAYFIP_SAISIE": "payfip_saisie",
    "SEPA_CREDITOR_NAME": "sepa_creditor_name",
    "SEPA_CREDITOR_IBAN": "sepa_creditor_iban",
    "SEPA_CREDITOR_BIC": "sepa_creditor_bic",
    "SEPA_CREDITOR_ID": "sepa_creditor_id",
}
# Whole numbers where 0 is a value (not "empty"): the environment's setting → the column.
NUMBERS = {
    "INVOICE_REMINDER_DAYS_BEFORE": "invoice_reminder_days_before",
    "INVOICE_REMINDER_DAYS_AFTER": "invoice_reminder_days_after",
}
# Columns left unchanged when given None: the IBAN (never shown back, shown masked; blank
# means unchanged) and the logo (no new file means unchanged).
KEPT_WHEN_BLANK = frozenset({"sepa_creditor_iban", "logo_key"})
REMOVE_LOGO = ""  # the `logo_key` value that removes the logo
LOGO_MAX_SIZE = 2 * 1024 * 1024
LOGO_TYPES = {"image/png", "image/jpeg"}
LOGO_REFUSED = "Le logo doit être une image PNG ou JPEG de 2 Mo au plus."
EDITABLE = (
    "name",
    "address",
    "contact_email",
    "phone",
    "website",
    "primary_color",
    "mail_sender_name",
    "logo_key",
    "payfip_numcli",
    "payfip_saisie",
    "sepa_creditor_name",
    "sepa_creditor_iban",
    "sepa_creditor_bic",
    "sepa_creditor_id",
    *NUMBERS.values(),
)


@dataclass(frozen=True)
class Settings:
    name: str
    address: str | None = None
    contact_email: str | None = None
    phone: str | None = None
    website: str | None = None
    primary_color: str = DEFAULT_PRIMARY_COLOR
    mail_sender_name: str | None = None
    logo_key: str | None = None
    # The environment's settings named in OVERRIDES and NUMBERS, the commune's values over them.
    values: dict = field(default_factory=dict)

    def __getitem__(self, name: str):
        return self.values[name]


def commune() -> Commune | None:
    """The commune's row (the first one), if any. One query."""
    return db.session.scalar(select(Commune).order_by(Commune.id).limit(1))


def build(config, row: Commune | None) -> Settings:
    """The settings from the environment's `config` and the commune's row (no query)."""
    values = {name: config.get(name) for name in (*OVERRIDES, *NUMBERS)}
    if row is not None:
        for name, column in OVERRIDES.items():
            if getattr(row, column):
                values[name] = getattr(row, column)
        for name, column in NUMBERS.items():
            if getattr(row, column) is not None:
                values[name] = getattr(row, column)
    if row is None:
        return Settings(name=values["COMMUNE_NAME"], values=values)
    return Settings(
        name=values["COMMUNE_NAME"],
        address=row.address,
        contact_email=row.contact_email,
        phone=row.phone,
        website=row.website,
        primary_color=row.primary_color or DEFAULT_PRIMARY_COLOR,
        mail_sender_name=row.mail_sender_name,
        logo_key=row.logo_key,
        values=values,
    )


def current() -> Settings:
    """The settings of this request (one query, then cached for the request)."""
    cached = g.get("_commune_settings") if has_app_context() else None
    if cached is None:
        try:
            row = commune()
        except SQLAlchemyError:  # an error page while the database is failing: the defaults
            return build(current_app.config, None)
        cached = build(current_app.config, row)
        if has_app_context():
            g._commune_settings = cached
    return cached


def forget() -> None:
    """Drop the request's cached settings (after a change)."""
    if has_app_context():
        g.pop("_commune_settings", None)


def merged_config(config) -> dict:
    """`config` with the commune's values over the settings named in OVERRIDES."""
    return {**config, **current().values}


# --- Rules --------------------------------------------------------------------------------------

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_with_white(color: str) -> float:
    """The WCAG contrast ratio of white text on `color` ("#1f4e8c" → 8.4)."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _channel(red) + 0.7152 * _channel(green) + 0.0722 * _channel(blue)
    return 1.05 / (luminance + 0.05)


def color_problem(value: str) -> str | None:
    """Why this colour cannot be the portal's, in French; None when it can."""
    if not _HEX.fullmatch(value):
        return "La couleur doit s'écrire en hexadécimal, par exemple #1f4e8c."
    ratio = contrast_with_white(value)
    if ratio < MIN_CONTRAST:
        return (
            f"Cette couleur est trop claire : le texte blanc n'y est pas lisible (contraste "
            f"{ratio:.1f}:1, il faut au moins {MIN_CONTRAST}:1 pour l'accessibilité). "
            "Choisissez une couleur plus foncée."
        )
    return None


def darker(color: str, factor: float = 0.72) -> str:
    """The same hue, darker (hover and pressed states): "#1f4e8c" → "#163865"."""
    channels = (round(int(color[i : i + 2], 16) * factor) for i in (1, 3, 5))
    return "#" + "".join(f"{value:02x}" for value in channels)


def stylesheet(color: str) -> str:
    """The commune's colours over the portal's stylesheet (served as /commune.css: the CSP
    allows no inline style)."""
    return f":root {{ --blue: {color}; --blue-dark: {darker(color)}; }}\n"


def masked_iban(value: str | None) -> str:
    """ "FR7630001007941234567890185" → "FR76 •••• 0185"; nothing → ""."""
    if not value:
        return ""
    return f"{value[:4]} •••• {value[-4:]}"


def store_logo(data: bytes, filename: str | None) -> str:
    """Check an uploaded logo like a family's document (content, not the name; re-encoded)
    and store it: its new storage key. UploadError (French) when refused."""
    if not data or len(data) > LOGO_MAX_SIZE or filetype.guess_mime(data) not in LOGO_TYPES:
        raise UploadError(LOGO_REFUSED)
    checked = check_upload(data, filename)
    if checked.content_type not in LOGO_TYPES:
        raise UploadError(LOGO_REFUSED)
    key = new_key(checked.extension)
    get_storage().save(key, checked.data)
    return key


def logo_content_type(key: str) -> str:
    return "image/png" if key.endswith(".png") else "image/jpeg"


def save(values: dict, actor) -> list[str]:
    """Write the commune's settings (`values`: column → value) and return the names of the
    columns changed. A KEPT_WHEN_BLANK column given None is left unchanged; `logo_key`
    REMOVE_LOGO removes the logo. The change is audited without any value; the caller
    commits."""
    row = commune()
    if row is None:
        row = Commune(name="")  # every value given counts as changed
        db.session.add(row)
    changed = []
    for column in EDITABLE:
        if column not in values:
            continue
        value = values[column]
        if column in KEPT_WHEN_BLANK and value is None:
            continue
        if column == "logo_key" and value == REMOVE_LOGO:
            value = None
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed.append(column)
    if not row.name:
        row.name = current_app.config["COMMUNE_NAME"]
    if changed:
        row.updated_at = utcnow()
        audit.record("settings.updated", actor=actor, target="commune", details=", ".join(changed))
    forget()
    return changed
