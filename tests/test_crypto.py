"""IBANs encrypted at rest (citoyens.crypto, issue 12): the database holds a Fernet token,
pages read the masked copy without decrypting, keys rotate (`flask crypto rotate`), a
wrong key is a clear error and never a wrong IBAN, and the pain.008 file has the IBAN.

Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

import html
from datetime import date

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from citoyens import crypto
from citoyens.billing.models import DirectDebitBatch, Invoice, Mandate
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import make_user
from tests.test_mandates import IBAN, login, sign_data
from tests.test_sepa import SEPT, export, parse, tx_of

FACTORY_IBAN = "FR7630006000011234567890189"  # tests/billing_factories.make_mandate
MASKED = "FR76 •••• •••• •••• •••• •••• 189"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def keys(app, monkeypatch):
    """Set DATA_ENCRYPTION_KEYS for the test: keys("new,old")."""

    def set_keys(value: str) -> None:
        monkeypatch.setitem(app.config, "DATA_ENCRYPTION_KEYS", value)

    monkeypatch.delenv("DATA_ENCRYPTION_KEYS", raising=False)
    return set_keys


@pytest.fixture
def household(app):
    return make_user(app, role="parent").household_id


def raw_row(app, mandate_id: int) -> tuple[str, str]:
    """(iban, iban_masked) as stored, read with plain SQL: no type decorator involved."""
    with app.app_context():
        row = db.session.execute(
            text("SELECT iban, iban_masked FROM mandates WHERE id = :id"), {"id": mandate_id}
        ).one()
        return row[0], row[1]


def stored_iban(app, mandate_id: int) -> str:
    with app.app_context():
        return db.session.scalar(select(Mandate.iban).where(Mandate.id == mandate_id))


def rotate(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["crypto", "rotate"])
    return result.exit_code, result.output


# --- At rest ----------------------------------------------------------------------------------


def test_a_signed_iban_is_stored_encrypted_and_masked_in_clear(app, keys, monkeypatch):
    keys(NEW_KEY)
    monkeypatch.setattr("citoyens.billing.mandates.today", lambda: date(2030, 10, 3))
    family = make_user(app, role="parent", children=1)
    client = login(app, family)
    response = post(client, "/prelevement/signer", sign_data())
    assert response.status_code == 303
    with app.app_context():
        mandate_id = db.session.scalar(
            select(Mandate.id).where(Mandate.household_id == family.household_id)
        )
    raw, masked = raw_row(app, mandate_id)
    assert IBAN not in raw and IBAN[4:] not in raw and IBAN[-8:] not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token
    assert Fernet(NEW_KEY).decrypt(raw.encode()).decode() == IBAN
    assert masked == "FR14 •••• •••• •••• •••• •••• 606"
    assert stored_iban(app, mandate_id) == IBAN


def test_pages_show_the_masked_iban_without_decrypting(app, keys, household, monkeypatch):
    keys(NEW_KEY)
    make_mandate(app, household, first_month=SEPT)

    def refuse(*_args, **_kwargs):
        raise AssertionError("a page decrypted an IBAN")

    monkeypatch.setattr(crypto, "decrypt", refuse)
    with app.app_context():
        [mandate] = db.session.scalars(select(Mandate).where(Mandate.household_id == household))
        assert mandate.masked_iban == MASKED


def test_the_mandate_page_does_not_decrypt(app, keys, monkeypatch):
    keys(NEW_KEY)
    family = make_user(app, role="parent", children=1)
    make_mandate(app, family.household_id, first_month=SEPT)

    def refuse(*_args, **_kwargs):
        raise AssertionError("a page decrypted an IBAN")

    monkeypatch.setattr(crypto, "decrypt", refuse)
    response = login(app, family).get("/prelevement")
    assert response.status_code == 200
    assert MASKED in html.unescape(response.get_data(as_text=True))


# --- Keys: rotation and wrong keys ------------------------------------------------------------


def test_a_value_of_the_old_key_reads_with_the_new_key_set(app, keys, household):
    keys(OLD_KEY)
    mandate_id = make_mandate(app, household)
    keys(f"{NEW_KEY},{OLD_KEY}")
    assert stored_iban(app, mandate_id) == FACTORY_IBAN


def test_rotate_reencrypts_with_the_first_key_and_is_idempotent(app, keys, household):
    keys(OLD_KEY)
    first = make_mandate(app, household)
    second = make_mandate(app, make_user(app, role="parent").household_id)
    keys(f"{NEW_KEY},{OLD_KEY}")
    code, output = rotate(app)
    assert code == 0, output
    assert "0 IBAN(s) chiffré(s), 2 rechiffré(s) avec la nouvelle clé, 0 déjà à jour." in output
    tokens = [raw_row(app, first)[0], raw_row(app, second)[0]]
    for token in tokens:
        assert Fernet(NEW_KEY).decrypt(token.encode()).decode() == FACTORY_IBAN
    keys(NEW_KEY)  # the old key dropped: everything still reads
    assert stored_iban(app, first) == stored_iban(app, second) == FACTORY_IBAN
    code, output = rotate(app)
    assert code == 0 and "0 rechiffré(s) avec la nouvelle clé, 2 déjà à jour." in output
    assert [raw_row(app, first)[0], raw_row(app, second)[0]] == tokens  # untouched


def test_a_wrong_key_is_a_clear_error_not_a_wrong_iban(app, keys, household):
    keys(OLD_KEY)
    mandate_id = make_mandate(app, household)
    keys(NEW_KEY)
    with pytest.raises(crypto.DecryptionError, match="DATA_ENCRYPTION_KEYS"):
        stored_iban(app, mandate_id)
    before = raw_row(app, mandate_id)
    code, output = rotate(app)
    assert code != 0
    assert f"The IBAN of mandate {mandate_id} cannot be decrypted" in output
    assert "Nothing was changed." in output
    assert raw_row(app, mandate_id) == before


def test_a_malformed_key_is_named_by_position_never_quoted(app, keys):
    keys(f"{NEW_KEY},not-a-key")
    with app.app_context(), pytest.raises(crypto.EncryptionKeyError) as caught:
        crypto.encrypt(FACTORY_IBAN)
    assert "key number 2" in str(caught.value) and "not-a-key" not in str(caught.value)


def test_production_without_keys_refuses_to_encrypt(app, keys, monkeypatch):
    keys("")
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    with app.app_context(), pytest.raises(crypto.EncryptionKeyError, match="is not set"):
        crypto.encrypt(FACTORY_IBAN)
    monkeypatch.setitem(app.config, "PRODUCTION", False)
    with app.app_context():  # development: the public development key
        token = crypto.encrypt(FACTORY_IBAN)
    assert Fernet(crypto.DEVELOPMENT_KEY).decrypt(token.encode()).decode() == FACTORY_IBAN


def test_generate_key_prints_a_fernet_key(app):
    result = app.test_cli_runner().invoke(args=["crypto", "generate-key"])
    assert result.exit_code == 0
    key = result.output.strip()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"


# --- Rows stored in clear before encryption (the data migration) ------------------------------


def test_existing_clear_ibans_are_encrypted_once(app, keys, household):
    keys(NEW_KEY)
    mandate_id = make_mandate(app, household)
    with app.app_context():  # a row from before: clear, masked copy empty (migration's default)
        db.session.execute(
            text("UPDATE mandates SET iban = :iban, iban_masked = '' WHERE id = :id"),
            {"iban": FACTORY_IBAN, "id": mandate_id},
        )
        db.session.commit()
        result = crypto.encrypt_existing_ibans(db.session.connection())
        db.session.commit()
        assert (result.encrypted, result.rotated, result.current) == (1, 0, 0)
    raw, masked = raw_row(app, mandate_id)
    assert FACTORY_IBAN not in raw and masked == MASKED
    assert stored_iban(app, mandate_id) == FACTORY_IBAN
    with app.app_context():
        again = crypto.encrypt_existing_ibans(db.session.connection())
        assert (again.encrypted, again.rotated, again.current) == (0, 0, 1)
    assert raw_row(app, mandate_id) == (raw, masked)


# --- The pain.008 export decrypts -------------------------------------------------------------


def test_the_export_has_the_right_iban_after_a_key_change(app, keys, household):
    keys(OLD_KEY)
    mandate_id = make_mandate(app, household, first_month=SEPT)
    make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id)
    keys(f"{NEW_KEY},{OLD_KEY}")
    result = export(app, SEPT, on=date(2030, 10, 1))
    with app.app_context():
        xml = db.session.get(DirectDebitBatch, result.batch_ids[0]).xml
    [tx] = tx_of(parse(xml))
    assert tx["iban"] == FACTORY_IBAN


def test_an_export_with_a_wrong_key_creates_nothing_and_says_why(app, keys, household):
    keys(OLD_KEY)
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    keys(NEW_KEY)
    admin = make_user(app, role="admin")
    client = login(app, admin)
    response = post(client, "/admin/prelevements/generer", {"mois": "2030-09"})
    assert response.status_code == 422
    text_ = html.unescape(response.get_data(as_text=True))
    assert "ne peuvent pas être déchiffrés avec la clé configurée" in text_
    with app.app_context():
        assert db.session.scalars(select(DirectDebitBatch)).all() == []
        assert db.session.get(Invoice, invoice_id).status == "direct_debit"


def test_production_without_keys_signs_no_mandate_and_says_so(app, keys, monkeypatch, caplog):
    keys("")
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    family = make_user(app, role="parent", children=1)
    response = post(login(app, family), "/prelevement/signer", sign_data())
    assert response.status_code == 409
    assert "ne peut pas être mis en place pour le moment" in html.unescape(
        response.get_data(as_text=True)
    )
    assert "DATA_ENCRYPTION_KEYS is not set" in caplog.text
    with app.app_context():
        assert db.session.scalars(select(Mandate)).all() == []
