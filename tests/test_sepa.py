"""SEPA rules (citoyens.billing.sepa): IBAN, BIC and holder checks, RUM, the first month a
mandate pays, revocation, the pain.008.001.02 export and rejections.

Functions are called directly inside an app context (a request context where an e-mail
link is built); HTTP flows are in tests/test_mandates.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from sepaxml.validation import try_valid_xml
from sqlalchemy import func, select, update

from citoyens.billing import bank_details, debit_overview, direct_debit_export, mandates, models
from citoyens.billing.models import (
    DirectDebitBatch,
    DirectDebitItem,
    Invoice,
    Mandate,
    Payment,
)
from citoyens.core.models import AuditEvent, MailMessage
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.factories import make_user

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
SEPT = date(2030, 9, 1)
OCT = date(2030, 10, 1)
VALID_FR = [
    "FR7630006000011234567890189",
    "FR1420041010050500013M02606",  # La Banque Postale: a letter in the account number
    "FR7630001007941234567890185",
]


@pytest.fixture
def household(app):
    return make_user(app, role="parent").household_id


def set_debit_on(app, invoice_id: int, day: date) -> None:
    with app.app_context():
        db.session.execute(update(Invoice).where(Invoice.id == invoice_id).values(debit_on=day))
        db.session.commit()


def export(app, month: date, on: date | None = None) -> direct_debit_export.ExportResult:
    with app.test_request_context():
        result = direct_debit_export.export_month(month, actor=None, on=on)
        db.session.commit()
        return result


def batch_xml(app, batch_id: int) -> str:
    with app.app_context():
        return db.session.get(DirectDebitBatch, batch_id).xml


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - the file this code just wrote, not foreign input


def tx_of(root: ET.Element) -> list[dict]:
    """Each transaction with the SeqTp and date of its payment-information block."""
    found = []
    for info in root.iterfind(".//p:PmtInf", NS):
        for tx in info.iterfind("p:DrctDbtTxInf", NS):
            amount = tx.find("p:InstdAmt", NS)
            found.append(
                {
                    "seq": info.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS),
                    "date": info.findtext("p:ReqdColltnDt", namespaces=NS),
                    "amount": amount.text,
                    "currency": amount.get("Ccy"),
                    "e2e": tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
                    "rum": tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:MndtId", namespaces=NS),
                    "signed": tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr", namespaces=NS),
                    "iban": tx.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS),
                    "bic": tx.findtext("p:DbtrAgt/p:FinInstnId/p:BIC", namespaces=NS),
                    "name": tx.findtext("p:Dbtr/p:Nm", namespaces=NS),
                    "text": tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
                }
            )
    return found


# --- IBAN, BIC, holder ------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_FR)
def test_real_french_ibans_are_valid(app, value):
    assert bank_details.parse_iban(value).compact == value


def test_iban_with_spaces_and_lower_case_is_normalised(app):
    assert (
        bank_details.parse_iban(" fr76 3000 6000 0112\u00a03456 7890 189 ").compact == VALID_FR[0]
    )


@pytest.mark.parametrize(
    "value",
    [
        "FR7630006000011234567890188",  # one digit changed: the IBAN check digits fail
        "FR7630006000011234567890198",  # two digits swapped
        "FR0630006000011234567890188",  # IBAN check digits right, RIB key wrong
        "FR763000600001123456789018",  # a digit short
        "FR76300060000112345678901899",  # a digit too many
        "FR0030006000011234567890189",  # "FR00…"
        "FR76300060000112345678901AB",  # letters where the RIB key goes
        "FRXX30006000011234567890189",
        "30006000011234567890189",  # a RIB without the country
        "hello",
        "",
        "FR76 3000 6000 0112 3456 7890 189 ; DROP",
    ],
)
def test_invalid_ibans_are_refused_with_a_french_message(app, value):
    with pytest.raises(bank_details.MandateError) as caught:
        bank_details.parse_iban(value)
    assert str(caught.value) == "Cet IBAN n'est pas valide : vérifiez les chiffres."
    assert caught.value.field == "iban"
    # The refused value never travels in the error (it could reach a log).
    if value:
        assert value not in repr(caught.value)
        assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_the_rib_key_is_checked(app):
    """schwifty checks the French national check digits only with validate_bban=True."""
    from schwifty import IBAN

    assert IBAN("FR0630006000011234567890188").compact  # IBAN check digits alone pass
    with pytest.raises(bank_details.MandateError):
        bank_details.parse_iban("FR0630006000011234567890188")


def test_iban_outside_the_sepa_zone_is_refused(app):
    with pytest.raises(bank_details.MandateError, match="zone SEPA"):
        bank_details.parse_iban("BR1800360305000010009795493C1")


def test_bic_is_derived_from_a_french_iban_or_checked_when_typed(app):
    assert bank_details.resolve_bic(bank_details.parse_iban(VALID_FR[0]), "") == "AGRIFRPPXXX"
    assert bank_details.resolve_bic(bank_details.parse_iban(VALID_FR[1]), None) == "PSSTFRPP"
    assert (
        bank_details.resolve_bic(bank_details.parse_iban(VALID_FR[0]), " agri frpp ") == "AGRIFRPP"
    )
    for typed in ("ABC", "AGRIFRPP1", "ZZZZZZZZ", "AGRI-FRPP", "ÀGRIFRPP"):
        with pytest.raises(bank_details.MandateError, match="BIC n'est pas valide"):
            bank_details.resolve_bic(bank_details.parse_iban(VALID_FR[0]), typed)


def test_bic_is_required_when_the_bank_is_unknown(app):
    unknown = bank_details.parse_iban("GB82WEST12345698765432")
    with pytest.raises(bank_details.MandateError, match="saisissez celui indiqué sur votre RIB"):
        bank_details.resolve_bic(unknown, "")
    assert bank_details.resolve_bic(unknown, "NWBKGB2L") == "NWBKGB2L"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("  Camille   Martin ", "Camille Martin"),
        ("Hélène Dupont-Müller", "Hélène Dupont-Müller"),
        ("N'Diaye Aïssatou", "N'Diaye Aïssatou"),
        ("Cœur d’Alène", "Cœur d’Alène"),
        ("M. OU MME MARTIN (JOINT)", "M. OU MME MARTIN (JOINT)"),
    ],
)
def test_holder_names_are_normalised_and_accepted(app, typed, kept):
    assert bank_details.normalise_holder(typed) == kept
    assert bank_details.holder_problem(kept) is None


@pytest.mark.parametrize("value", ["", "Jean & Marie", "😀", "Jean\u200bDupont", "a" * 71, "---"])
def test_holder_names_outside_the_sepa_charset_are_refused(app, value):
    assert bank_details.holder_problem(bank_details.normalise_holder(value)) is not None


def test_masked_iban_keeps_only_country_check_digits_and_last_three(app):
    masked = models.mask_iban(VALID_FR[0])
    assert masked == "FR76 •••• •••• •••• •••• •••• 189"
    assert masked == Mandate(iban=VALID_FR[0]).masked_iban


# --- RUM --------------------------------------------------------------------------------------


def test_rum_shape_charset_length_and_uniqueness(app):
    with app.app_context():
        rums = {bank_details.new_rum(42, date(2026, 9, 15)) for _ in range(2000)}
        longest = bank_details.new_rum(2**31 - 1, date(2026, 9, 15))
    assert len(rums) == 2000
    for rum in rums:
        assert re.fullmatch(r"CHALONNES-42-20260915-[A-Z2-9]{6}", rum), rum
        assert bank_details.is_valid_rum(rum)
    assert len(longest) <= 35 and bank_details.is_valid_rum(longest)
    assert longest.startswith("CHALONNE") and "-2147483647-20260915-" in longest


def test_signed_mandates_get_distinct_rums(app):
    households = [make_user(app, role="parent").household_id for _ in range(5)]
    with app.test_request_context():
        rums = []
        for household_id in households:
            mandate = mandates.sign_mandate(
                household_id, holder_name="Camille Martin", iban=VALID_FR[0], bic="", actor=None
            )
            rums.append(mandate.rum)
        db.session.commit()
    assert len(set(rums)) == 5
    assert all(len(rum) <= 35 and bank_details.is_valid_rum(rum) for rum in rums)


# --- First month ------------------------------------------------------------------------------


def test_first_month_is_the_previous_month_until_its_invoice_is_issued(app, household):
    with app.app_context():
        assert mandates.first_month_for(household, date(2026, 10, 5)) == date(2026, 9, 1)
        assert mandates.first_month_for(household, date(2027, 1, 31)) == date(2026, 12, 1)
    make_invoice(app, household, month=date(2026, 9, 1))
    with app.app_context():
        # September's invoice is out: the next one issued is October's (early November).
        assert mandates.first_month_for(household, date(2026, 10, 5)) == date(2026, 10, 1)


def test_first_month_of_a_signed_mandate(app, household, monkeypatch):
    monkeypatch.setattr(mandates, "today", lambda: date(2030, 10, 3))
    make_invoice(app, household, month=SEPT)
    with app.test_request_context():
        mandate = mandates.sign_mandate(
            household, holder_name="Camille Martin", iban=VALID_FR[2], bic=None, actor=None
        )
        db.session.commit()
        assert mandate.first_month == OCT
        assert (mandate.iban, mandate.bic) == (VALID_FR[2], "BDFEFRPP")


def test_one_active_mandate_per_household(app, household):
    make_mandate(app, household)
    with app.test_request_context(), pytest.raises(bank_details.MandateError, match="déjà actif"):
        mandates.sign_mandate(
            household, holder_name="Camille Martin", iban=VALID_FR[0], bic="", actor=None
        )


# --- Revocation -------------------------------------------------------------------------------


def test_revoking_puts_planned_invoices_back_to_pay_and_keeps_exported_ones(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    exported = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    export(app, SEPT)
    planned = make_invoice(app, household, month=OCT, status="direct_debit", mandate_id=mandate_id)
    set_debit_on(app, planned, date(2030, 11, 15))
    with app.test_request_context():
        done = mandates.revoke_mandate(household, actor=None)
        db.session.commit()
        assert mandates.active_mandate(household) is None
        assert db.session.get(Mandate, mandate_id).revoked_at is not None
        back = db.session.get(Invoice, planned)
        assert (back.status, back.mandate_id, back.debit_on) == ("issued", None, None)
        assert done.reverted == [back.number]
        assert db.session.get(Invoice, exported).status == "debited"
        with pytest.raises(bank_details.MandateError):
            mandates.revoke_mandate(household, actor=None)
    # A new mandate may be signed after the revocation (the unique index is partial).
    with app.test_request_context():
        mandates.sign_mandate(
            household, holder_name="Camille Martin", iban=VALID_FR[1], bic="", actor=None
        )
        db.session.commit()
        assert mandates.active_mandate(household).iban == VALID_FR[1]


# --- Export -----------------------------------------------------------------------------------


def test_pain008_file_validates_and_carries_the_debits(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app,
        household,
        month=SEPT,
        status="direct_debit",
        mandate_id=mandate_id,
        lines=[("Repas du midi", 350, 4), ("Garderie", 105, 3)],
    )
    set_debit_on(app, invoice_id, date(2030, 10, 15))
    other = make_user(app, role="parent").household_id
    other_mandate = make_mandate(app, other, first_month=SEPT)
    make_invoice(
        app, other, month=SEPT, status="direct_debit", mandate_id=other_mandate,
        lines=[("Accueil de loisirs", 1000, 10)],
    )  # fmt: skip

    result = export(app, SEPT, on=date(2030, 10, 2))
    assert (result.count, result.total_cents) == (2, 1715 + 10000)
    assert len(result.batch_ids) == 1  # one collection date (the default one for the other)

    xml = batch_xml(app, result.batch_ids[0])
    try_valid_xml(xml.encode("utf-8"), "pain.008.001.02")  # sepaxml's own XSD check
    root = parse(xml)
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "117.15"
    assert (
        root.findtext(".//p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id", namespaces=NS)
        == (app.config["SEPA_CREDITOR_ID"])
    )
    assert (
        root.findtext(".//p:CdtrAcct/p:Id/p:IBAN", namespaces=NS)
        == (app.config["SEPA_CREDITOR_IBAN"])
    )
    assert root.findtext(".//p:PmtInf/p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=NS) == "CORE"
    txs = {tx["amount"]: tx for tx in tx_of(root)}
    assert set(txs) == {"17.15", "100.00"}
    first = txs["17.15"]
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        mandate = db.session.get(Mandate, mandate_id)
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice_id))
        item = db.session.scalar(
            select(DirectDebitItem).where(DirectDebitItem.invoice_id == invoice_id)
        )
        assert invoice.status == "debited" and invoice.debit_on == date(2030, 10, 15)
        assert (payment.method, payment.amount_cents) == ("direct_debit", 1715)
        assert payment.transaction_id == item.end_to_end_id == first["e2e"]
        assert len(first["e2e"]) <= 35
        assert (item.sequence_type, item.amount_cents) == ("FRST", 1715)
        assert first["rum"] == mandate.rum
        assert first["signed"] == mandates.signed_on(mandate).isoformat()
        assert (first["iban"], first["bic"]) == (mandate.iban, mandate.bic)
        assert first["text"].startswith(f"Facture {invoice.number}")
        batch = db.session.get(DirectDebitBatch, result.batch_ids[0])
        assert (batch.month, batch.count, batch.total_cents) == (SEPT, 2, 11715)
        assert batch.collection_date == date(2030, 10, 15)
        assert root.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == batch.message_id
    assert (first["seq"], first["currency"], first["date"]) == ("FRST", "EUR", "2030-10-15")


def test_frst_for_the_first_collection_then_rcur(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id)
    sept = export(app, SEPT)
    make_invoice(app, household, month=OCT, status="direct_debit", mandate_id=mandate_id)
    octo = export(app, OCT)
    assert [tx["seq"] for tx in tx_of(parse(batch_xml(app, sept.batch_ids[0])))] == ["FRST"]
    oct_xml = batch_xml(app, octo.batch_ids[0])
    try_valid_xml(oct_xml.encode(), "pain.008.001.02")
    assert [tx["seq"] for tx in tx_of(parse(oct_xml))] == ["RCUR"]


def test_a_rejected_first_collection_makes_the_next_one_frst_again(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id)
    export(app, SEPT)
    with app.test_request_context():
        item_id = db.session.scalar(select(DirectDebitItem.id))
        debit_overview.record_rejection(item_id, "AM04", actor=None)
        db.session.commit()
    make_invoice(app, household, month=OCT, status="direct_debit", mandate_id=mandate_id)
    octo = export(app, OCT)
    assert [tx["seq"] for tx in tx_of(parse(batch_xml(app, octo.batch_ids[0])))] == ["FRST"]


def test_export_is_idempotent(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id)
    first = export(app, SEPT)
    again = export(app, SEPT)
    assert first.count == 1 and again == direct_debit_export.ExportResult([], 0, 0)
    with app.app_context():
        assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 1
        assert db.session.scalar(select(func.count(DirectDebitItem.id))) == 1
        assert db.session.scalar(select(func.count(Payment.id))) == 1
    # An invoice arriving later goes into a file of its own, alone.
    late = make_user(app, role="parent").household_id
    late_mandate = make_mandate(app, late, first_month=SEPT)
    make_invoice(app, late, month=SEPT, status="direct_debit", mandate_id=late_mandate)
    third = export(app, SEPT)
    assert third.count == 1
    assert len(tx_of(parse(batch_xml(app, third.batch_ids[0])))) == 1


def test_an_invoice_claimed_meanwhile_is_left_out(app, household, monkeypatch):
    """Two exports at once read the same list; the conditional UPDATE gives each invoice
    to one of them. Simulated: the list is read, then another export takes one invoice."""
    mandate_id = make_mandate(app, household, first_month=SEPT)
    taken = make_invoice(app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id)
    other = make_user(app, role="parent").household_id
    other_mandate = make_mandate(app, other, first_month=SEPT)
    kept = make_invoice(app, other, month=SEPT, status="direct_debit", mandate_id=other_mandate)
    real = direct_debit_export.exportable_debits

    def stale(month):
        rows = real(month)
        db.session.execute(update(Invoice).where(Invoice.id == taken).values(status="debited"))
        return rows

    monkeypatch.setattr(direct_debit_export, "exportable_debits", stale)
    result = export(app, SEPT)
    assert result.count == 1
    with app.app_context():
        items = db.session.scalars(select(DirectDebitItem.invoice_id)).all()
        assert items == [kept]


def test_only_invoices_under_direct_debit_with_an_active_mandate_are_exported(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    make_invoice(app, household, month=SEPT, status="issued", mandate_id=None)
    make_invoice(app, household, month=OCT, status="direct_debit", mandate_id=mandate_id)
    other = make_user(app, role="parent").household_id
    orphan = make_invoice(app, other, month=SEPT, status="direct_debit", mandate_id=None)
    assert export(app, SEPT).count == 0
    with app.app_context():
        assert direct_debit_export.blocked_count(SEPT) == 1
        assert db.session.get(Invoice, orphan).status == "direct_debit"


def test_a_close_or_past_debit_date_moves_to_the_next_weekday(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    set_debit_on(app, invoice_id, date(2030, 10, 15))
    # Friday 18 October 2030: + 2 days is a Sunday, so Monday 21.
    result = export(app, SEPT, on=date(2030, 10, 18))
    with app.app_context():
        assert db.session.get(DirectDebitBatch, result.batch_ids[0]).collection_date == date(
            2030, 10, 21
        )
        assert db.session.get(Invoice, invoice_id).debit_on == date(2030, 10, 21)


def test_an_invalid_file_changes_nothing_and_logs_no_iban(app, household, caplog):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    app.config["SEPA_CREDITOR_IBAN"], saved = "NOT AN IBAN", app.config["SEPA_CREDITOR_IBAN"]
    try:
        with app.test_request_context():
            from citoyens.transactions import write_transaction

            with pytest.raises(direct_debit_export.DirectDebitError, match="format SEPA"):
                write_transaction(lambda: direct_debit_export.export_month(SEPT, actor=None))
    finally:
        app.config["SEPA_CREDITOR_IBAN"] = saved
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "direct_debit"
        assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 0
        assert db.session.scalar(select(func.count(Payment.id))) == 0
    assert "7630006000011234567890189" not in caplog.text


# --- Rejections -------------------------------------------------------------------------------


def test_a_rejected_debit_makes_the_invoice_payable_again(app, household, outbox):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    export(app, SEPT)
    with app.test_request_context():
        item_id = db.session.scalar(select(DirectDebitItem.id))
        done = debit_overview.record_rejection(item_id, "AM04", actor=None)
        db.session.commit()
        assert done.reopened
        invoice = db.session.get(Invoice, invoice_id)
        item = db.session.get(DirectDebitItem, item_id)
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice_id))
        assert (invoice.status, invoice.mandate_id, invoice.debit_on) == ("issued", None, None)
        assert item.rejected_at is not None and item.rejection_reason.startswith("AM04")
        assert payment.rejected_at is not None and payment.rejection_reason == (
            "AM04 Provision insuffisante"
        )
        # Recorded once only.
        with pytest.raises(direct_debit_export.DirectDebitError, match="déjà enregistré"):
            debit_overview.record_rejection(item_id, "AM04", actor=None)
        with pytest.raises(direct_debit_export.DirectDebitError, match="motif"):
            debit_overview.record_rejection(item_id, "XX99", actor=None)
        mails = db.session.scalars(
            select(MailMessage).where(MailMessage.kind == "direct-debit-rejected")
        ).all()
        assert len(mails) == 1 and invoice.number in mails[0].body_text
        assert "Provision insuffisante" in mails[0].body_text
        assert "de nouveau à payer" in mails[0].body_text
        assert db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "direct_debit.rejected")
        )
    assert len(outbox) == 1
    # The invoice is no longer under direct debit: a later export leaves it alone.
    assert export(app, SEPT).count == 0


def test_amount_formatting(app):
    assert direct_debit_export.decimal_amount(5) == "0.05"
    assert direct_debit_export.decimal_amount(123456) == "1234.56"
    assert mandates.format_euros(1230).replace("\u00a0", " ") == "12,30 €"
    assert mandates.parse_month("2026-09") == date(2026, 9, 1)
    assert mandates.parse_month("2026-13") is None and mandates.parse_month("x") is None
    assert mandates.add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
    assert mandates.of_month(date(2026, 9, 1)) == "de septembre 2026"
    assert [mandates.of_month(date(2026, m, 1)) for m in (4, 8, 10)] == [
        "d'avril 2026",
        "d'août 2026",
        "d'octobre 2026",
    ]
    with app.app_context():
        assert direct_debit_export.default_debit_on(date(2026, 12, 1)) == date(2027, 1, 15)


@pytest.mark.own_database
def test_two_exports_at_once_take_each_invoice_once(tmp_path):
    """Real threads and commits on a database of their own (tests/conftest.dedicated_app)."""
    import threading

    from citoyens.transactions import write_transaction
    from tests.conftest import dedicated_app

    with dedicated_app(tmp_path, "sepa_race") as race_app:
        invoices = []
        for _ in range(6):
            household_id = make_user(race_app, role="parent").household_id
            mandate_id = make_mandate(race_app, household_id, first_month=SEPT)
            invoices.append(
                make_invoice(
                    race_app, household_id, month=SEPT, status="direct_debit",
                    mandate_id=mandate_id,
                )
            )  # fmt: skip
        barrier = threading.Barrier(3)
        results, errors = [], []

        def run():
            with race_app.test_request_context():
                try:
                    barrier.wait(timeout=60)
                    results.append(
                        write_transaction(
                            lambda: direct_debit_export.export_month(SEPT, actor=None)
                        )
                    )
                except BaseException as error:  # reported below
                    errors.append(error)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sorted(result.count for result in results) == [0, 0, 6]
        with race_app.app_context():
            items = db.session.scalars(select(DirectDebitItem.invoice_id)).all()
            assert sorted(items) == sorted(invoices)
            assert db.session.scalar(select(func.count(Payment.id))) == 6
            assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 1
            statuses = db.session.scalars(select(Invoice.status)).all()
            assert set(statuses) == {"debited"}


def test_the_file_collects_what_is_left_after_credit_notes_and_payments(app, household):
    mandate_id = make_mandate(app, household, first_month=SEPT)
    invoice_id = make_invoice(
        app, household, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )  # 14,00 €
    settled = make_user(app, role="parent").household_id
    settled_mandate = make_mandate(app, settled, first_month=SEPT)
    settled_id = make_invoice(
        app, settled, month=SEPT, status="direct_debit", mandate_id=settled_mandate
    )
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        db.session.add(
            Invoice(
                household_id=household,
                kind="credit",
                credit_for_id=invoice_id,
                year=2030,
                sequence=999_001,
                number="TA2030-999001",
                month=SEPT,
                due_on=invoice.due_on,
                total_cents=-350,  # shown negative, stored either way
                status="issued",
                addressee=invoice.addressee,
            )
        )
        db.session.add(
            Payment(
                invoice_id=invoice_id,
                household_id=household,
                method="manual",
                amount_cents=150,
                transaction_id="guichet-1",
            )
        )
        db.session.add(
            Payment(
                invoice_id=settled_id,
                household_id=settled,
                method="manual",
                amount_cents=1400,
                transaction_id="guichet-2",
            )
        )
        db.session.commit()
        assert direct_debit_export.amounts_due([invoice_id, settled_id]) == {
            invoice_id: 900,
            settled_id: 0,
        }
        overview = debit_overview.month_overview(SEPT)
        assert [(row[0].id, row[3]) for row in overview.pending] == [(invoice_id, 900)]
        assert (overview.pending_total, overview.blocked) == (900, 1)
    result = export(app, SEPT)
    assert (result.count, result.total_cents) == (1, 900)
    [tx] = tx_of(parse(batch_xml(app, result.batch_ids[0])))
    assert tx["amount"] == "9.00"
    with app.app_context():
        item = db.session.scalar(select(DirectDebitItem))
        payment = db.session.scalar(select(Payment).where(Payment.transaction_id == tx["e2e"]))
        assert item.amount_cents == payment.amount_cents == 900
        assert db.session.get(Invoice, settled_id).status == "direct_debit"  # left to staff
