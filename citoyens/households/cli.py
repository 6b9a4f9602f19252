"""`flask families import FILE [--dry-run]`: the families CSV, as the back office imports it."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.import_csv import ImportFileError, max_bytes, read_csv, too_big_message
from citoyens.households.import_plan import ACTION_LABELS, ImportPlan, plan_import

families_group = AppGroup("families", help="Familles : import depuis un tableur.")


def report_lines(plan: ImportPlan) -> list[str]:
    """The plan as the command prints it: counts, then each family and its lines."""
    counts = plan.counts
    lines = [
        f"Fichier lu en {plan.encoding}, séparateur « {plan.delimiter} ».",
        f"{len(plan.families)} famille(s) : "
        + ", ".join(f"{counts[a]} {ACTION_LABELS[a].lower()}" for a in ACTION_LABELS),
    ]
    if plan.ignored_columns:
        lines.append("Colonnes ignorées : " + ", ".join(plan.ignored_columns))
    for family in plan.families:
        lines.append(f"[{ACTION_LABELS[family.action]}] {family.reference or '(sans référence)'}")
        lines += [f"    {reason}" for reason in family.reasons]
        if family.household_changes:
            lines.append("    foyer : " + ", ".join(family.household_changes))
        for line in family.lines:
            detail = "; ".join(line.reasons or line.changes)
            state = "refusée" if line.reasons else ACTION_LABELS[line.action].lower()
            lines.append(
                f"    ligne {line.line} {line.name} : {state}" + (f" ({detail})" if detail else "")
            )
    return lines


@families_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Afficher le rapport sans rien enregistrer.")
def import_command(path: str, dry_run: bool) -> None:
    """Importe les familles d'un fichier CSV (UTF-8 ou Windows-1252, « ; » ou « , »)."""
    from citoyens.households.import_apply import apply_import

    if os.path.getsize(path) > max_bytes():  # refused before reading it
        raise click.ClickException(too_big_message())
    with open(path, "rb") as handle:
        data = handle.read(max_bytes() + 1)
    try:
        plan = plan_import(read_csv(data), today_in_paris())
    except ImportFileError as error:
        raise click.ClickException(str(error)) from error
    db.session.rollback()
    for line in report_lines(plan):
        click.echo(line)
    if dry_run:
        click.echo("Simulation (--dry-run) : rien n'a été enregistré.")
        return
    result = apply_import(plan)
    click.echo(result.summary())
    for reference, reason in result.failed:
        click.echo(f"Non importée : {reference} : {reason}")
