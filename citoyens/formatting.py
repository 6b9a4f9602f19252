"""French formatting for templates: dates in Paris time, phones, elapsed time.

Registered once as Jinja filters by create_app, for every domain's pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

from babel.dates import get_day_names, get_month_names
from babel.numbers import format_decimal
from flask import Flask

from citoyens.forms import PARIS, format_phone


def _paris(value: datetime) -> datetime:
    if value.tzinfo is None:  # the models always give aware UTC; be lenient with others
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS)


def datetime_fr(value: datetime | None) -> str:
    """26/11/2026 à 14:05, in Paris time."""
    if value is None:
        return ""
    return _paris(value).strftime("%d/%m/%Y à %H:%M")


def date_fr(value: date | datetime | None) -> str:
    """26/11/2026 (a timestamp is first moved to Paris time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _paris(value)
    return value.strftime("%d/%m/%Y")


def since_fr(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, roughly: "il y a 5 min", "il y a 3 h", "hier", "il y a 4 jours"."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 60:
        return "à l'instant"
    if seconds < 3600:
        return f"il y a {seconds // 60} min"
    if seconds < 86400:
        return f"il y a {seconds // 3600} h"
    days = (_paris(now).date() - _paris(value).date()).days
    if days <= 1:
        return "hier"
    if days < 60:
        return f"il y a {days} jours"
    return f"il y a {days // 30} mois"


@lru_cache(maxsize=1)
def _names() -> tuple[list[str], list[str], list[str], list[str]]:
    """French day and month names from Babel's CLDR data, read once per process: Babel's
    pattern formatting costs tens of microseconds a date, and a calendar shows hundreds.
    Monday first (date.weekday()); months from index 1. The format context, as the
    patterns "EEEE d MMMM" and "EEE d MMM" use (tests compare with Babel)."""
    days = [
        get_day_names(width, context="format", locale="fr_FR") for width in ("wide", "abbreviated")
    ]
    months = [
        get_month_names(width, context="format", locale="fr_FR")
        for width in ("wide", "abbreviated")
    ]
    return (
        [days[0][n] for n in range(7)],
        [days[1][n] for n in range(7)],
        [""] + [months[0][n] for n in range(1, 13)],
        [""] + [months[1][n] for n in range(1, 13)],
    )


def day_fr(value: date | None) -> str:
    """mardi 8 décembre 2026 (French CLDR names, from Babel)."""
    if value is None:
        return ""
    return f"{weekday_fr(value)} {value.year}"


def weekday_fr(value: date | None) -> str:
    """mardi 8 décembre"""
    if value is None:
        return ""
    days, _, months, _ = _names()
    return f"{days[value.weekday()]} {value.day} {months[value.month]}"


def short_day_fr(value: date | None) -> str:
    """mar. 8 déc."""
    if value is None:
        return ""
    _, days, _, months = _names()
    return f"{days[value.weekday()]} {value.day} {months[value.month]}"


def month_fr(value: date | None) -> str:
    """décembre 2026"""
    if value is None:
        return ""
    return f"{_names()[2][value.month]} {value.year}"


def deadline_fr(value: datetime | None) -> str:
    """sam. 5 déc. à 7h30, in Paris time."""
    if value is None:
        return ""
    local = _paris(value)
    return f"{short_day_fr(local)} à {local.hour}h{local.minute:02d}"


def phone_fr(value: str | None) -> str:
    """+33612345678 → 06 12 34 56 78."""
    return format_phone(value)


# "de" elides before a vowel or a mute h: "d'Emma", "d'Hugo", "d'octobre", "d'Accueil".
ELIDING = "aeiouàâäéèêëîïôöùûüœæh"


def de(text: str | None) -> str:
    """ "Emma" → "d'Emma", "Léa" → "de Léa", "octobre 2026" → "d'octobre 2026"."""
    text = text or ""
    return f"d'{text}" if text[:1].lower() in ELIDING else f"de {text}"


def sexed(person, masculine: str, feminine: str, unknown: str) -> str:
    """The word agreeing with the person ("inscrit"/"inscrite"), or a wording with no
    agreement when the sex is not known: never "inscrit(e)"."""
    sex = getattr(person, "sex", None)
    return feminine if sex == "F" else masculine if sex == "M" else unknown


def iso(value: datetime | date | None) -> str:
    """For `<time datetime>`: ISO 8601 to the second (HTML allows at most 3 decimals)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.replace(microsecond=0)
    return value.isoformat()


def number_fr(value: int) -> str:
    """12345 → "12 345" (French digit grouping, a narrow no-break space)."""
    return format_decimal(value, locale="fr_FR")


def register(app: Flask) -> None:
    app.add_template_global(sexed, "sexed")
    for func in (
        de,
        iso,
        datetime_fr,
        date_fr,
        since_fr,
        phone_fr,
        day_fr,
        weekday_fr,
        short_day_fr,
        month_fr,
        deadline_fr,
        number_fr,
    ):
        app.add_template_filter(func, func.__name__)
