"""Money at the town hall counter (issue 14): staff record a cheque, cash, a transfer, CESU
or ANCV titles for one or several invoices of a family, partial or over; a numbered
receipt (PDF) for staff and the family; reversal by an administrator only, with a reason;
the day's list for the cash-up. Everything through HTTP, as staff and families do it."""

from __future__ import annotations

import html
import re
import subprocess
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from citoyens.billing import refunds, rules
from citoyens.billing.counter_models import CounterReceipt, ReceiptCounter
from citoyens.billing.credits import credit_balance
from citoyens.billing.models import HouseholdCredit, Invoice, Payment
from citoyens.billing.payments import amount_due
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import counted_queries, post
from tests.counter_factories import make_receipt
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request, make_service
from tests.test_access import login_client
from tests.test_billing_views import plain

TODAY = date(2030, 11, 20)
SEPT, OCT = date(2030, 9, 1), date(2030, 10, 1)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(rules, "today", lambda: TODAY)


@pytest.fixture
def family(app):
    """A parent with two invoices: September 14,00 € (due first), October 21,00 €."""
    account = make_user(app, role="parent", children=1)
    account.sept = make_invoice(app, account.household_id, month=SEPT)
    account.oct = make_invoice(app, account.household_id, month=OCT, lines=[("Repas", 350, 6)])
    return account


@pytest.fixture
def admin_client(app, admin):
    return login_client(app, admin)


def agent_for(app, household_id: int):
    """An agent whose service has an open request of the family: the family is theirs."""
    service = make_service(app)
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, service)
    make_request(app, household_id, service_id=service)
    return agent


def text(response) -> str:
    """The page as read: entities decoded, Babel's no-break spaces as plain ones."""
    return plain(html.unescape(response.get_data(as_text=True)))


def record(client, household_id: int, ticked, amount: str = "14,00", **fields):
    """« Enregistrer un paiement »: a cheque of `amount` for the invoices `ticked`."""
    data = {
        "method": "cheque",
        "amount": amount,
        "received_on": "2030-11-20",
        "reference": "1234567",
        "issuer": "Banque Exemple",
        "note": "",
        "invoices": [str(i) for i in ticked],
        **fields,
    }
    return post(client, f"/admin/factures/familles/{household_id}/encaissement", data)


def receipt_id_of(response) -> int:
    assert response.status_code == 303, response.status_code
    match = re.search(r"/admin/factures/encaissements/(\d+)$", response.headers["Location"])
    return int(match[1])


def state(app, invoice_id: int) -> tuple[str, int]:
    """(status, what is left to pay)."""
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        return invoice.status, amount_due(invoice)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def reverse(client, receipt_id: int, reason: str = "Chèque rejeté par la banque"):
    return post(client, f"/admin/factures/encaissements/{receipt_id}/annuler", {"reason": reason})


def pdf_text(tmp_path, body: bytes) -> str:
    path = tmp_path / "recu.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return " ".join(plain(out.stdout.decode()).split())


# --- Who may do what ------------------------------------------------------------------------------


def test_anonymous_and_parents_are_kept_out(app, family):
    receipt = make_receipt(app, family.household_id, [family.sept], 500, today=TODAY)
    paths = [
        f"/admin/factures/familles/{family.household_id}",
        f"/admin/factures/familles/{family.household_id}/encaissement",
        f"/admin/factures/encaissements/{receipt}",
        f"/admin/factures/encaissements/{receipt}.pdf",
        "/admin/factures/encaissements",
    ]
    anonymous = app.test_client()
    for path in paths:
        assert anonymous.get(path).status_code == 302, path
    parent = login_client(app, family)
    for path in paths:
        assert parent.get(path).status_code == 403, path
    assert record(parent, family.household_id, [family.sept]).status_code == 403
    assert reverse(parent, receipt).status_code == 403
    assert count(app, CounterReceipt) == 1


def test_an_agent_records_only_for_the_families_they_see(app, family):
    outsider = login_client(app, make_user(app, role="staff"))
    receipt = make_receipt(app, family.household_id, [family.sept], 500, today=TODAY)
    for path in (
        f"/admin/factures/familles/{family.household_id}",
        f"/admin/factures/familles/{family.household_id}/encaissement",
        f"/admin/factures/encaissements/{receipt}",
        f"/admin/factures/encaissements/{receipt}.pdf",
    ):
        assert outsider.get(path).status_code == 404, path
    assert record(outsider, family.household_id, [family.sept]).status_code == 404
    assert "R2030-000001" not in text(outsider.get("/admin/factures/encaissements?du=2030-11-20"))
    assert count(app, CounterReceipt) == 1
    with app.app_context():
        denied = db.session.scalars(
            select(AuditEvent.target).where(AuditEvent.action == "access.denied")
        ).all()
    assert f"receipt:{receipt}" in denied

    agent = login_client(app, agent_for(app, family.household_id))
    assert record(agent, family.household_id, [family.sept], "3,00").status_code == 303
    assert "R2030-000002" in text(agent.get("/admin/factures/encaissements?du=2030-11-20"))


def test_only_an_administrator_reverses(app, family):
    receipt = make_receipt(app, family.household_id, [family.sept], 1400, today=TODAY)
    agent = login_client(app, agent_for(app, family.household_id))
    page = text(agent.get(f"/admin/factures/encaissements/{receipt}"))
    assert "Imprimer le reçu (PDF)" in page and "Annuler ce paiement" not in page
    assert reverse(agent, receipt).status_code == 403
    assert state(app, family.sept) == ("paid", 0)


# --- Recording ------------------------------------------------------------------------------------


def test_a_partial_cheque_leaves_the_invoice_to_pay_with_the_right_remainder(
    app, family, admin_client
):
    form = text(
        admin_client.get(
            f"/admin/factures/familles/{family.household_id}/encaissement?facture={family.sept}"
        )
    )
    assert "reste 14,00 €" in form and "reste 21,00 €" in form
    assert 'value="2030-11-20"' in form  # received today, by default
    assert f'value="{family.sept}" checked' in form
    assert f'value="{family.oct}" checked' not in form

    response = record(admin_client, family.household_id, [family.sept], "5,00")

    receipt_id = receipt_id_of(response)
    assert state(app, family.sept) == ("issued", 900)
    with app.app_context():
        receipt = db.session.get(CounterReceipt, receipt_id)
        assert (receipt.number, receipt.amount_cents, receipt.credit_cents) == (
            "R2030-000001",
            500,
            0,
        )
        (payment,) = receipt.payments
        assert (payment.invoice_id, payment.method, payment.amount_cents) == (
            family.sept,
            "cheque",
            500,
        )
    page = text(admin_client.get(f"/admin/factures/{family.sept}"))
    assert "Chèque n° 1234567 (Banque Exemple) reçu le 20/11/2030" in page
    assert "9,00 €" in page

    parent = login_client(app, family)
    invoice_page = text(parent.get(f"/factures/{family.sept}"))
    assert "Chèque n° 1234567 (Banque Exemple) reçu le 20/11/2030" in invoice_page
    assert f"/factures/recus/{receipt_id}.pdf" in invoice_page
    assert "reste 9,00 €" in text(parent.get("/factures"))


def test_one_cheque_pays_two_invoices_oldest_due_first(app, family, admin_client):
    response = record(admin_client, family.household_id, [family.oct, family.sept], "35,00")

    receipt_id = receipt_id_of(response)
    assert state(app, family.sept) == ("paid", 0)
    assert state(app, family.oct) == ("paid", 0)
    with app.app_context():
        shares = db.session.execute(
            select(Payment.invoice_id, Payment.amount_cents)
            .where(Payment.receipt_id == receipt_id)
            .order_by(Payment.id)
        ).all()
    assert [tuple(s) for s in shares] == [(family.sept, 1400), (family.oct, 2100)]
    assert credit_balance_of(app, family.household_id) == 0
    page = text(admin_client.get(f"/admin/factures/encaissements/{receipt_id}"))
    assert "Reçu n° R2030-000001" in page and "Total affecté" in page and "35,00 €" in page


def test_a_short_amount_fills_the_oldest_invoice_first(app, family, admin_client):
    receipt_id_of(record(admin_client, family.household_id, [family.sept, family.oct], "20,00"))
    assert state(app, family.sept) == ("paid", 0)
    assert state(app, family.oct) == ("issued", 1500)


def credit_balance_of(app, household_id: int) -> int:
    with app.app_context():
        return credit_balance(household_id)


def test_money_beyond_what_is_due_becomes_the_familys_credit(app, family, admin_client):
    response = record(admin_client, family.household_id, [family.sept, family.oct], "40")

    receipt_id = receipt_id_of(response)
    assert state(app, family.sept) == ("paid", 0)
    assert state(app, family.oct) == ("paid", 0)
    assert credit_balance_of(app, family.household_id) == 500
    with app.app_context():
        assert db.session.get(CounterReceipt, receipt_id).credit_cents == 500
    page = text(admin_client.get(f"/admin/factures/encaissements/{receipt_id}"))
    assert "Gardé au crédit de la famille" in page and "5,00 €" in page
    assert "5,00 €" in text(admin_client.get("/admin/factures/trop-percus"))
    assert "Trop-perçu" in text(admin_client.get(f"/admin/factures/{family.oct}"))


@pytest.mark.parametrize(
    ("typed", "cents"), [("12,50", 1250), ("1 234,56 €", 123456), ("12.5", 1250), ("7", 700)]
)
def test_amounts_are_typed_french_style(app, family, admin_client, typed, cents):
    receipt_id = receipt_id_of(record(admin_client, family.household_id, [family.sept], typed))
    with app.app_context():
        assert db.session.get(CounterReceipt, receipt_id).amount_cents == cents


@pytest.mark.parametrize("method", ["cash", "transfer", "cesu", "ancv"])
def test_every_counter_mode_is_recorded(app, family, admin_client, method):
    fields = {"reference": "", "issuer": ""} if method in ("cash", "transfer") else {}
    receipt_id = receipt_id_of(
        record(admin_client, family.household_id, [family.sept], method=method, **fields)
    )
    with app.app_context():
        assert db.session.get(CounterReceipt, receipt_id).payments[0].method == method


def test_receipt_numbers_follow_each_other(app, family, admin_client):
    first = receipt_id_of(record(admin_client, family.household_id, [family.sept], "1"))
    second = receipt_id_of(record(admin_client, family.household_id, [family.sept], "1"))
    with app.app_context():
        numbers = [db.session.get(CounterReceipt, i).number for i in (first, second)]
        assert db.session.get(ReceiptCounter, 2030).last_number == 2
    assert numbers == ["R2030-000001", "R2030-000002"]


# --- Refused, and nothing saved -------------------------------------------------------------


def other_households_invoice(app, family) -> int:
    return make_invoice(app, make_user(app, role="parent").household_id)


def cancelled_invoice(app, family) -> int:
    return make_invoice(app, family.household_id, month=date(2030, 6, 1), status="cancelled")


def debit_invoice(app, family) -> int:
    mandate = make_mandate(app, family.household_id)
    return make_invoice(
        app, family.household_id, month=date(2030, 7, 1), status="direct_debit", mandate_id=mandate
    )


def credit_note(app, family) -> int:
    with app.app_context():
        note = Invoice(
            household_id=family.household_id,
            kind="credit",
            credit_for_id=family.sept,
            year=2030,
            sequence=900_001,
            number="A2030-900001",
            month=SEPT,
            due_on=TODAY,
            total_cents=-300,
            addressee="Famille",
        )
        db.session.add(note)
        db.session.commit()
        return note.id


def paid_invoice(app, family) -> int:
    return make_invoice(app, family.household_id, month=date(2030, 5, 1), status="paid")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "0"}, "Le montant reçu doit être supérieur à zéro."),
        ({"amount": "0,00"}, "Le montant reçu doit être supérieur à zéro."),
        ({"amount": "-5"}, "Saisissez un montant en euros"),
        ({"amount": "douze"}, "Saisissez un montant en euros"),
        ({"amount": "12,505"}, "Saisissez un montant en euros"),
        ({"amount": ""}, "Indiquez le montant reçu"),
        ({"invoices": []}, "Cochez au moins une facture réglée par ce paiement."),
        ({"invoices": ["x"]}, "Cochez les factures dans la liste."),
        ({"method": ""}, "Choisissez le mode de paiement."),
        ({"method": "bitcoin"}, "Choisissez le mode de paiement dans la liste."),
        ({"method": "card"}, "Choisissez le mode de paiement dans la liste."),
        ({"reference": ""}, "Indiquez le numéro du chèque."),
        ({"issuer": ""}, "Indiquez la banque du chèque."),
        ({"method": "ancv", "reference": ""}, "Indiquez le numéro du titre."),
        ({"received_on": "2030-11-21"}, "La date de réception ne peut pas être dans le futur."),
        ({"received_on": "2029-01-01"}, "ne peut pas remonter à plus d'un an"),
        ({"received_on": "demain"}, "Saisissez une date valide"),
        ({"note": "a\x00b"}, "caractères non autorisés"),
    ],
)
def test_bad_input_is_refused_in_french_and_nothing_is_saved(
    app, family, admin_client, fields, message
):
    response = record(admin_client, family.household_id, [family.sept], **fields)

    assert response.status_code == 422
    assert message in text(response)
    assert count(app, CounterReceipt) == 0 and count(app, Payment) == 0
    assert state(app, family.sept) == ("issued", 1400)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (other_households_invoice, "n'est pas une facture de cette famille"),
        (cancelled_invoice, "a été annulée par un avoir"),
        (debit_invoice, "est réglée par prélèvement automatique"),
        (credit_note, "est un avoir : il ne se paie pas"),
        (paid_invoice, "est déjà réglée"),
    ],
)
def test_invoices_the_counter_cannot_take_are_refused(app, family, admin_client, make, message):
    refused = make(app, family)
    before = state(app, family.sept)  # a credit note lowers what is left: 11,00 €

    response = record(admin_client, family.household_id, [family.sept, refused], "100")

    assert response.status_code == 422
    assert message in text(response)
    assert count(app, CounterReceipt) == 0 and count(app, Payment) == 0
    assert count(app, HouseholdCredit) == 0
    assert count(app, ReceiptCounter) == 0  # no number taken
    assert state(app, family.sept) == before


def test_an_invoice_the_amount_does_not_reach_is_refused(app, family, admin_client):
    response = record(admin_client, family.household_id, [family.sept, family.oct], "14,00")

    assert response.status_code == 422
    assert "Le montant ne suffit pas pour la facture" in text(response)
    assert count(app, Payment) == 0


def test_a_rejected_direct_debit_is_taken_at_the_counter(app, family, admin_client):
    """Once the bank rejected it, the invoice is "issued" again: payable at the counter."""
    mandate = make_mandate(app, family.household_id)
    invoice = make_invoice(
        app, family.household_id, month=date(2030, 7, 1), status="issued", mandate_id=mandate
    )
    receipt_id_of(record(admin_client, family.household_id, [invoice], "14"))
    assert state(app, invoice) == ("paid", 0)


MONEY = st.one_of(
    st.sampled_from(["", "0", "1", "14,00", "-1", "9999999", "1e3", "€", " ", "\x00", "12,5,0"]),
    st.text(max_size=12),
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["cheque", "cash", "transfer", "cesu", "ancv", "", "x", "\x00"]),
    amount=MONEY,
    received=st.sampled_from(["2030-11-20", "", "2030-02-30", "0001-01-01", "9999-12-31", "x"]),
    reference=st.text(max_size=80),
    invoices=st.lists(st.sampled_from(["1", "0", "-1", "99999999999", "x", "\x00"]), max_size=3),
)
def test_random_counter_forms_never_fail(
    app, family, admin_client, method, amount, received, reference, invoices
):
    before = count(app, Payment)
    response = record(
        admin_client,
        family.household_id,
        [],
        amount,
        method=method,
        received_on=received,
        reference=reference,
        invoices=invoices,
    )
    assert response.status_code in (303, 422), response.status_code
    if response.status_code == 422:
        assert count(app, Payment) == before


# --- Reversal -----------------------------------------------------------------------------------


def test_an_administrator_reverses_a_cheque_and_the_invoices_are_due_again(
    app, family, admin_client
):
    receipt_id = receipt_id_of(
        record(admin_client, family.household_id, [family.sept, family.oct], "40")
    )
    assert credit_balance_of(app, family.household_id) == 500

    response = reverse(admin_client, receipt_id, "Chèque rejeté par la banque")

    assert response.status_code == 303
    assert state(app, family.sept) == ("issued", 1400)
    assert state(app, family.oct) == ("issued", 2100)
    assert credit_balance_of(app, family.household_id) == 0
    with app.app_context():
        receipt = db.session.get(CounterReceipt, receipt_id)
        assert receipt.reversal_reason == "Chèque rejeté par la banque"
        assert all(p.reversed_at is not None for p in receipt.payments)
        kinds = db.session.execute(
            select(HouseholdCredit.kind, HouseholdCredit.amount_cents)
            .where(HouseholdCredit.household_id == family.household_id)
            .order_by(HouseholdCredit.id)
        ).all()
        audit = db.session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "counter.reversed")
        )
    assert [tuple(k) for k in kinds] == [("overpayment", 500), ("reversal", -500)]
    assert "Chèque rejeté par la banque" in audit
    page = text(admin_client.get(f"/admin/factures/encaissements/{receipt_id}"))
    assert "Paiement annulé" in page and "Annuler ce paiement</button>" not in page
    assert "Aucun trop-perçu à traiter." in text(admin_client.get("/admin/factures/trop-percus"))
    listing = text(admin_client.get("/admin/factures/encaissements"))
    assert "Non comptés : 1 paiement annulé (40,00 €)" in listing
    parent_page = text(login_client(app, family).get(f"/factures/{family.sept}"))
    assert "Annulé" in parent_page and "14,00 € à payer" in parent_page
    # Paid again afterwards: the reversed payment no longer counts.
    receipt_id_of(record(admin_client, family.household_id, [family.sept], "14"))
    assert state(app, family.sept) == ("paid", 0)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("   ", "Le motif est obligatoire."),
        ("Chèque\x00rejeté", "Le motif contient des caractères non autorisés."),
        ("x" * 201, "Le motif ne peut pas dépasser 200 caractères."),
    ],
)
def test_a_reversal_needs_a_proper_reason(app, family, admin_client, reason, message):
    receipt_id = receipt_id_of(record(admin_client, family.household_id, [family.sept]))
    response = reverse(admin_client, receipt_id, reason)
    assert response.status_code == 422
    assert message in text(response)
    assert state(app, family.sept) == ("paid", 0)
    assert count(app, AuditEvent, AuditEvent.action == "counter.reversed") == 0


def test_a_reversal_twice_is_refused(app, family, admin_client):
    receipt_id = receipt_id_of(record(admin_client, family.household_id, [family.sept], "20"))
    assert reverse(admin_client, receipt_id).status_code == 303

    again = reverse(admin_client, receipt_id, "Encore")

    assert again.status_code == 409
    assert "Ce paiement est déjà annulé." in text(again)
    with app.app_context():
        assert db.session.get(CounterReceipt, receipt_id).reversal_reason == (
            "Chèque rejeté par la banque"
        )
    assert count(app, HouseholdCredit, HouseholdCredit.kind == "reversal") == 1
    assert credit_balance_of(app, family.household_id) == 0


def test_a_reversal_is_refused_once_its_credit_was_refunded(app, family, admin, admin_client):
    receipt_id = receipt_id_of(record(admin_client, family.household_id, [family.sept], "20"))
    with app.test_request_context():
        refunds.record_refund(family.household_id, 600, "transfer", "", actor=None)
        db.session.commit()

    response = reverse(admin_client, receipt_id)

    assert response.status_code == 422
    assert "son solde n'est plus que de 0,00 €" in text(response)
    assert state(app, family.sept) == ("paid", 0)
    with app.app_context():
        assert db.session.get(CounterReceipt, receipt_id).reversed_at is None


# --- The receipt, on paper ----------------------------------------------------------------------


def test_the_receipt_pdf_says_who_paid_what_for_which_invoices(app, family, admin_client, tmp_path):
    receipt_id = receipt_id_of(
        record(admin_client, family.household_id, [family.sept, family.oct], "40")
    )
    response = admin_client.get(f"/admin/factures/encaissements/{receipt_id}.pdf")

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "recu-R2030-000001.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    content = pdf_text(tmp_path, response.data)
    with app.app_context():
        numbers = [db.session.get(Invoice, i).number for i in (family.sept, family.oct)]
    for expected in (
        "Reçu n° R2030-000001",
        "Ville de",
        "Montant reçu : 40,00 €",
        "Chèque n° 1234567 (Banque Exemple) reçu le 20/11/2030",
        numbers[0],
        numbers[1],
        "14,00 €",
        "21,00 €",
        "Gardé au crédit de la famille : 5,00 €",
    ):
        assert expected in content, expected


def test_the_family_downloads_its_own_receipts_only(app, family, tmp_path):
    receipt_id = make_receipt(app, family.household_id, [family.sept], 1400, today=TODAY)
    stranger = make_user(app, role="parent")

    parent = login_client(app, family)
    response = parent.get(f"/factures/recus/{receipt_id}.pdf")
    assert response.status_code == 200
    assert "Reçu n° R2030-000001" in pdf_text(tmp_path, response.data)
    assert login_client(app, stranger).get(f"/factures/recus/{receipt_id}.pdf").status_code == 404
    assert parent.get("/factures/recus/99999999999.pdf").status_code == 404


# --- Pages --------------------------------------------------------------------------------------


def test_the_familys_invoices_page_offers_to_record_a_payment(app, family, admin_client):
    receipt_id = make_receipt(app, family.household_id, [family.sept], 1400, today=TODAY)
    page = text(admin_client.get(f"/admin/factures/familles/{family.household_id}"))
    assert "Enregistrer un paiement" in page
    assert f"/admin/factures/encaissements/{receipt_id}" in page
    assert "Reste à payer" in page and "21,00 €" in page
    invoice_page = text(admin_client.get(f"/admin/factures/{family.oct}"))
    assert f"encaissement?facture={family.oct}" in invoice_page


def total_row(mode: str, count: int, amount: str) -> str:
    cell = '<td class="inv-num">'
    return f"{mode}</th>{cell}{count}</td>{cell}{amount}</td>"


def test_the_cash_up_lists_a_day_by_mode_with_totals(app, family, admin_client):
    make_receipt(app, family.household_id, [family.sept], 500, today=TODAY)
    make_receipt(app, family.household_id, [family.sept], 300, method="cash", today=TODAY)
    make_receipt(
        app,
        family.household_id,
        [family.oct],
        700,
        method="cash",
        received_on=date(2030, 11, 19),
        today=TODAY,
    )

    today_page = text(admin_client.get("/admin/factures/encaissements"))
    assert "Reçu le 20/11/2030" in today_page
    assert "R2030-000001" in today_page and "R2030-000002" in today_page
    assert "R2030-000003" not in today_page
    assert total_row("Chèque", 1, "5,00 €") in today_page
    assert total_row("Espèces", 1, "3,00 €") in today_page
    assert "<strong>8,00 €</strong>" in today_page

    span = "du=2030-11-19&au=2030-11-20&mode=cash"
    cash = text(admin_client.get(f"/admin/factures/encaissements?{span}"))
    assert "R2030-000001" not in cash
    assert "R2030-000002" in cash and "R2030-000003" in cash
    assert "<strong>10,00 €</strong>" in cash
    # Nonsense in the query string: today, every mode.
    odd = admin_client.get("/admin/factures/encaissements?du=0001-01-01&au=x&mode=%00")
    assert odd.status_code in (200, 400)


def test_the_cash_up_runs_a_fixed_number_of_queries(app, family, admin, admin_client):
    make_receipt(app, family.household_id, [family.sept], 100, today=TODAY)
    with counted_queries(app) as one:
        admin_client.get("/admin/factures/encaissements")
    for _ in range(4):
        make_receipt(app, family.household_id, [family.sept], 100, today=TODAY)
    with counted_queries(app) as five:
        admin_client.get("/admin/factures/encaissements")
    assert len(five) == len(one)
