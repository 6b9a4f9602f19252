"""`flask invoices …`: the monthly invoice run from the command line (cron, deployment).

    flask invoices issue --month 2026-09
    flask invoices issue --month 2026-09 --sans-tarif-ok
    flask invoices remind [--date 2026-10-05]

Prints in French what was issued. When some activities have no tariff for some bands the
run stops before issuing anything, unless --sans-tarif-ok says to bill the rest (those
days are then never billed: a re-run of the month adds nothing). `remind` sends the
reminders due that day (billing/reminders.py), as the morning job does; never twice.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from citoyens.billing import invoice_run, month_plan, months, pricing
from citoyens.billing.tariffs import euros
from citoyens.formatting import month_fr
from citoyens.forms import today_in_paris

invoices_group = AppGroup("invoices", help="Factures : émission mensuelle, rappels.")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def _missing_lines(missing: list[pricing.MissingTariff]) -> list[str]:
    return [
        f"  - {gap.school_year_name} · {gap.activity_name} · "
        f"{gap.band_label or 'aucune tranche définie'} : {_plural(gap.days, 'jour')}, "
        f"{_plural(len(gap.households), 'famille')}"
        for gap in missing
    ]


@invoices_group.command("issue")
@click.option("--month", "month_value", required=True, metavar="AAAA-MM", help="Mois facturé.")
@click.option(
    "--sans-tarif-ok",
    "allow_missing",
    is_flag=True,
    help="Émettre même si des activités n'ont pas de tarif (ces jours ne sont pas facturés).",
)
def issue_command(month_value: str, allow_missing: bool) -> None:
    """Émet les factures d'un mois terminé (une par famille ayant des jours à payer)."""
    try:
        month = months.parse_month(month_value)
        months.check_month_is_over(month, today_in_paris())
    except months.BillingError as error:
        raise click.ClickException(str(error)) from error
    label = month_fr(month)
    if not allow_missing:
        plan = month_plan.plan_month(month)
        if plan.missing_tariffs:
            lines = "\n".join(_missing_lines(plan.missing_tariffs))
            raise click.ClickException(
                f"Activités sans tarif en {label} : aucune facture émise.\n{lines}\n"
                "Complétez les tarifs, ou relancez avec --sans-tarif-ok pour émettre "
                "sans facturer ces jours."
            )
    try:
        result = invoice_run.issue_month(month)
    except months.BillingError as error:
        raise click.ClickException(str(error)) from error
    if result.count:
        click.echo(
            f"{label} : {_plural(result.count, 'facture')} "
            f"émise{'s' if result.count > 1 else ''}, total {euros(result.total_cents)}."
        )
        click.echo(
            f"Par e-mail : {result.emailed} ; sur papier (à imprimer) : {len(result.paper)}"
            + (f" ; e-mail impossible : {result.not_emailed}" if result.not_emailed else "")
            + "."
        )
    else:
        click.echo(f"{label} : aucune nouvelle facture à émettre.")
    if result.already_invoiced:
        click.echo(f"Familles déjà facturées pour ce mois : {result.already_invoiced}.")
    if result.missing_tariffs:
        click.echo("Activités sans tarif (jours non facturés) :")
        click.echo("\n".join(_missing_lines(result.missing_tariffs)))


@invoices_group.command("remind")
@click.option(
    "--date",
    "day_value",
    metavar="AAAA-MM-JJ",
    help="Le jour d'envoi (par défaut aujourd'hui) : les rappels dus ce jour-là.",
)
def remind_command(day_value: str | None) -> None:
    """Envoie les rappels et relances des factures restant à payer (comme la tâche du matin)."""
    from datetime import date

    from citoyens.billing.reminders import send_due_reminders

    today = None
    if day_value:
        try:
            today = date.fromisoformat(day_value.strip())
        except ValueError as error:
            raise click.ClickException(
                f"Date invalide : « {day_value[:20]} ». Indiquez-la ainsi : 2026-09-30."
            ) from error
    run = send_due_reminders(today)
    click.echo(run.summary())
    if run.already:
        click.echo(f"Déjà envoyés par une autre exécution : {run.already}.")
