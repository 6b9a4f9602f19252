"""Mes factures (family) and the staff's invoice pages: balance, status in words, credit
notes, payments, access, and a constant number of queries."""

from __future__ import annotations

import html
import itertools
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from citoyens.billing import invoice_list, rules
from citoyens.billing.models import Invoice, InvoiceLine, Payment
from citoyens.billing.money import euros
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.households.models import Household
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import counted_queries, post
from tests.factories import make_user

TODAY = date(2030, 11, 20)
SEPT, OCT, NOV = date(2030, 9, 1), date(2030, 10, 1), date(2030, 11, 1)
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    """ "En retard" is decided against the billing pages' clock: 20 November 2030."""
    monkeypatch.setattr(rules, "today", lambda: TODAY)


def plain(text: str) -> str:
    """Babel's no-break spaces as plain spaces, to compare with what a test writes."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return plain(html.unescape(response.get_data(as_text=True)))


def make_credit(app, invoice_id: int, cents: int, *, stored_negative=True, cancel=False) -> int:
    """A credit note correcting the invoice; `cancel` marks the invoice "cancelled"."""
    n = next(_numbers)
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        credit = Invoice(
            household_id=invoice.household_id,
            kind="credit",
            credit_for_id=invoice.id,
            year=invoice.year,
            sequence=500_000 + n,
            number=f"A{invoice.year}-{n:06d}",
            month=invoice.month,
            due_on=invoice.due_on,
            total_cents=-cents if stored_negative else cents,
            status="issued",
            paperless=invoice.paperless,
            addressee=invoice.addressee,
        )
        credit.lines.append(
            InvoiceLine(
                kind="credit",
                child_name="Léa",
                label="Repas du midi (absence justifiée)",
                unit_price_cents=cents,
                quantity=1,
                amount_cents=-cents if stored_negative else cents,
                days=invoice.month.isoformat(),
            )
        )
        db.session.add(credit)
        if cancel:
            invoice.status = "cancelled"
        db.session.commit()
        return credit.id


def make_payment(app, invoice_id: int, cents: int, *, method="card", paid_on=None, rejected=False):
    paid_at = datetime.combine(paid_on or date(2030, 10, 12), datetime.min.time(), UTC).replace(
        hour=10
    )
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        payment = Payment(
            invoice_id=invoice_id,
            household_id=invoice.household_id,
            method=method,
            amount_cents=cents,
            transaction_id=f"TX-{invoice_id}-{next(_numbers)}",
            paid_at=paid_at,
            rejected_at=paid_at.replace(day=paid_at.day + 1) if rejected else None,
            rejection_reason="Provision insuffisante" if rejected else None,
        )
        db.session.add(payment)
        db.session.commit()
        return payment.id


def set_invoice(app, invoice_id: int, **values) -> None:
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        for name, value in values.items():
            setattr(invoice, name, value)
        db.session.commit()


def number_of(app, invoice_id: int) -> str:
    with app.app_context():
        return db.session.get(Invoice, invoice_id).number


def statement(app, household_id: int) -> rules.Statement:
    with app.app_context():
        return rules.household_statement(household_id, rules.today())


def bare_households(app, count: int) -> list[int]:
    with app.app_context():
        households = [Household() for _ in range(count)]
        db.session.add_all(households)
        db.session.commit()
        return [h.id for h in households]


# --- Money and days, in French ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "expected"),
    [(1230, "12,30 €"), (-1230, "-12,30 €"), (5, "0,05 €"), (123456789, "1 234 567,89 €")],
)
def test_euros_in_french(cents, expected):
    assert plain(euros(cents)) == expected


def test_euros_of_nothing_is_empty():
    assert euros(None) == ""


def test_euros_filter_is_registered_for_every_template(app):
    assert "euros" in app.jinja_env.filters
    with app.test_request_context():
        assert plain(app.jinja_env.from_string("{{ 1230|euros }}").render()) == "12,30 €"


def test_days_are_listed_compactly():
    days = "2030-09-09,2030-09-02,2030-09-03,2030-09-05,2030-10-01,bad,"
    assert rules.days_compact(days) == "2, 3, 5, 9 septembre, 1er octobre"
    assert rules.days_compact(None) == ""


# --- The family's statement -------------------------------------------------------------------


def test_balance_and_status_in_words(app, parent):
    household = parent.household_id
    to_pay = make_invoice(app, household, month=NOV, lines=[("Repas", 410, 3)])
    set_invoice(app, to_pay, due_on=date(2030, 12, 15))
    late = make_invoice(app, household, month=OCT, lines=[("Repas", 500, 2)])
    set_invoice(app, late, due_on=date(2030, 11, 15))
    paid = make_invoice(app, household, month=SEPT, status="paid")
    make_payment(app, paid, 1400, paid_on=date(2030, 10, 12))
    mandate = make_mandate(app, household)
    debit = make_invoice(
        app, household, month=date(2030, 8, 1), status="direct_debit", mandate_id=mandate
    )
    set_invoice(app, debit, debit_on=date(2030, 12, 15))
    debited = make_invoice(app, household, month=date(2030, 7, 1), status="debited")
    cancelled = make_invoice(app, household, month=date(2030, 6, 1), lines=[("Repas", 300, 2)])
    credit = make_credit(app, cancelled, 600, cancel=True)

    result = statement(app, household)
    labels = {row.invoice.id: row.state.label for row in result.rows}
    assert labels == {
        to_pay: "À payer avant le 15/12/2030",
        late: "En retard",
        paid: "Payée le 12/10/2030",
        debit: "Prélèvement prévu le 15/12/2030",
        debited: "Prélevée",
        cancelled: "Annulée par avoir",
        credit: "Avoir",
    }
    # Issued invoices only: the direct debit is the bank's job, the credit cancelled its invoice.
    assert result.balance_cents == 1230 + 1000
    assert result.late_cents == 1000
    assert result.debit_cents == 1400
    assert [row.invoice.id for row in result.rows][:2] == [to_pay, late]  # newest first

    client = app.test_client()
    post(client, "/connexion", {"email": parent.email, "password": parent.password})
    text = page_text(client.get("/factures"))
    for label in labels.values():
        assert label in text
    assert "22,30 €" in text  # balance
    assert "Dont 10,00 € en retard" in text
    assert "Novembre 2030" in text and number_of(app, to_pay) in text
    assert "-6,00 €" in text  # the credit note, negative
    assert "14,00 € seront prélevés automatiquement" in text
    assert "Activé" in text and "FR76 •••• •••• •••• •••• •••• 189" in text


def test_overdue_is_decided_against_today(app, parent, monkeypatch):
    invoice = make_invoice(app, parent.household_id, month=SEPT, due_on=date(2030, 10, 31))
    monkeypatch.setattr(rules, "today", lambda: date(2030, 10, 31))
    assert statement(app, parent.household_id).rows[0].state.label == "À payer avant le 31/10/2030"
    client = app.test_client()
    post(client, "/connexion", {"email": parent.email, "password": parent.password})
    assert "En retard" not in page_text(client.get(f"/factures/{invoice}"))
    monkeypatch.setattr(rules, "today", lambda: date(2030, 11, 1))
    assert statement(app, parent.household_id).rows[0].state.code == "late"
    assert "En retard" in page_text(client.get(f"/factures/{invoice}"))


@pytest.mark.parametrize("stored_negative", [True, False], ids=["negative", "positive"])
def test_credit_note_reduces_what_is_left_to_pay(app, parent, stored_negative):
    invoice = make_invoice(app, parent.household_id, month=SEPT, lines=[("Repas", 500, 10)])
    make_credit(app, invoice, 1000, stored_negative=stored_negative)
    result = statement(app, parent.household_id)
    assert result.balance_cents == 4000
    credit_row = next(row for row in result.rows if row.invoice.kind == "credit")
    assert credit_row.total_cents == -1000 and credit_row.state.label == "Avoir"


def test_payments_count_unless_rejected(app, parent):
    household = parent.household_id
    invoice = make_invoice(app, household, month=SEPT, lines=[("Repas", 1000, 3)])
    make_payment(app, invoice, 1000, paid_on=date(2030, 10, 2))
    make_payment(
        app, invoice, 2000, method="direct_debit", paid_on=date(2030, 10, 15), rejected=True
    )
    result = statement(app, household)
    assert result.balance_cents == 2000
    assert result.rows[0].open_cents == 2000
    assert [(p.method, p.rejected) for p in result.payments] == [
        ("Prélèvement", True),
        ("Carte bancaire (PayFiP)", False),
    ]
    client = app.test_client()
    post(client, "/connexion", {"email": parent.email, "password": parent.password})
    text = page_text(client.get("/factures"))
    assert "Rejeté" in text and "Provision insuffisante" in text
    assert "02/10/2030" in text and "reste 20,00 €" in text


def test_an_issued_invoice_fully_paid_is_not_late(app, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT, due_on=date(2030, 10, 1))
    make_payment(app, invoice, 1400)
    row = statement(app, parent.household_id).rows[0]
    assert (row.open_cents, row.state.label) == (0, "Soldée")


def test_no_invoice_yet(app, client, auth, parent):
    auth.login(parent)
    text = page_text(client.get("/factures"))
    assert "Vous n'avez pas encore de facture" in text
    assert "rien à payer" in text


def test_three_choices_are_explained_and_paperless_reflects_the_household(
    app, client, auth, parent, monkeypatch
):
    with app.app_context():
        db.session.get(Household, parent.household_id).paperless_invoices = False
        db.session.commit()
    auth.login(parent)
    text = page_text(client.get("/factures"))
    assert "Facture en ligne" in text and "Désactivée" in text
    assert "Paiement en ligne" in text and "Prélèvement automatique" in text
    assert 'href="/mon-foyer/modifier"' in text
    assert "Non activé" in text
    if "billing.mandate" in app.view_functions:
        with app.test_request_context():
            from flask import url_for

            assert f'href="{url_for("billing.mandate")}"' in text
    monkeypatch.delitem(app.view_functions, "billing.mandate", raising=False)
    text = page_text(client.get("/factures"))
    assert "Mettre en place le prélèvement automatique" not in text


# --- One invoice ------------------------------------------------------------------------------


def test_invoice_page_lists_lines_days_and_how_to_pay(app, client, auth, parent):
    invoice = make_invoice(
        app, parent.household_id, month=SEPT, lines=[("Accueil du matin", 410, 4)]
    )
    set_invoice(app, invoice, family_quotient=850, band_label="Tranche 3", due_on=date(2030, 12, 1))
    auth.login(parent)
    text = page_text(client.get(f"/factures/{invoice}"))
    assert "Facture de septembre 2030" in text
    assert "Accueil du matin" in text and "Léa" in text
    assert "1er, 2, 3, 4 septembre" in text
    assert "4 × 4,10 €" in text and "16,40 €" in text
    assert "À payer avant le 01/12/2030" in text
    assert "850 €" in text and "Tranche 3" in text
    assert f"la référence <strong>{number_of(app, invoice)}</strong>" in text
    assert f'href="/factures/{invoice}.pdf"' in text
    assert "Télécharger la facture (PDF)" in text
    assert '<div id="paiement">' in text


def test_direct_debit_invoice_says_when_it_is_debited(app, client, auth, parent):
    mandate = make_mandate(app, parent.household_id)
    invoice = make_invoice(
        app, parent.household_id, month=SEPT, status="direct_debit", mandate_id=mandate
    )
    set_invoice(app, invoice, debit_on=date(2030, 10, 15))
    auth.login(parent)
    text = page_text(client.get(f"/factures/{invoice}"))
    assert "Prélèvement prévu le 15/10/2030" in text
    assert "FR76 •••• •••• •••• •••• •••• 189" in text
    assert "vous n'avez rien à faire" in text
    assert "FR7630006000011234567890189" not in text


def test_credit_note_page_names_the_invoice_it_corrects(app, client, auth, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT)
    credit = make_credit(app, invoice, 1400, cancel=True)
    auth.login(parent)
    text = page_text(client.get(f"/factures/{credit}"))
    assert "Avoir de septembre 2030" in text
    assert f"n° {number_of(app, invoice)}" in text
    assert "-14,00 €" in text and "rien à payer" in text
    assert "Télécharger l'avoir (PDF)" in text
    text = page_text(client.get(f"/factures/{invoice}"))
    assert "Annulée par avoir" in text and f"n° {number_of(app, credit)}" in text


def test_another_households_invoice_is_404(app, client, auth, parent):
    other = make_user(app, role="parent")
    invoice = make_invoice(app, other.household_id, month=SEPT)
    auth.login(parent)
    assert client.get(f"/factures/{invoice}").status_code == 404
    assert client.get(f"/factures/{invoice}.pdf").status_code == 404
    assert client.get("/factures/999999").status_code == 404
    assert number_of(app, invoice) not in page_text(client.get("/factures"))


def test_another_households_payments_are_not_listed(app, client, auth, parent):
    other = make_user(app, role="parent")
    invoice = make_invoice(app, other.household_id, month=SEPT)
    make_payment(app, invoice, 1400)
    assert statement(app, parent.household_id).payments == []


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_get_403_on_family_invoice_pages(app, client, auth, role, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT)
    auth.login(make_user(app, role=role))
    for path in ("/factures", f"/factures/{invoice}", f"/factures/{invoice}.pdf"):
        assert client.get(path).status_code == 403, path


def test_family_pages_run_a_constant_number_of_queries(app, client, auth, parent):
    household = parent.household_id
    auth.login(parent)
    first = make_invoice(app, household, month=date(2029, 1, 1))
    make_payment(app, first, 500)
    with counted_queries(app) as one:
        assert client.get("/factures").status_code == 200
    for n in range(1, 20):
        invoice = make_invoice(app, household, month=date(2029 + n // 12, n % 12 + 1, 1))
        make_payment(app, invoice, 500)
    make_credit(app, first, 100)
    with counted_queries(app) as twenty:
        page = client.get("/factures")
    assert page.get_data(as_text=True).count('class="inv-item"') == 21 + 20
    assert len(one) == len(twenty)


# --- Staff ------------------------------------------------------------------------------------


def staff_client(app, role="admin"):
    """A logged-in back office client: an administrator by default, who sees every family
    (an agent sees their services' families only: tests/test_staff_scope.py)."""
    client = app.test_client()
    account = make_user(app, role=role)
    post(client, "/connexion", {"email": account.email, "password": account.password})
    return client, account


def test_parent_gets_403_on_staff_invoice_pages(app, client, auth, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT)
    auth.login(parent)
    for path in (
        "/admin/factures",
        f"/admin/factures/{invoice}",
        f"/admin/factures/{invoice}.pdf",
        "/admin/factures/papier.pdf?mois=2030-09",
    ):
        assert client.get(path).status_code == 403, path


def test_month_list_filters_counts_and_totals(app):
    households = bare_households(app, 5)
    due = make_invoice(app, households[0], month=SEPT, due_on=date(2030, 12, 1))
    late = make_invoice(app, households[1], month=SEPT, due_on=date(2030, 10, 31), paperless=False)
    paid = make_invoice(app, households[2], month=SEPT, status="paid", paperless=False)
    make_payment(app, paid, 1400, paid_on=date(2030, 10, 3))
    cancelled = make_invoice(app, households[3], month=SEPT)
    make_credit(app, cancelled, 1400, cancel=True)
    make_invoice(app, households[4], month=OCT)  # another month
    client, _agent = staff_client(app)

    text = page_text(client.get("/admin/factures?mois=2030-09"))
    assert "Factures de septembre 2030" in text
    assert "4 factures pour 56,00 €" in text and "1 avoir pour -14,00 €" in text
    assert "net 42,00 €" in text
    assert "À payer : 1" in text and "En retard : 1" in text and "Payées : 1" in text
    assert "Annulées par avoir : 1" in text and "Avoirs : 1" in text
    assert "5 documents" in text
    assert "Imprimer les factures papier (2, PDF)" in text
    assert "/admin/factures/papier.pdf?mois=2030-09" in text
    assert "Payée le 03/10/2030" in text and "Papier" in text and "En ligne" in text

    overdue = page_text(client.get("/admin/factures?mois=2030-09&statut=overdue"))
    assert number_of(app, late) in overdue and number_of(app, due) not in overdue
    assert "1 document" in overdue
    found = page_text(client.get(f"/admin/factures?mois=2030-09&q={number_of(app, paid)}"))
    assert "1 document" in found and number_of(app, paid) in found
    by_name = page_text(
        client.get(
            "/admin/factures", query_string={"mois": "2030-09", "q": f"Famille {households[0]}"}
        )
    )
    assert number_of(app, due) in by_name


@pytest.mark.parametrize(
    "query",
    [
        "?mois=2030-13",
        "?mois=x",
        "?statut=nope&q=%25_",
        "?page=-3",
        "?page=99999999999999999999",
        "?mois=9999-01",
    ],
)
def test_month_list_survives_odd_filters(app, query):
    client, _agent = staff_client(app)
    assert client.get(f"/admin/factures{query}").status_code == 200


def test_month_list_defaults_to_the_latest_month_invoiced(app):
    make_invoice(app, bare_households(app, 1)[0], month=date(2031, 2, 1))
    client, _agent = staff_client(app)
    assert "Factures de février 2031" in page_text(client.get("/admin/factures"))


def test_month_list_is_paginated(app):
    households = bare_households(app, invoice_list.STAFF_PAGE_SIZE + 1)
    for household in households:
        make_invoice(app, household, month=SEPT)
    client, _agent = staff_client(app)
    first = page_text(client.get("/admin/factures?mois=2030-09"))
    assert f"{invoice_list.STAFF_PAGE_SIZE + 1} documents" in first and "page 1 sur 2" in first
    second = client.get("/admin/factures?mois=2030-09&page=2").get_data(as_text=True)
    assert second.count('<td class="inv-num">') == 1


def test_staff_list_runs_a_constant_number_of_queries(app):
    client, _agent = staff_client(app)
    households = bare_households(app, 20)
    first = make_invoice(app, households[0], month=SEPT)
    make_payment(app, first, 1400)
    with counted_queries(app) as one:
        assert client.get("/admin/factures?mois=2030-09").status_code == 200
    for household in households[1:]:
        invoice = make_invoice(app, household, month=SEPT, paperless=household % 2 == 0)
        make_payment(app, invoice, 700)
    with counted_queries(app) as twenty:
        assert client.get("/admin/factures?mois=2030-09").status_code == 200
    assert len(one) == len(twenty)


def test_staff_read_an_invoice_with_its_payments(app, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT, lines=[("Repas", 1000, 2)])
    make_payment(app, invoice, 2000, method="direct_debit", rejected=True)
    make_payment(app, invoice, 500, method="manual", paid_on=date(2030, 10, 20))
    loner, _agent = staff_client(app, role="staff")  # an agent of no service at all
    assert loner.get(f"/admin/factures/{invoice}").status_code == 404
    assert loner.get(f"/admin/factures/{invoice}.pdf").status_code == 404
    client, _admin = staff_client(app)
    text = page_text(client.get(f"/admin/factures/{invoice}"))
    assert f"Facture n° {number_of(app, invoice)}" in text
    assert "Rejeté" in text and "Au guichet" in text and "Prélèvement" in text
    assert "15,00 €" in text  # left to pay
    assert f"/admin/familles/{parent.household_id}" in text
    assert client.get("/admin/factures/999999").status_code == 404


def test_staff_pdf_downloads_are_audited(app, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT, paperless=False)
    client, agent = staff_client(app)
    response = client.get(f"/admin/factures/{invoice}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert client.get("/admin/factures/papier.pdf?mois=2030-09").status_code == 200
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent.action, AuditEvent.target).where(AuditEvent.actor_id == agent.id)
        ).all()
    assert ("invoice.pdf", f"invoice:{invoice}") in events
    assert ("invoices.paper_pdf", "month:2030-09") in events
