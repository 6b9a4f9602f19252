"""The SEPA creditor identifier (ICS) and the pre-notification: the ISO 7064 MOD 97-10
check of the EPC rulebook, no pain.008 file with an invalid identifier (nor, in production,
the demo one), a start-up warning, and the mandate text stating the notice the family gets.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest
from sqlalchemy import func, select

from citoyens import config as config_module
from citoyens import crypto
from citoyens.billing import creditor_id, direct_debit_export
from citoyens.billing.models import DirectDebitBatch, Invoice
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import make_user

SEPT = date(2030, 9, 1)
MESSAGE = (
    "L'identifiant créancier SEPA (ICS) n'est pas valide : renseignez SEPA_CREDITOR_ID dans "
    "la configuration"
)


def mod97_by_hand(ics: str) -> int:
    """ISO 7064 MOD 97-10 written out differently (digit by digit, as on paper): the
    remainder of national identifier + country + check digits, which must be 1."""
    text = ics[7:] + ics[:4]
    remainder = 0
    for char in text:
        for digit in str(int(char, 36)):
            remainder = (remainder * 10 + int(digit)) % 97
    return remainder


# Published examples: the EPC's French one, the Deutsche Bundesbank's test identifier,
# and the Dutch and Italian examples of the EPC's creditor identifier overview.
VALID = [
    "FR72ZZZ123456",
    "DE98ZZZ09999999999",
    "NL42ZZZ123456780001",
    "IT66ZZZA1B2C3D4E5F6G7H8",
]


@pytest.mark.parametrize("ics", VALID)
def test_published_identifiers_are_valid(ics):
    assert mod97_by_hand(ics) == 1  # the examples really carry right check digits
    assert creditor_id.is_valid(ics)
    assert creditor_id.check_digits(ics) == ics[2:4]


def test_the_creditor_business_code_is_ignored_by_the_check():
    assert creditor_id.is_valid("FR72ABC123456")
    assert creditor_id.is_valid("FR72000123456")


@pytest.mark.parametrize(
    "ics",
    [
        "FR12ZZZ123456",  # the old default: wrong check digits
        "FR73ZZZ123456",  # one check digit off
        "FR72ZZZ123457",  # one national digit off
        "FR72ZZZ12345",  # a French identifier has 13 characters
        "FR72ZZZ1234567",
        "DE98ZZZ09999999998",
        "F272ZZZ123456",  # not a country code
        "FRXXZZZ123456",  # letters as check digits
        "FR72ZZZ12345é",
        "FR72ZZZ",
        "",
        None,
        "FR72ZZZ123456" + "0" * 30,  # over 35 characters
    ],
)
def test_invalid_identifiers_are_refused(ics):
    assert not creditor_id.is_valid(ics)


def test_lower_case_and_spaces_are_normalised():
    assert creditor_id.normalise(" fr72 zzz\u00a0123456 ") == "FR72ZZZ123456"
    assert creditor_id.is_valid(" fr72 zzz 123456 ")


def test_the_demo_identifier_is_refused_in_production_only():
    assert creditor_id.problem("FR72ZZZ123456", production=False) is None
    assert creditor_id.problem("FR72ZZZ123456", production=True).startswith(MESSAGE)
    assert creditor_id.problem("FR12ZZZ123456", production=False).startswith(MESSAGE)
    assert creditor_id.problem("DE98ZZZ09999999999", production=True) is None


# --- Settings ---------------------------------------------------------------------------------


def test_defaults_are_a_valid_demo_identifier_in_development_and_none_in_production(
    monkeypatch, tmp_path, caplog
):
    monkeypatch.delenv("SEPA_CREDITOR_ID", raising=False)
    monkeypatch.setenv("CITOYENS_ENV", "development")
    settings = config_module.load(str(tmp_path))
    assert settings["SEPA_CREDITOR_ID"] == creditor_id.DEMO_CREDITOR_ID
    assert settings["SEPA_PRENOTIFICATION_DAYS"] == 14
    assert "SEPA_CREDITOR_ID" not in caplog.text

    monkeypatch.setenv("CITOYENS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    with caplog.at_level(logging.WARNING, logger="citoyens.config"):
        settings = config_module.load(str(tmp_path))
    assert settings["SEPA_CREDITOR_ID"] == ""
    assert "SEPA_CREDITOR_ID" in caplog.text and "pain.008" in caplog.text


def test_an_invalid_identifier_is_warned_about_at_start_up(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CITOYENS_ENV", "development")
    monkeypatch.setenv("SEPA_CREDITOR_ID", "FR12ZZZ123456")
    with caplog.at_level(logging.WARNING, logger="citoyens.config"):
        config_module.load(str(tmp_path))
    assert "'FR12ZZZ123456' n'est pas un identifiant créancier SEPA (ICS) valide" in caplog.text


# --- No file with an invalid identifier -------------------------------------------------------


@pytest.fixture
def debit(app):
    household = make_user(app, role="parent").household_id
    mandate = make_mandate(app, household, first_month=SEPT)
    return make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate)


def batches(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(DirectDebitBatch.id)))


@pytest.mark.parametrize(
    ("ics", "production"),
    [("FR12ZZZ123456", False), ("FR12ZZZ123456", True), ("FR72ZZZ123456", True), ("", True)],
)
def test_no_file_leaves_with_an_invalid_or_demo_identifier(
    app, debit, monkeypatch, caplog, ics, production
):
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", ics)
    monkeypatch.setitem(app.config, "PRODUCTION", production)
    with app.test_request_context():
        with pytest.raises(
            direct_debit_export.DirectDebitError, match="SEPA_CREDITOR_ID dans la configuration"
        ):
            direct_debit_export.export_month(SEPT, actor=None)
        db.session.rollback()
        assert db.session.get(Invoice, debit).status == "direct_debit"
    assert batches(app) == 0


def test_the_file_carries_the_identifier_normalised(app, debit, monkeypatch):
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", " de98 zzz 09999999999")
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    # Production reads IBANs only with DATA_ENCRYPTION_KEYS: the mandate was stored (not
    # in production) under the development key.
    monkeypatch.setitem(app.config, "DATA_ENCRYPTION_KEYS", crypto.DEVELOPMENT_KEY)
    with app.test_request_context():
        result = direct_debit_export.export_month(SEPT, actor=None)
        db.session.commit()
        xml = db.session.get(DirectDebitBatch, result.batch_ids[0]).xml
    assert "<Id>DE98ZZZ09999999999</Id>" in xml


def test_the_staff_page_says_where_to_set_the_identifier_and_exports_nothing(
    app, admin, debit, monkeypatch
):
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", "FR12ZZZ123456")
    client = app.test_client()
    post(client, "/connexion", {"email": admin.email, "password": admin.password})
    page = client.get("/admin/prelevements?mois=2030-09").get_data(as_text=True)
    assert "renseignez SEPA_CREDITOR_ID dans la configuration" in page
    response = post(client, "/admin/prelevements/generer", {"mois": "2030-09"})
    assert response.status_code == 422
    assert "SEPA_CREDITOR_ID" in response.get_data(as_text=True)
    assert batches(app) == 0


# --- Pre-notification -------------------------------------------------------------------------


def test_the_mandate_text_states_the_pre_notification(app, monkeypatch):
    family = make_user(app, role="parent")
    client = app.test_client()
    post(client, "/connexion", {"email": family.email, "password": family.password})
    page = client.get("/prelevement").get_data(as_text=True)
    assert (
        "Vous serez informé du montant et de la date de chaque prélèvement au moins 14 jours "
        "avant" in page
    )
    monkeypatch.setitem(app.config, "SEPA_PRENOTIFICATION_DAYS", 5)  # a commune states fewer
    page = client.get("/prelevement").get_data(as_text=True)
    assert "au moins 5 jours avant" in page


def test_an_invoice_under_direct_debit_states_its_collection_date(app):
    family = make_user(app, role="parent")
    mandate = make_mandate(app, family.household_id, first_month=SEPT)
    invoice_id = make_invoice(
        app, family.household_id, month=SEPT, status="direct_debit", mandate_id=mandate
    )
    with app.app_context():
        db.session.get(Invoice, invoice_id).debit_on = date(2030, 10, 21)
        db.session.commit()
    client = app.test_client()
    post(client, "/connexion", {"email": family.email, "password": family.password})
    page = client.get(f"/factures/{invoice_id}").get_data(as_text=True)
    assert "Elle sera prélevée le 21/10/2030" in page
