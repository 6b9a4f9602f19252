"""The bank behind "Payer en ligne": PayFiP through eopayment (`payfip_ws`), or the local
simulated bank in development and tests (PAYMENT_BACKEND).

Two calls, whatever the bank: `start(order)` opens a payment and gives the page to send the
parent to; `fetch_status(bank_id)` asks the bank what became of it. The portal trusts nothing
else: a notification or a return to the site only says "go and ask" (DOMAIN.md "Paying").
Never the eopayment `tipi` back end: it reads the result from the URL the browser brings back.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal
from email.utils import parseaddr
from typing import Protocol
from urllib.parse import urlsplit

import eopayment
from eopayment.payfip_ws import PAYMENT_URL
from flask import current_app, url_for

from citoyens.billing.bank_orders import BankRedirect, BankStatus, PaymentOrder
from citoyens.core import settings

log = logging.getLogger("citoyens.payments")

# Where the parent's browser goes to pay: the page that holds the "Payer en ligne" form must
# allow it in its Content-Security-Policy (form-action also applies to the redirect).
PAYFIP_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(PAYMENT_URL))

# eopayment's verdicts in the attempt's words, as `payfip_ws` reads PayFiP's `resultrans`
# (payfip_response_to_eopayment_response): P (card) and V (direct debit) → PAID, R (card)
# and Z (direct debit) → DENIED, A → CANCELLED (WAITING in the first minutes: the idOp is
# still payable), any other code → ERROR; a PayFiP error P1 (unknown idOp), or P5 (no
# result yet) long after the start → EXPIRED, P5 before → WAITING. WAITING and ERROR say
# nothing final: the attempt stays pending (an ERROR is logged for staff).
RESULTS = {
    eopayment.PAID: "paid",
    eopayment.DENIED: "refused",
    eopayment.CANCELLED: "cancelled",
    eopayment.EXPIRED: "cancelled",
    eopayment.WAITING: "pending",
    eopayment.ERROR: "pending",
}
# PayFiP's `mel`: eopayment takes 6 to 80 characters with an "@"; PayFiP itself wants a
# plain address. Another is replaced by PAYFIP_CONTACT_EMAIL (the commune's).
MEL_MAX = 80
_MEL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Client numbers that are not a commune's: the empty default and placeholders.
PLACEHOLDER_NUMCLIS = frozenset({"", "000000", "123456", "999999"})


class BankUnavailable(Exception):
    """The bank could not be reached or refused the request."""


class BankNotConfigured(BankUnavailable):
    """Online payment is not set up here (PayFiP's client number, its mode); the message
    says which setting, for the logs."""


class Bank(Protocol):
    def start(self, order: PaymentOrder) -> BankRedirect: ...

    def fetch_status(self, bank_id: str, started_at: datetime | None = None) -> BankStatus: ...


class PayfipBank:
    """PayFiP Régie by web service (DGFiP), through eopayment's `payfip_ws`."""

    def __init__(self, numcli: str, saisie: str, contact_email: str = ""):
        if not (numcli.isdigit() and len(numcli) == 6):
            raise BankNotConfigured(
                "PAYFIP_NUMCLI doit être le numéro client PayFiP à 6 chiffres donné par la DGFiP"
            )
        self.numcli = numcli
        self.saisie = saisie
        self.contact_email = contact_email

    def _payment(self, order: PaymentOrder | None = None) -> eopayment.Payment:
        options = {"numcli": self.numcli, "saisie": self.saisie}
        if order is not None:
            options["automatic_return_url"] = order.notification_url
            options["normal_return_url"] = order.return_url
        return eopayment.Payment(eopayment.PAYFIP_WS, options)

    def start(self, order: PaymentOrder) -> BankRedirect:
        try:
            bank_id, kind, url = self._payment(order).request(
                Decimal(order.amount_cents) / 100,
                email=payfip_email(order.email, self.contact_email),
                refdet=order.reference,
                exer=str(order.year),
                subject=order.subject,
            )
        except (eopayment.PaymentException, ValueError) as error:
            raise BankUnavailable(f"PayFiP refused to open the payment: {error}") from error
        if kind != eopayment.URL or not bank_id:
            raise BankUnavailable(f"PayFiP answered an unexpected kind {kind!r}")
        return BankRedirect(bank_id, url)

    def fetch_status(self, bank_id: str, started_at: datetime | None = None) -> BankStatus:
        # The start time lets eopayment tell "still paying" (P5) from "never paid" (P5 hours
        # later); a CANCELLED of the first minutes comes back as WAITING, as the idOp lives on.
        try:
            response = self._payment().payment_status(bank_id, transaction_date=started_at)
        except eopayment.PaymentException as error:
            raise BankUnavailable(f"PayFiP status unavailable: {error}") from error
        data = response.bank_data or {}
        if response.result == eopayment.ERROR:
            log.error("PayFiP idOp %s: unknown result %s", bank_id, response.bank_status)
        return BankStatus(
            RESULTS.get(response.result, "pending"),
            _cents(data.get("montant")),
            data.get("refdet") or None,
        )


class SimulatedBank:
    """The local bank of `citoyens.billing.bank_sim`: same two calls, no network."""

    def start(self, order: PaymentOrder) -> BankRedirect:
        from citoyens.billing import bank_sim

        bank_id = bank_sim.open_payment(order)
        return BankRedirect(bank_id, url_for("bank_sim.payment_page", bank_id=bank_id))

    def fetch_status(self, bank_id: str, started_at: datetime | None = None) -> BankStatus:
        from citoyens.billing import bank_sim

        payment = bank_sim.lookup(bank_id)
        if payment is None:  # forgotten (a restart): as PayFiP's P1, an idOp nobody paid
            return BankStatus("cancelled")
        return BankStatus(payment.outcome, payment.amount_cents, payment.reference)


def bank() -> Bank:
    """The bank of this configuration. The simulated one is refused in production: it would
    let anybody settle an invoice with a click."""
    config = settings.merged_config(current_app.config)
    kind = config["PAYMENT_BACKEND"]
    if kind == "payfip_ws":
        numcli = (config.get("PAYFIP_NUMCLI") or "").strip()
        saisie = config.get("PAYFIP_SAISIE") or "T"
        if config.get("PRODUCTION"):
            if numcli in PLACEHOLDER_NUMCLIS:
                raise BankNotConfigured(
                    "PAYFIP_NUMCLI n'est pas renseigné (ou garde une valeur d'exemple) : "
                    "indiquez le numéro client PayFiP de la régie, donné par la DGFiP"
                )
            if saisie == "T":
                raise BankNotConfigured(
                    "PAYFIP_SAISIE vaut T (paiements de test) : mettez X ou W en production"
                )
        return PayfipBank(numcli, saisie, contact_email(config))
    if kind == "simulated" and not config.get("PRODUCTION"):
        return SimulatedBank()
    raise BankUnavailable(f"payment back end {kind!r} is unknown or not allowed here")


def contact_email(config) -> str:
    """The commune's address for PayFiP: PAYFIP_CONTACT_EMAIL, else the sender's address."""
    return config.get("PAYFIP_CONTACT_EMAIL") or parseaddr(config["MAIL_DEFAULT_SENDER"])[1]


def payfip_email(email: str | None, fallback: str) -> str:
    """The payer's address if PayFiP takes it (PayFiP e-mails its own ticket there), else
    the commune's: an address over 80 characters must not stop the payment."""
    email = (email or "").strip()
    if len(email) <= MEL_MAX and _MEL.fullmatch(email):
        return email
    return fallback


def _cents(value) -> int | None:
    """PayFiP's `montant` is a string of cents ("1400")."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
