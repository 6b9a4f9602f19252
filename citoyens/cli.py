"""Command-line tools: `flask seed-demo`, `flask users create-staff`, `flask mail resend`,
`flask jobs worker`, `flask jobs status`, `flask crypto generate-key|rotate`
and `flask purge`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from citoyens.bench_data import bench_data_command
from citoyens.billing.cli import invoices_group
from citoyens.billing.payments_cli import payments_group
from citoyens.extensions import db
from citoyens.households.cli import families_group
from citoyens.privacy.cli import purge_command
from citoyens.reservations.cli import calendar_group


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(users)
    app.cli.add_command(mail_group)
    app.cli.add_command(calendar_group)
    app.cli.add_command(invoices_group)
    app.cli.add_command(payments_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(crypto_group)
    app.cli.add_command(purge_command)
    app.cli.add_command(families_group)
    app.cli.add_command(bench_data_command)


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has accounts.")
def seed_demo(if_empty: bool) -> None:
    """Load the Chalonnes-sur-Loire demo data (idempotent)."""
    from citoyens.accounts.models import User
    from citoyens.demo import seed

    if if_empty and db.session.scalar(select(User.id).limit(1)) is not None:
        click.echo("Database already has data: demo not loaded.")
        return
    created = seed()
    db.session.commit()
    click.echo(f"Demo data ready ({created} new records).")


users = AppGroup("users", help="Manage staff and administrator accounts.")


@users.command("create-staff")
@click.argument("email")
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--admin", is_flag=True, help="Administrator: every service, settings, billing.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted when not given.",
)
def create_staff_command(email, first_name, last_name, admin, password) -> None:
    """Create an agent's account (or an administrator's with --admin)."""
    from citoyens.accounts.operations import create_staff, find_user
    from citoyens.accounts.passwords import password_problem

    if find_user(email) is not None:
        raise click.ClickException(f"Un compte existe déjà pour {email}.")
    problem = password_problem(password, email)
    if problem:
        raise click.ClickException(problem)
    user = create_staff(email, first_name, last_name, password, admin=admin)
    db.session.commit()
    click.echo(f"Compte {user.role} créé : {user.email}")


mail_group = AppGroup("mail", help="Outgoing e-mail.")


@mail_group.command("resend")
def resend_failed() -> None:
    """Put every failed message that can be resent back in the outbox (the worker sends)."""
    from citoyens.core.models import MailMessage
    from citoyens.mail import resend

    failed = db.session.scalars(select(MailMessage).where(MailMessage.status == "failed")).all()
    sent = sum(resend(message) for message in failed)
    db.session.commit()
    click.echo(f"{sent} message(s) renvoyé(s) sur {len(failed)} en échec.")


jobs_group = AppGroup("jobs", help="Tâches de fond (file d'attente huey).")


@jobs_group.command("worker")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Tâches exécutées en parallèle (threads).",
)
@click.option("--no-periodic", is_flag=True, help="Ne pas lancer les tâches périodiques ici.")
def jobs_worker(workers: int, no_periodic: bool) -> None:
    """Exécute les tâches de fond (e-mails, émission des factures, tâches périodiques).

    Plusieurs workers peuvent tourner, sur plusieurs machines, avec REDIS_URL (ou JOBS_URL)
    et DATABASE_URL communs ; un seul suffit pour les tâches périodiques (--no-periodic
    sur les autres)."""
    from citoyens.jobs import make_consumer

    try:
        consumer = make_consumer(workers, periodic=not no_periodic)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error
    consumer.run()


@jobs_group.command("status")
def jobs_status() -> None:
    """Affiche les tâches en attente et l'état de la boîte d'envoi."""
    from citoyens.jobs import counts
    from citoyens.mail import waiting_counts

    queue = counts()
    click.echo(f"Tâches en attente : {queue['queued']}")
    click.echo(f"Tâches programmées : {queue['scheduled']}")
    mail = waiting_counts()
    click.echo(
        f"E-mails : {mail['pending']} à envoyer, {mail['sending']} en cours, "
        f"{mail['failed']} en échec"
    )


crypto_group = AppGroup("crypto", help="Chiffrement des données personnelles (IBAN).")


@crypto_group.command("generate-key")
def generate_key_command() -> None:
    """Print a new key for DATA_ENCRYPTION_KEYS (put it first, keep the old one after)."""
    from citoyens.crypto import generate_key

    click.echo(generate_key())


@crypto_group.command("rotate")
def rotate_command() -> None:
    """Re-encrypt every stored IBAN with the first key of DATA_ENCRYPTION_KEYS (and encrypt
    any still in clear). Idempotent: run it again, it changes nothing."""
    from citoyens.crypto import DecryptionError, EncryptionKeyError, encrypt_existing_ibans
    from citoyens.transactions import write_transaction

    try:
        result = write_transaction(lambda: encrypt_existing_ibans(db.session.connection()))
    except (DecryptionError, EncryptionKeyError) as exc:  # rolled back: nothing changed
        raise click.ClickException(str(exc)) from None
    click.echo(str(result))
