"""Money as the French read it: integer cents in, "12,30 €" out (DOMAIN.md "Billing")."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency


def euros(cents: int | None) -> str:
    """1230 → "12,30 €", -1230 → "-12,30 €" (a credit note), None → "".

    Babel's French pattern puts a no-break space before "€" and a narrow no-break space
    between thousands, so an amount never wraps on a phone. Decimal, not float: cents
    stay exact whatever the amount.
    """
    if cents is None:
        return ""
    return format_currency(Decimal(int(cents)).scaleb(-2), "EUR", locale="fr_FR")
