"""Personal data encrypted at rest: the families' IBANs (SECURITY.md "Personal data").

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with the keys of the setting
`DATA_ENCRYPTION_KEYS`: comma-separated Fernet keys, the first one encrypts, every one
decrypts. Rotation (README « Chiffrement des IBAN »): put a new key first
(`DATA_ENCRYPTION_KEYS=new,old`), run `flask crypto rotate`, then drop the old key.

Development and tests use `DEVELOPMENT_KEY` when the setting is empty; production refuses
to encrypt or decrypt without the setting (at first use: the start-up checks belong to
citoyens.config). A value no configured key opens raises DecryptionError: never a wrong
IBAN, never an empty one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Text, bindparam, column, select, table, update
from sqlalchemy.types import TypeDecorator

# Public on purpose: it protects nothing, it only lets development run without a setting.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"citoyens-development-only-not-secret").digest()
).decode()

# What an IBAN stored before encryption looks like (compact, upper case).
_CLEAR_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")


class EncryptionKeyError(RuntimeError):
    """DATA_ENCRYPTION_KEYS is missing (production) or holds something not a Fernet key."""


class DecryptionError(RuntimeError):
    """A stored value that none of the configured keys opens."""


def generate_key() -> str:
    """A new random key for DATA_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def configured_keys() -> tuple[str, ...]:
    """The keys of DATA_ENCRYPTION_KEYS (app config, else environment), first one first."""
    raw = current_app.config.get("DATA_ENCRYPTION_KEYS") if has_app_context() else None
    if not raw:
        raw = os.environ.get("DATA_ENCRYPTION_KEYS", "")
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if keys:
        return keys
    if has_app_context() and current_app.config.get("PRODUCTION"):
        raise EncryptionKeyError(
            "DATA_ENCRYPTION_KEYS is not set. In production the IBANs are encrypted with a "
            "key of your own: generate one with `flask crypto generate-key` and export "
            "DATA_ENCRYPTION_KEYS (keep it with the database backups, apart from them)."
        )
    return (DEVELOPMENT_KEY,)


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    parsed = []
    for position, key in enumerate(keys, 1):
        try:
            parsed.append(Fernet(key))
        except (ValueError, TypeError):
            # The key itself is never quoted: it is a secret.
            raise EncryptionKeyError(
                f"DATA_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                "(44 URL-safe base64 characters; `flask crypto generate-key` makes one)."
            ) from None
    return MultiFernet(parsed), parsed[0]


def check_keys() -> None:
    """EncryptionKeyError unless DATA_ENCRYPTION_KEYS (or development's key) is usable."""
    _fernets(configured_keys())


def encrypt(plain: str, keys: tuple[str, ...] | None = None) -> str:
    multi, _ = _fernets(keys or configured_keys())
    return multi.encrypt(plain.encode()).decode()


def decrypt(token: str, keys: tuple[str, ...] | None = None) -> str:
    multi, _ = _fernets(keys or configured_keys())
    try:
        return multi.decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "An encrypted value cannot be decrypted with the keys of DATA_ENCRYPTION_KEYS: "
            "the key it was encrypted with is missing (check the setting, and keep the old "
            "key after the new one until `flask crypto rotate` has run)."
        ) from None


class EncryptedString(TypeDecorator):
    """A string stored encrypted (a Fernet token, ~140 characters for an IBAN) and read
    back in clear. Comparing or searching it in SQL means nothing: keep a clear, harmless
    companion column for that (Mandate.iban_masked)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


# --- Existing rows: encrypt clear IBANs, re-encrypt with the first key -----------------------

_mandates = table(
    "mandates", column("id"), column("iban", Text), column("iban_masked", Text)
)  # plain columns: raw values in and out, whatever the model says


@dataclass
class RotationResult:
    encrypted: int = 0  # clear IBANs (stored before encryption) now encrypted
    rotated: int = 0  # tokens of an older key, now under the first one
    current: int = 0  # already under the first key: left as they are

    def __str__(self) -> str:
        return (
            f"{self.encrypted} IBAN(s) chiffré(s), {self.rotated} rechiffré(s) avec la "
            f"nouvelle clé, {self.current} déjà à jour."
        )


def encrypt_existing_ibans(connection, keys: tuple[str, ...] | None = None) -> RotationResult:
    """Bring every stored IBAN under the first key, on a SQLAlchemy Connection (a
    migration's `op.get_bind()`, or `db.session.connection()`): clear ones are encrypted,
    other keys' tokens re-encrypted, the masked form filled where missing. Idempotent.
    DecryptionError (nothing written by the caller's rollback) when a token opens with
    no key. Never logs or returns an IBAN."""
    from citoyens.billing.models import mask_iban

    multi, first = _fernets(keys or configured_keys())
    result = RotationResult()
    changes = []
    for mandate_id, stored, masked in connection.execute(
        select(_mandates.c.id, _mandates.c.iban, _mandates.c.iban_masked)
    ):
        if _CLEAR_IBAN.fullmatch(stored):
            plain = stored
            token = multi.encrypt(plain.encode()).decode()
            result.encrypted += 1
        else:
            try:
                plain = multi.decrypt(stored.encode()).decode()
            except InvalidToken:
                raise DecryptionError(
                    f"The IBAN of mandate {mandate_id} cannot be decrypted with the keys of "
                    "DATA_ENCRYPTION_KEYS: add the key it was encrypted with (after the new "
                    "one) and run the rotation again. Nothing was changed."
                ) from None
            try:
                first.decrypt(stored.encode())
                token = None
                result.current += 1
            except InvalidToken:
                token = multi.rotate(stored.encode()).decode()
                result.rotated += 1
        if token is not None or not masked:
            changes.append(
                {"row_id": mandate_id, "token": token or stored, "masked": mask_iban(plain)}
            )
    if changes:
        connection.execute(
            update(_mandates)
            .where(_mandates.c.id == bindparam("row_id"))
            .values(iban=bindparam("token"), iban_masked=bindparam("masked")),
            changes,
        )
    return result
