"""Paying an invoice online (PayFiP, or the simulated bank in development).

Three addresses: the parent's « Payer en ligne » (POST, CSRF), the bank's server-to-server
notification (the one CSRF exemption: it carries no cookie and is believed in nothing, it
only makes the portal ask the bank), and the browser's return from the bank, which may come
after the session expired: it does the same check and shows nothing personal unless the
visitor is logged in as the household.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from citoyens.accounts.decorators import parent_required
from citoyens.billing import payment_start, payments
from citoyens.billing.models import Invoice, PaymentAttempt
from citoyens.billing.money import euros
from citoyens.billing.payfip import PAYFIP_ORIGIN, BankUnavailable
from citoyens.billing.views import bp
from citoyens.extensions import csrf, db
from citoyens.mail import absolute_url
from citoyens.web import CSP, render

log = logging.getLogger("citoyens.payments")

BANK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")

# What the parent reads on coming back: flash category and message, by attempt status.
OUTCOME_MESSAGES = {
    "paid": ("success", "Paiement enregistré : merci ! Un reçu vous est envoyé par e-mail."),
    "refused": ("error", "Paiement refusé par la banque : aucune somme n'a été prélevée."),
    "cancelled": ("info", "Paiement abandonné : la facture reste à payer."),
    "expired": ("info", "Le délai de paiement est dépassé : la facture reste à payer."),
    "pending": (
        "info",
        "Paiement en cours de vérification : la facture sera marquée payée dès que la "
        "banque l'aura confirmé.",
    ),
}


@dataclass(frozen=True)
class PayOption:
    """What billing/_pay_block.html shows: the button and its amount, or a message."""

    payable: bool
    amount: str = ""
    message: str | None = None


@bp.app_template_global("online_payment")
def online_payment(invoice: Invoice, balance_cents: int) -> PayOption:
    """The button, the planned debit, a balance too small for a card, or nothing (the
    invoice page says itself that an invoice is settled, cancelled or a credit note)."""
    refusal = payments.card_refusal(invoice, balance_cents)
    if refusal is None:
        return PayOption(True, euros(balance_cents))
    if invoice.kind == "credit":
        return PayOption(False)
    if invoice.status == "direct_debit":
        when = payments.debit_day(invoice)
        return PayOption(False, message=f"Prélèvement prévu{when} : pas de paiement par carte.")
    if invoice.status == "issued" and 0 < balance_cents < payments.MIN_CARD_CENTS:
        return PayOption(False, message=refusal)
    return PayOption(False)


@bp.after_request
def allow_payfip_form_action(response):
    """The pay form's redirect goes to PayFiP: browsers check it against the form page's
    form-action. Set before the app's security headers, which keep it (setdefault)."""
    if current_app.config["PAYMENT_BACKEND"] == "payfip_ws" and response.mimetype == "text/html":
        policy = CSP.replace("form-action 'self'", f"form-action 'self' {PAYFIP_ORIGIN}")
        response.headers.setdefault("Content-Security-Policy", policy)
    return response


# --- Paying -----------------------------------------------------------------------------------


@bp.post("/factures/<int:invoice_id>/payer")
@parent_required
def pay(invoice_id: int):
    household_id = current_user.household_id
    invoice = db.session.scalar(
        select(Invoice.id).where(Invoice.id == invoice_id, Invoice.household_id == household_id)
    )
    if invoice is None:
        abort(404)
    try:
        url = payment_start.start_payment(
            invoice_id,
            household_id,
            current_user,
            return_url_for=return_url,
            notification_url=absolute_url("billing.payment_notification"),
        )
    except payments.PaymentError as error:
        flash(str(error), "error")
        return redirect(url_for("billing.invoice", invoice_id=invoice_id), 303)
    return redirect(url, 303)


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="citoyens.payment-return")


def return_url(attempt_id: int) -> str:
    """Where the bank sends the browser back; the signed attempt id finds it even when the
    bank adds nothing to the address, and cannot be walked through by a visitor."""
    return absolute_url("billing.payment_return", tentative=_signer().dumps(attempt_id))


# --- The bank's notification and the parent's return -------------------------------------------


def _bank_id(values) -> str | None:
    """PayFiP's idOp (the notification says `idOp`, eopayment reads `idop` on return)."""
    value = values.get("idOp") or values.get("idop")
    return value if value and BANK_ID.match(value) else None


def _text(body: str, status: int) -> Response:
    """A plain answer: no HTML error page, which would open a session for a bank server."""
    return Response(body + "\n", status, mimetype="text/plain")


@bp.post("/paiement/notification")
@csrf.exempt
def payment_notification():
    bank_id = _bank_id(request.form) or _bank_id(request.args)
    if bank_id is None:
        return _text("idOp manquant", 400)
    attempt = payments.attempt_for_bank_id(bank_id)
    if attempt is None:
        log.warning("payment notification for an unknown bank id from %s", request.remote_addr)
        return _text("inconnu", 404)
    try:
        status = payments.check_attempt(attempt.id)
    except BankUnavailable as error:
        log.warning("payment notification for attempt %s: bank unavailable: %s", attempt.id, error)
        return _text("réessayez", 503)  # the bank's status could not be read: notify again
    return _text(f"OK {status}", 200)


@bp.get("/paiement/retour")
def payment_return():
    attempt = _returning_attempt()
    if attempt is None:
        return render("billing/payment_result.html", outcome=None, status=404)
    attempt_id, household_id = attempt.id, attempt.household_id
    invoice_url = url_for("billing.invoice", invoice_id=attempt.invoice_id)
    try:
        status = payments.check_attempt(attempt_id)
    except BankUnavailable as error:
        log.warning("payment return for attempt %s: bank unavailable: %s", attempt_id, error)
        status = "pending"
    category, message = OUTCOME_MESSAGES[status]
    if current_user.is_authenticated and current_user.household_id == household_id:
        flash(message, category)
        return redirect(invoice_url, 303)
    # The session expired on the way, or another account: the outcome, nothing personal.
    return render(
        "billing/payment_result.html",
        outcome=status,
        category=category,
        message=message,
        next_url=invoice_url,
    )


def _returning_attempt() -> PaymentAttempt | None:
    """The attempt the browser comes back from: by the signed `tentative` of our return
    address, else by the bank's idOp. Both sides add parameters (PayFiP appends its own,
    sometimes with a second "?"), keys may repeat: every value is tried."""
    values = _query_values()
    for token in values.get("tentative", []):
        try:
            attempt_id = _signer().loads(token)
        except BadSignature:
            continue
        if isinstance(attempt_id, int):
            attempt = db.session.get(PaymentAttempt, attempt_id)
            if attempt is not None:
                return attempt
    for value in values.get("idop", []):
        if BANK_ID.match(value):
            attempt = payments.attempt_for_bank_id(value)
            if attempt is not None:
                return attempt
    return None


def _query_values() -> dict[str, list[str]]:
    """The query string's values by lower-case key, a "?" inside it read as "&"
    ("tentative=T?idop=X" when a bank appends to an address that has a query already)."""
    raw = request.query_string.decode("utf-8", "replace").replace("?", "&").replace(";", "&")
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw):
        values.setdefault(key.strip().lower(), []).append(value.strip())
    return values
