"""A local simulated bank for development and tests (PAYMENT_BACKEND=simulated).

It plays PayFiP's part, and only that part: it keeps its own record of each payment it was
asked to collect, shows a payment page (amount, reference, the commune) with « Payer »,
« Refuser » and « Abandonner », and on a choice tells the portal server to server, then sends
the browser back to the portal. It never writes the portal's tables: the portal learns the
outcome only by asking it (`SimulatedBank.fetch_status`), as it asks PayFiP.

Its record lives in this process's memory, like a real bank's lives in its own database: the
portal cannot reach into it, and a signed outcome handed to the portal would be a message to
trust rather than a status to fetch. So the simulated bank serves one process (`flask run`,
the tests); it forgets everything on restart (the portal then sees the attempt as expired).
Every route answers 404 unless the simulated bank is the configured one, and in production.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass, replace

from flask import Blueprint, abort, current_app, redirect, render_template, request

from citoyens.billing.bank_orders import PaymentOrder
from citoyens.billing.money import euros

bp = Blueprint("bank_sim", __name__, url_prefix="/banque-simulee")
log = logging.getLogger("citoyens.bank_sim")

OUTCOMES = {"paid": "Payer", "refused": "Refuser", "cancelled": "Abandonner"}
BANK_ID = re.compile(r"[0-9a-f]{32}\Z")
KEPT = 1000  # payments remembered; the oldest are forgotten beyond


@dataclass(frozen=True)
class SimulatedPayment:
    bank_id: str
    amount_cents: int
    reference: str
    year: int
    subject: str
    return_url: str
    notification_url: str
    outcome: str = "pending"


_lock = threading.Lock()
_payments: dict[str, SimulatedPayment] = {}


def open_payment(order: PaymentOrder) -> str:
    """Record a payment to collect; its bank id (an idOp of our own)."""
    bank_id = secrets.token_hex(16)
    payment = SimulatedPayment(
        bank_id=bank_id,
        amount_cents=order.amount_cents,
        reference=order.reference,
        year=order.year,
        subject=order.subject,
        return_url=order.return_url,
        notification_url=order.notification_url,
    )
    with _lock:
        while len(_payments) >= KEPT:
            del _payments[next(iter(_payments))]
        _payments[bank_id] = payment
    return bank_id


def lookup(bank_id: str) -> SimulatedPayment | None:
    with _lock:
        return _payments.get(bank_id)


def settle(bank_id: str, outcome: str) -> SimulatedPayment | None:
    """The payer's choice. A bank does not change a final outcome: the first one stays."""
    if outcome not in OUTCOMES:
        raise ValueError(outcome)
    with _lock:
        payment = _payments.get(bank_id)
        if payment is not None and payment.outcome == "pending":
            payment = _payments[bank_id] = replace(payment, outcome=outcome)
        return payment


def notify(payment: SimulatedPayment) -> int:
    """Tell the portal, as PayFiP does: a POST of `idOp` to the notification URL.

    In process, through the application's test client: a real HTTP request to ourselves
    would deadlock a single-threaded development server. It still goes through the whole
    stack (routing, CSRF, the view), without cookies, as a bank's server would.
    """
    client = current_app.test_client()
    response = client.post(payment.notification_url, data={"idOp": payment.bank_id})
    log.info("simulated bank notified %s: %s", payment.bank_id, response.status_code)
    return response.status_code


# --- The bank's pages -------------------------------------------------------------------------


@bp.before_request
def only_when_simulated():
    config = current_app.config
    if config["PAYMENT_BACKEND"] != "simulated" or config.get("PRODUCTION"):
        abort(404)


def _payment_or_404(bank_id: str) -> SimulatedPayment:
    payment = lookup(bank_id) if BANK_ID.match(bank_id) else None
    if payment is None:
        abort(404)
    return payment


@bp.get("/paiement/<bank_id>")
def payment_page(bank_id: str):
    payment = _payment_or_404(bank_id)
    return render_template(
        "bank_sim/payment.html",
        payment=payment,
        amount=euros(payment.amount_cents),
        outcomes=OUTCOMES,
    )


@bp.post("/paiement/<bank_id>")
def decide(bank_id: str):
    _payment_or_404(bank_id)
    outcome = request.form.get("choix")
    if outcome not in OUTCOMES:
        abort(400)
    payment = settle(bank_id, outcome)  # a repeated choice keeps the first outcome
    notify(payment)
    return redirect(payment.return_url, 303)
