"""`flask payments check-pending`: ask the bank about attempts still "pending".

An attempt stays pending when the parent left the bank's page without paying and no
notification came (PayFiP reports an abandonment only after a while). Run it from cron
(every hour, say): each answer is applied exactly as a notification would be, so a
payment is recorded once and the receipt sent once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import and_, or_, select

from citoyens.billing.models import ATTEMPT_STATUSES, PaymentAttempt
from citoyens.billing.payfip import BankUnavailable
from citoyens.billing.payments import check_attempt
from citoyens.database import utcnow
from citoyens.extensions import db

payments_group = AppGroup("payments", help="Paiements en ligne.")


# Attempts closed here past their time ("expired") are asked about for this long too: the
# bank may still say "paid" (PayFiP gives its final word within a few hours).
EXPIRED_CHECKED_FOR = timedelta(days=1)


def pending_attempts(older_than: timedelta) -> list[int]:
    """Attempts sent to the bank and still pending after `older_than`, and those expired
    here without the bank's final word in the last day; oldest first."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(PaymentAttempt.id)
            .where(
                PaymentAttempt.bank_id.is_not(None),
                or_(
                    and_(
                        PaymentAttempt.status == "pending",
                        PaymentAttempt.created_at <= now - older_than,
                    ),
                    and_(
                        PaymentAttempt.status == "expired",
                        PaymentAttempt.created_at >= now - EXPIRED_CHECKED_FOR,
                    ),
                ),
            )
            .order_by(PaymentAttempt.id)
        )
    )


def check_pending(older_than: timedelta) -> Counter:
    """Check each pending attempt with the bank; how many ended in each status."""
    outcomes: Counter = Counter()
    for attempt_id in pending_attempts(older_than):
        try:
            outcomes[check_attempt(attempt_id)] += 1
        except BankUnavailable:
            db.session.rollback()
            outcomes["unreachable"] += 1
    return outcomes


@payments_group.command("check-pending")
@click.option(
    "--older-than",
    "minutes",
    default=30,
    show_default=True,
    type=click.IntRange(min=0),
    help="Minutes depuis l'envoi à la banque.",
)
def check_pending_command(minutes: int) -> None:
    """Demande à la banque l'état des paiements restés « en cours »."""
    from citoyens.reservations.closures import mail_context

    with mail_context():  # receipts carry a link to the invoice
        outcomes = check_pending(timedelta(minutes=minutes))
    if not outcomes:
        click.echo("Aucun paiement en cours à vérifier.")
        return
    labels = {**ATTEMPT_STATUSES, "unreachable": "Banque injoignable"}
    for status, count in sorted(outcomes.items()):
        click.echo(f"{labels.get(status, status)} : {count}")
