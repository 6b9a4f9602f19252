"""Tariffs: quotient familial bands per school year, a price per activity and band, the
services' walk-in surcharge. Money is integer cents; euros only on screen ("3,50 €").

Rules are plain functions (no request): `band_for`, `band_problem`, `parse_euros`.
The verbs (`save_band`, `set_prices`, `set_walk_in_surcharge`) flush and leave an audit
event; the caller commits. Prices are read by the invoice run and copied onto the
invoice lines, so changing a price never alters an invoice already issued.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import contains_eager

from citoyens import audit
from citoyens.billing.models import Price, QfBand
from citoyens.billing.money import euros  # noqa: F401 (one formatter for the app)
from citoyens.extensions import db
from citoyens.services.models import Activity, SchoolYear, Service

# The largest price or surcharge staff may type (a day at the crèche stays far below).
MAX_CENTS = 99_999_99
MAX_QF = 100_000
BAD_AMOUNT = "Saisissez un montant en euros, par exemple 3,50."
TOO_MUCH = "Le montant ne peut pas dépasser 99 999,99 €."


def euros_input(cents: int | None) -> str:
    """The value shown back in an input: 350 → "3,50", None → ""."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


_AMOUNT = re.compile(r"^([0-9]{1,7})(?:[.,]([0-9]{1,2}))?$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def parse_euros(value: str | None) -> int:
    """ "3,50", "3.5", "3", "1 234,50 €" → cents. ValueError with a French message otherwise
    (negative amounts, more than two decimals, letters, nothing typed)."""
    text = _SPACES.sub("", (value or "")).removesuffix("€").removesuffix("EUR")
    match = _AMOUNT.match(text)
    if not match:
        raise ValueError(BAD_AMOUNT)
    whole, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
    cents = int(whole) * 100 + int(decimals)
    if cents > MAX_CENTS:
        raise ValueError(TOO_MUCH)
    return cents


# --- Bands ------------------------------------------------------------------------------------


class BandLike(Protocol):
    id: int
    position: int
    label: str
    qf_max: int | None


def band_for(bands: Iterable[BandLike], family_quotient: int | None) -> BandLike | None:
    """The household's band: the first by position whose ceiling is at least its QF;
    an unknown QF, or one above every ceiling, goes to the top band (no ceiling).

    None when the year has no band that fits (no band at all, or no top band and a QF
    above every ceiling): the days are then reported as without tariff.
    """
    ordered = sorted(bands, key=lambda band: band.position)
    top = next((band for band in ordered if band.qf_max is None), None)
    if family_quotient is None:
        return top
    for band in ordered:
        if band.qf_max is not None and family_quotient <= band.qf_max:
            return band
    return top


def band_problem(
    bands: Sequence[BandLike], position: int, qf_max: int | None, band_id: int | None = None
) -> tuple[str, str] | None:
    """Whether a band (new, or `band_id` changed) keeps the year's bands coherent:
    positions unique, ceilings rising with the position, only the last band without one.
    Returns (field name, French message) for the first problem, or None."""
    others = [band for band in bands if band.id != band_id]
    if any(band.position == position for band in others):
        return "position", f"Une autre tranche occupe déjà la position {position}."
    for band in others:
        if band.position < position:
            if band.qf_max is None:
                return (
                    "position",
                    f"La tranche {band.position} « {band.label} » n'a pas de plafond : "
                    "elle doit rester la dernière.",
                )
            if qf_max is not None and qf_max <= band.qf_max:
                return (
                    "qf_max",
                    f"Le plafond doit dépasser celui de la tranche {band.position} "
                    f"({band.qf_max} €).",
                )
        elif qf_max is None:
            return (
                "qf_max",
                "Seule la dernière tranche peut être sans plafond : indiquez un plafond "
                f"(la tranche {band.position} vient après).",
            )
        elif band.qf_max is not None and band.qf_max <= qf_max:
            return (
                "qf_max",
                f"Le plafond doit rester sous celui de la tranche {band.position} "
                f"({band.qf_max} €).",
            )
    return None


def bands_of(school_year_id: int) -> list[QfBand]:
    return list(
        db.session.scalars(
            select(QfBand).where(QfBand.school_year_id == school_year_id).order_by(QfBand.position)
        )
    )


def save_band(
    school_year: SchoolYear,
    *,
    actor,
    position: int,
    label: str,
    qf_max: int | None,
    band: QfBand | None = None,
) -> QfBand:
    """Add a band to the year, or change `band`. The caller checked `band_problem`."""
    if band is None:
        band = QfBand(school_year_id=school_year.id)
        db.session.add(band)
        action = "tariff.band_created"
    else:
        action = "tariff.band_updated"
    band.position, band.label, band.qf_max = position, label, qf_max
    db.session.flush()
    audit.record(
        action,
        actor=actor,
        target=f"qf_band:{band.id}",
        details=f"{school_year.name} position:{position} qf_max:{qf_max}",
    )
    return band


# --- Prices -----------------------------------------------------------------------------------


def prices_of(band_ids: Iterable[int]) -> dict[tuple[int, int], int]:
    """(activity id, band id) → price in cents, for the bands given. One query."""
    band_ids = list(band_ids)
    if not band_ids:
        return {}
    rows = db.session.execute(
        select(Price.activity_id, Price.band_id, Price.amount_cents).where(
            Price.band_id.in_(band_ids)
        )
    )
    return {(activity_id, band_id): cents for activity_id, band_id, cents in rows}


def set_prices(
    activity: Activity, bands: Sequence[QfBand], amounts: dict[int, int | None], *, actor
) -> int:
    """Set the activity's price for each band of `bands` (band id → cents; None removes
    the price: the activity then has no tariff for that band). Returns how many changed."""
    current = {
        price.band_id: price
        for price in db.session.scalars(
            select(Price).where(
                Price.activity_id == activity.id,
                Price.band_id.in_([band.id for band in bands]),
            )
        )
    }
    changed = []
    for band in bands:
        cents = amounts.get(band.id)
        price = current.get(band.id)
        if cents is None:
            if price is not None:
                db.session.execute(delete(Price).where(Price.id == price.id))
                changed.append(f"{band.position}:-")
        elif price is None:
            db.session.add(Price(activity_id=activity.id, band_id=band.id, amount_cents=cents))
            changed.append(f"{band.position}:{cents}")
        elif price.amount_cents != cents:
            price.amount_cents = cents
            changed.append(f"{band.position}:{cents}")
    db.session.flush()
    if changed:
        audit.record(
            "tariff.prices_updated",
            actor=actor,
            target=f"activity:{activity.id}",
            details=" ".join(changed),
        )
    return len(changed)


def set_walk_in_surcharge(service: Service, cents: int, *, actor) -> bool:
    """The amount added to the unit price for a child present without a reservation."""
    if service.walk_in_surcharge_cents == cents:
        return False
    service.walk_in_surcharge_cents = cents
    db.session.flush()
    audit.record(
        "tariff.surcharge_updated", actor=actor, target=f"service:{service.id}", details=str(cents)
    )
    return True


# --- The tariffs page -------------------------------------------------------------------------


@dataclass
class TariffRow:
    activity: Activity
    prices: list[int | None]  # one per band, in the bands' order

    @property
    def complete(self) -> bool:
        return all(price is not None for price in self.prices)


@dataclass
class ServiceTariffs:
    service: Service
    rows: list[TariffRow]


@dataclass
class TariffGrid:
    year: SchoolYear
    bands: list[QfBand]
    services: list[ServiceTariffs]

    @property
    def missing(self) -> int:
        """Active activities without a price for at least one band."""
        return sum(
            1
            for group in self.services
            for row in group.rows
            if row.activity.active and not row.complete
        )


def tariff_grid(year: SchoolYear) -> TariffGrid:
    """Bands of the year and, per service, each activity's price in each band. Three
    queries whatever the number of activities."""
    bands = bands_of(year.id)
    prices = prices_of(band.id for band in bands)
    activities = db.session.scalars(
        select(Activity)
        .join(Service, Service.id == Activity.service_id)
        .options(contains_eager(Activity.service))
        .order_by(Service.name, Activity.active.desc(), Activity.start_time, Activity.name)
    ).all()
    groups: dict[int, ServiceTariffs] = {}
    for activity in activities:
        group = groups.setdefault(activity.service_id, ServiceTariffs(activity.service, []))
        group.rows.append(
            TariffRow(activity, [prices.get((activity.id, band.id)) for band in bands])
        )
    return TariffGrid(year, bands, list(groups.values()))
