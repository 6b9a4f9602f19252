"""The SEPA creditor identifier (identifiant créancier SEPA, ICS), checked as the EPC
rulebook defines it (EPC262-08, "Creditor Identifier Overview"):

    FR 72 ZZZ 123456
    |  |  |   national identifier (France: 6 characters given by the Banque de France)
    |  |  creditor business code: free, ignored by the check
    |  check digits: ISO 7064 MOD 97-10
    ISO 3166 country code

The check digits are computed over the national identifier followed by the country code
and "00", letters turned into numbers (A = 10 … Z = 35): 98 - (that number mod 97).
No Flask here: the settings loader uses it at start-up.
"""

from __future__ import annotations

import re

# The EPC rulebook's own French example: valid check digits, never a real creditor. The
# development default, refused in production like any invalid identifier.
DEMO_CREDITOR_ID = "FR72ZZZ123456"
DEMO_CREDITOR_IDS = frozenset({DEMO_CREDITOR_ID, "FR12ZZZ123456"})
SETTING = "SEPA_CREDITOR_ID"
MAX_LENGTH = 35  # an ISO 20022 <Othr><Id>

_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}")
# A French national identifier has 6 characters (13 in all); other countries' lengths vary.
_NATIONAL_LENGTH = {"FR": 6}

INVALID = (
    "L'identifiant créancier SEPA (ICS) n'est pas valide : renseignez "
    f"{SETTING} dans la configuration (l'ICS de la commune, donné par la Banque de France "
    "par l'intermédiaire de la trésorerie)."
)


def normalise(value: str | None) -> str:
    """ " fr72 zzz 123456 " → "FR72ZZZ123456": spaces (also no-break ones) out, upper case."""
    return re.sub(r"\s+", "", value or "").upper()


def check_digits(value: str) -> str:
    """The two check digits of an identifier (its own check digits are ignored)."""
    ics = normalise(value)
    number = "".join(str(int(char, 36)) for char in ics[7:] + ics[:2] + "00")
    return f"{98 - int(number) % 97:02d}"


def is_valid(value: str | None) -> bool:
    """Shape, national length where known, and ISO 7064 MOD 97-10 check digits."""
    ics = normalise(value)
    if len(ics) > MAX_LENGTH or not ics.isascii() or not _SHAPE.fullmatch(ics):
        return False
    expected = _NATIONAL_LENGTH.get(ics[:2])
    if expected is not None and len(ics) - 7 != expected:
        return False
    return ics[2:4] == check_digits(ics)


def problem(value: str | None, *, production: bool) -> str | None:
    """Why this identifier must not leave in a pain.008 file, in French; None when it may.
    The demo identifier passes the check but is refused in production."""
    if not is_valid(value):
        return INVALID
    if production and normalise(value) in DEMO_CREDITOR_IDS:
        return INVALID
    return None
