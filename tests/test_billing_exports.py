"""« Exporter » on the staff invoice list (issue 14): the month's invoices as filtered, and the
payments received over a period, as CSV or XLSX; agents get their families only; bad input
gets a French message; formulas are neutralised."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from tests.billing_factories import make_invoice
from tests.factories import make_user
from tests.finance_factories import (
    change_invoice,
    csv_rows,
    make_credit_note,
    make_payment,
    number_of,
    xlsx_sheets,
)
from tests.scope_factories import make_world
from tests.test_access import login_client
from tests.test_admin_reservations import login

TODAY = date(2030, 11, 25)
SEPTEMBER = date(2030, 9, 1)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr("citoyens.billing.rules.today", lambda: TODAY)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def month(app):
    """September 2030: an overdue invoice, one not yet due, a paid one, a credit note; families
    named like formulas. Returns the invoice ids by name."""
    ids = {}
    for name, due_days, status in (
        ("late", -20, "issued"),
        ("due", 10, "issued"),
        ("paid", -20, "paid"),
    ):
        account = make_user(app, role="parent")
        ids[name] = make_invoice(
            app, account.household_id, month=SEPTEMBER, due_on=TODAY + timedelta(days=due_days)
        )
        change_invoice(app, ids[name], status=status)
    change_invoice(app, ids["late"], addressee='=HYPERLINK("http://x")')
    change_invoice(app, ids["due"], addressee="+cmd")
    change_invoice(app, ids["paid"], addressee="@SUM(1)")
    ids["credit"] = make_credit_note(
        app, ids["due"], 300, issued_at=datetime(2030, 10, 20, tzinfo=UTC)
    )
    return ids


def test_the_list_exports_as_filtered(app, admin, month):
    client = login(app, admin)
    page = text(client.get("/admin/factures?mois=2030-09&statut=overdue"))
    assert "/admin/factures/export?format=csv&mois=2030-09&statut=overdue" in page
    assert "Exporter cette liste" in page and "Exporter les paiements reçus" in page
    response = client.get("/admin/factures/export?mois=2030-09&statut=overdue&format=csv")
    assert response.status_code == 200
    assert "factures-2030-09.csv" in response.headers["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[:3] == ["Numéro", "Type", "Mois facturé"]
    assert [row[0] for row in rows] == [number_of(app, month["late"])]
    (row,) = rows
    assert row[header.index("État")] == "En retard" and row[header.index("Montant")] == "14,00"
    assert row[header.index("Famille")] == '\'=HYPERLINK("http://x")'
    everything = xlsx_sheets(client.get("/admin/factures/export?mois=2030-09&format=xlsx"))
    header, *rows = everything["Factures"]
    by_number = {row[0]: row for row in rows}
    assert set(by_number) == {number_of(app, i) for i in month.values()}
    credit = by_number[number_of(app, month["credit"])]
    assert credit[1] == "Avoir" and Decimal(str(credit[header.index("Montant")])) == Decimal("-3")
    families = {row[header.index("Famille")] for row in rows}
    assert {'\'=HYPERLINK("http://x")', "'+cmd", "'@SUM(1)"} <= families
    search = csv_rows(client.get("/admin/factures/export?mois=2030-09&q=cmd"))
    assert {row[0] for row in search[1:]} == {
        number_of(app, month["due"]),
        number_of(app, month["credit"]),  # its credit note, made out to the same family
    }
    with app.app_context():
        assert db.session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "invoices.exported", AuditEvent.target == "month:2030-09"
            )
        )
    bad = client.get("/admin/factures/export?mois=2030-09&format=exe")
    assert bad.status_code == 400 and "Format d'export inconnu" in text(bad)


def test_payments_received_over_a_period(app, admin, month):
    paris_midnight = datetime(2030, 9, 30, 22, 30, tzinfo=UTC)  # 1 October 00:30 in Paris
    make_payment(app, month["late"], 500, method="card", paid_at=paris_midnight)
    make_payment(app, month["due"], 250, method="manual", paid_at=datetime(2030, 10, 9, tzinfo=UTC))
    make_payment(
        app, month["due"], 900, method="direct_debit", paid_at=datetime(2030, 10, 9, tzinfo=UTC)
    )
    make_payment(
        app,
        month["paid"],
        1400,
        method="direct_debit",
        paid_at=datetime(2030, 10, 15, tzinfo=UTC),
        rejected=True,
    )
    make_payment(app, month["paid"], 1400, paid_at=datetime(2030, 11, 2, tzinfo=UTC))
    client = login(app, admin)
    response = client.get("/admin/paiements/export?du=2030-10-01&au=2030-10-31")
    assert "paiements-2030-10-01-au-2030-10-31.csv" in response.headers["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert [row[header.index("Montant")] for row in rows] == ["5,00", "2,50", "9,00"]
    assert rows[0][0] == "01/10/2030 00:30"  # Paris time
    assert rows[0][header.index("Famille")] == '\'=HYPERLINK("http://x")'
    book = xlsx_sheets(
        client.get("/admin/paiements/export?du=2030-10-01&au=2030-10-31&format=xlsx")
    )
    assert list(book) == ["Paiements", "Paiements par mode"]
    modes = {row[0]: row for row in book["Paiements par mode"][1:]}
    assert modes["Carte bancaire (PayFiP)"][2:] == [1, 5]
    assert modes["Au guichet"][1:] == ["manual", 1, 2.5]
    assert modes["Prélèvement"][2] == 1  # the rejected debit does not count
    assert modes["Total des paiements"][2:] == [3, 16.5]
    # Bad periods: a French message, never a file.
    for query, message in (
        ("du=2030-10-01", "Indiquez la date de début et la date de fin"),
        ("du=2030-10-31&au=2030-10-01", "doit précéder sa date de fin"),
        ("du=2030-02-30&au=2030-03-01", "n'existe pas dans le calendrier"),
        ("du=abc&au=2030-03-01", "La date de début n'est pas une date valide"),
        ("du=2030-10-01&au=2030-10-31&format=doc", "Format d'export inconnu"),
    ):
        bad = client.get(f"/admin/paiements/export?{query}")
        assert bad.status_code == 400 and message in text(bad), query
    # Neither date: last month (a file, whatever it holds).
    assert client.get("/admin/paiements/export").status_code == 200


def test_agents_export_their_families_only(app):
    world = make_world(app)
    mine, theirs = number_of(app, world.a.invoice), number_of(app, world.b.invoice)
    make_payment(app, world.a.invoice, 100, paid_at=datetime(2030, 10, 3, tzinfo=UTC))
    make_payment(app, world.b.invoice, 200, paid_at=datetime(2030, 10, 3, tzinfo=UTC))
    agent = login_client(app, world.agent)
    invoices = agent.get("/admin/factures/export?mois=2030-09").get_data(as_text=True)
    assert mine in invoices and theirs not in invoices
    payments = agent.get("/admin/paiements/export?du=2030-10-01&au=2030-10-31&format=xlsx")
    book = xlsx_sheets(payments)
    assert [row[4] for row in book["Paiements"][1:]] == [mine]
    assert book["Paiements par mode"][-1][2:] == [1, 1]
    loner = login_client(app, world.loner)
    nothing = csv_rows(loner.get("/admin/paiements/export?du=2030-10-01&au=2030-10-31"))
    assert nothing[1:] == []
    manager = login_client(app, world.admin)
    both = manager.get("/admin/factures/export?mois=2030-09").get_data(as_text=True)
    assert mine in both and theirs in both
