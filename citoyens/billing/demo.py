"""Demo tariffs, called by citoyens.demo.seed after the reservations (idempotent).

Five QF bands for each demo school year, a plausible price per band for every demo
activity, a 2 € walk-in surcharge for the APS and the canteen, and the activities'
accounting codes (the accounting export). What staff changed
stays: a year that has bands gets none, an activity keeps the prices it has, and the
surcharges are only set the first time tariffs are seeded.
"""

from __future__ import annotations

from sqlalchemy import select

from citoyens.billing.models import Price, QfBand
from citoyens.extensions import db
from citoyens.services.models import Activity, SchoolYear, Service

DEMO_YEARS = ("2025-2026", "2026-2027", "2027-2028")

# (label, qf_max) from the lowest QF to the top band (unknown QF too).
DEMO_BANDS = [
    ("Tranche 1 (QF ≤ 500 €)", 500),
    ("Tranche 2 (QF 501 à 800 €)", 800),
    ("Tranche 3 (QF 801 à 1 100 €)", 1100),
    ("Tranche 4 (QF 1 101 à 1 500 €)", 1500),
    ("Tranche 5 (QF > 1 500 € ou inconnu)", None),
]

# (service code, activity name) → price per band in cents, lowest QF first.
DEMO_PRICES = {
    ("aps", "Accueil du matin"): (80, 115, 150, 180, 210),
    ("aps", "Accueil du soir"): (120, 170, 220, 270, 320),
    ("restauration", "Repas du midi"): (120, 250, 320, 380, 420),
    ("goulidons", "Mercredi journée"): (400, 700, 1000, 1300, 1600),
    ("goulidons", "Mercredi demi-journée"): (200, 350, 500, 650, 800),
    ("goulidons", "Vacances journée"): (450, 750, 1050, 1350, 1650),
    # The crèche is priced by the CNAF hourly "taux d'effort" (DOMAIN.md): until that is
    # modelled, a daily price stands in for it.
    ("multiaccueil", "Accueil régulier"): (900, 1400, 2000, 2600, 3200),
}

DEMO_SURCHARGES = {"aps": 200, "restauration": 200}

# Revenue accounts of the accounting export (M57: 7067 periscolaire and canteen, 70632
# leisure centre, 7066 social services such as the crèche), with the service's short name.
DEMO_ACCOUNTING_CODES = {
    ("aps", "Accueil du matin"): "7067-APS",
    ("aps", "Accueil du soir"): "7067-APS",
    ("restauration", "Repas du midi"): "7067-REST",
    ("goulidons", "Mercredi journée"): "70632-ALSH",
    ("goulidons", "Mercredi demi-journée"): "70632-ALSH",
    ("goulidons", "Vacances journée"): "70632-ALSH",
    ("multiaccueil", "Accueil régulier"): "7066-EAJE",
}


def seed_demo() -> int:
    """Bands, prices and surcharges of the demo; how many records were added."""
    created = 0
    first_time = db.session.scalar(select(QfBand.id).limit(1)) is None
    years = db.session.scalars(select(SchoolYear).where(SchoolYear.name.in_(DEMO_YEARS))).all()
    activities = {
        (code, activity.name): activity
        for activity, code in db.session.execute(
            select(Activity, Service.code).join(Service, Service.id == Activity.service_id)
        )
    }
    for year in years:
        bands = list(
            db.session.scalars(
                select(QfBand).where(QfBand.school_year_id == year.id).order_by(QfBand.position)
            )
        )
        if not bands:
            for position, (label, qf_max) in enumerate(DEMO_BANDS, start=1):
                band = QfBand(school_year_id=year.id, position=position, label=label, qf_max=qf_max)
                db.session.add(band)
                bands.append(band)
                created += 1
            db.session.flush()
        if len(bands) != len(DEMO_BANDS):
            continue  # staff reshaped this year's bands: their prices are theirs to set
        priced = set(
            db.session.execute(
                select(Price.activity_id, Price.band_id).where(
                    Price.band_id.in_([band.id for band in bands])
                )
            ).all()
        )
        for key, amounts in DEMO_PRICES.items():
            activity = activities.get(key)
            if activity is None:
                continue
            for band, cents in zip(bands, amounts, strict=True):
                if (activity.id, band.id) not in priced:
                    db.session.add(
                        Price(activity_id=activity.id, band_id=band.id, amount_cents=cents)
                    )
                    created += 1
    for key, code in DEMO_ACCOUNTING_CODES.items():
        activity = activities.get(key)
        if activity is not None and activity.accounting_code is None:
            activity.accounting_code = code  # staff's own codes stay
    if first_time:
        for service in db.session.scalars(select(Service).where(Service.code.in_(DEMO_SURCHARGES))):
            service.walk_in_surcharge_cents = DEMO_SURCHARGES[service.code]
    db.session.flush()
    return created
