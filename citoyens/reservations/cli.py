"""`flask calendar …`: holidays and opening days from the command line (cron, deployment).

    flask calendar seed-holidays --year 2026-2027
    flask calendar generate --year 2026-2027

Without --year, every school year set up. Counts are printed in French.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from citoyens import audit
from citoyens.extensions import db
from citoyens.reservations import closures
from citoyens.reservations.calendar import seed_holidays
from citoyens.services.models import SchoolYear
from citoyens.transactions import write_transaction

calendar_group = AppGroup(
    "calendar", help="Calendrier : jours fériés, vacances, jours d'ouverture."
)

YEAR_OPTION = click.option(
    "--year",
    "year_name",
    metavar="AAAA-AAAA",
    help="Année scolaire, par exemple 2026-2027 (toutes les années si absent).",
)


def school_years(year_name: str | None) -> list[SchoolYear]:
    """The school year named, or all of them; a clear error for an unknown name."""
    years = list(db.session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on)))
    if year_name is None:
        if not years:
            raise click.ClickException("Aucune année scolaire n'est définie.")
        return years
    wanted = [year for year in years if year.name == year_name.strip()]
    if not wanted:
        known = ", ".join(year.name for year in years) or "aucune"
        raise click.ClickException(
            f"Année scolaire inconnue : « {year_name} ». Années définies : {known}."
        )
    return wanted


@calendar_group.command("seed-holidays")
@YEAR_OPTION
def seed_holidays_command(year_name: str | None) -> None:
    """Ajoute les jours fériés et vacances scolaires (zone B) publiés qui manquent."""
    for year in school_years(year_name):

        def work(year=year):
            added = seed_holidays(year)
            audit.record(
                "holiday.imported", target=f"school_year:{year.id}", details=f"added:{added}"
            )
            return added

        added = write_transaction(work)
        click.echo(f"{year.name} : {added} jour(s) férié(s) ou période(s) de vacances ajouté(s).")


@calendar_group.command("generate")
@YEAR_OPTION
def generate_command(year_name: str | None) -> None:
    """Calcule les jours d'ouverture ; annule les réservations des jours fermés."""
    for year in school_years(year_name):

        def work(year=year):
            result = closures.recalculate([year])
            audit.record(
                "calendar.generated",
                target=f"school_year:{year.id}",
                details=f"{result.generated} cancelled:{len(result.cancelled)}",
            )
            return result

        result = write_transaction(work)
        if result.cancelled:
            with closures.mail_context() as link:
                closures.tell_families(result.cancelled, link)
            db.session.commit()
        click.echo(f"{year.name} : {result.summary()}")
