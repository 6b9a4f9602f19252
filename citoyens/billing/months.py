"""Months of billing (à terme échu: a month is billed once it is over) and the business
days of a direct debit; `BillingError`, the French refusal of a run or a credit note."""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

import holidays
from flask import current_app

from citoyens.formatting import de, month_fr, weekday_fr


class BillingError(ValueError):
    """A run or a credit note that cannot be done; the message is French."""


_MONTH = re.compile(r"^\s*([0-9]{4})-([0-9]{1,2})\s*$")


def parse_month(value: str | None) -> date:
    """ "2026-09" → 1 September 2026. BillingError (French) for anything else."""
    match = _MONTH.match(value or "")
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return date(year, month, 1)
    shown = (value or "").strip()[:20]
    raise BillingError(f"Mois invalide : « {shown} ». Indiquez-le ainsi : 2026-09.")


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    following = next_month(first)
    return first, following - timedelta(days=1)


def next_month(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def of_month(month: date) -> str:
    """ "de septembre 2026", "d'octobre 2026": the month after "de", elided before a vowel."""
    return de(month_fr(month))


def check_month_is_over(month: date, today: date) -> None:
    """Invoices bill a past month: its attendance is recorded and a re-run adds nothing,
    so billing a month not over would lose its last days for good."""
    if month.replace(day=1) >= today.replace(day=1):
        raise BillingError(
            f"Le mois {of_month(month)} n'est pas terminé : ses factures s'émettent "
            "à partir du 1er du mois suivant."
        )


@lru_cache(maxsize=16)
def _bank_holidays(year: int) -> frozenset[date]:
    """TARGET2 closing days: no SEPA settlement on them."""
    return frozenset(holidays.financial_holidays("XECB", years=year))


def next_business_day(day: date) -> date:
    """`day` itself when banks settle on it, else the next day they do."""
    while day.weekday() >= 5 or day in _bank_holidays(day.year):
        day += timedelta(days=1)
    return day


def notice_days() -> int:
    """SEPA pre-notification: the family is told of a debit at least this many days before
    it (SEPA_PRENOTIFICATION_DAYS, 14 by default as in the SEPA rulebook; the mandate text
    states it). The invoice is that notice: it gives the amount and the date."""
    return max(1, int(current_app.config.get("SEPA_PRENOTIFICATION_DAYS", 14)))


def planned_debit_day(month: date, debit_day: int) -> date:
    """`debit_day` of the month after the month billed (the last day of a short month)."""
    following = next_month(month)
    last_day = (next_month(following) - timedelta(days=1)).day
    return following.replace(day=max(1, min(debit_day, last_day)))


def debit_date(month: date, issued_on: date, debit_day: int, days: int | None = None) -> date:
    """When an invoice under direct debit is collected: `debit_day` of the month after the
    month billed, or, when that leaves less than the pre-notification's `days` (the
    setting by default) after issue, the first TARGET business day from then on."""
    earliest = issued_on + timedelta(days=notice_days() if days is None else days)
    return next_business_day(max(planned_debit_day(month, debit_day), earliest))


def debit_warning(month: date, issued_on: date, debit_day: int | None = None) -> str | None:
    """What the invoice run tells staff when the configured debit day comes too soon after
    the issue for the pre-notification, and is postponed; None when it is not."""
    if debit_day is None:
        debit_day = current_app.config["DIRECT_DEBIT_DAY"]
    days = notice_days()
    planned = planned_debit_day(month, debit_day)
    if planned >= issued_on + timedelta(days=days):
        return None
    moved = debit_date(month, issued_on, debit_day, days)
    return (
        f"Le prélèvement du {weekday_fr(planned)} serait annoncé moins de {days} jours avant : "
        f"il est reporté au {weekday_fr(moved)}."
    )
