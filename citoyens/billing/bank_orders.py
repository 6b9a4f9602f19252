"""What the portal and a bank (PayFiP, or the local simulator) say to each other: the
order to collect, where to send the payer, and the bank's verdict."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaymentOrder:
    """What the bank is asked to collect for one attempt."""

    amount_cents: int
    reference: str  # PayFiP refdet: identifies the attempt
    year: int  # PayFiP exer: the invoice's year
    email: str  # PayFiP mel: the payer's address, for the bank's own ticket
    subject: str  # PayFiP objet
    return_url: str  # where the browser comes back
    notification_url: str  # where the bank tells the portal, server to server


@dataclass(frozen=True)
class BankRedirect:
    bank_id: str  # PayFiP idOp
    url: str


@dataclass(frozen=True)
class BankStatus:
    """What the bank says of a payment: pending, paid, refused or cancelled, and for what."""

    status: str
    amount_cents: int | None = None
    reference: str | None = None
