"""`flask purge [--dry-run]`: the retention purges by hand (the worker runs them daily)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from citoyens import retention


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Delete what has outlived its retention (README « Données personnelles »)."""
    counts = retention.plan() if dry_run else retention.purge()
    labels = retention.labels()
    click.echo("Simulation : rien n'est supprimé." if dry_run else "Purge effectuée.")
    verb = "à supprimer" if dry_run else "supprimés"
    for name, count in counts.items():
        click.echo(f"  {labels[name]} ({name}) : {count} {verb}")
