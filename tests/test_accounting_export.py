"""The month's accounting export (/admin/comptabilite, issue 14): administrators only; a bad
month gets a French message; one row per invoice line with the activity's accounting code;
credit notes and payments per mode; totals equal to the cent to the invoice run's and to the
payments'; formulas neutralised; a constant number of queries whatever the month's size."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.billing import month_plan
from citoyens.billing.credits import add_credit
from citoyens.billing.models import Invoice
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.services.models import Activity
from tests.conftest import counted_queries, post
from tests.finance_factories import csv_rows, make_credit_note, make_payment, xlsx_sheets
from tests.test_admin_billing import september_bookings
from tests.test_admin_reservations import login
from tests.test_billing_rules import book, make_family, make_world, run
from tests.test_services import activity_form

SHEET_NAMES = ["Lignes de factures", "Avoirs", "Paiements", "Totaux"]
FORMULAS = ['=HYPERLINK("http://x")', "+cmd", "@SUM(1)"]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def euros(value) -> Decimal:
    """A money cell read back from the XLSX (a float) as exact euros."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def rename(app, account, first_name: str) -> None:
    with app.app_context():
        db.session.get(User, account.id).first_name = first_name
        db.session.commit()


@pytest.fixture
def admin_client(app, admin):
    return login(app, admin)


@pytest.fixture
def september(app, admin_client):
    """September 2030 invoiced (in October): three families, one with a credit balance
    deducted, one with a walk-in, families named like formulas; the meals coded through
    the activity form. Then October: payments (one rejected, two on the month's edges) and
    a credit note. Returns (world, run result, invoice ids)."""
    world = make_world(app)
    response = post(
        admin_client,
        f"/admin/activites/{world.meal_id}/modifier",
        activity_form(name="Repas du midi", accounting_code="7067-REST.1"),
    )
    assert response.status_code == 303
    first = september_bookings(app, world)
    rename(app, first, FORMULAS[0])
    second, (child,) = make_family(app)
    rename(app, second, FORMULAS[1])
    book(app, second.household_id, child, world.evening_id, world.year_id, date(2030, 9, 2))
    book(
        app,
        second.household_id,
        child,
        world.meal_id,
        world.year_id,
        date(2030, 9, 4),
        status="walk_in",
    )
    with app.app_context():
        add_credit(second.household_id, "overpayment", 150, note="Trop-perçu")
        db.session.commit()
    third = september_bookings(app, world)
    rename(app, third, FORMULAS[2])
    result = run(app)
    assert result.count == 3
    with app.app_context():
        ids = list(
            db.session.scalars(select(Invoice.id).where(Invoice.kind == "invoice").order_by("id"))
        )
    october = lambda *args: datetime(2030, *args, tzinfo=UTC)  # noqa: E731
    make_payment(app, ids[0], 600, method="card", paid_at=october(10, 7, 9))
    make_payment(app, ids[1], 500, method="manual", paid_at=october(10, 12, 9))
    # Midnight in Paris: 30 September 22:30 UTC is 1 October; 31 October 23:30 UTC is November.
    make_payment(app, ids[2], 100, method="card", paid_at=datetime(2030, 9, 30, 22, 30, tzinfo=UTC))
    make_payment(app, ids[2], 200, method="card", paid_at=october(10, 31, 23, 30))
    make_payment(app, ids[2], 500, method="direct_debit", paid_at=october(10, 20), rejected=True)
    make_credit_note(app, ids[2], 250, issued_at=october(10, 15, 10))
    return world, result, ids


# --- Access and bad input -----------------------------------------------------------------------


def test_only_administrators_export_the_accounts(app, client, parent, staff):
    for path in ("/admin/comptabilite", "/admin/comptabilite/export?mois=2030-09"):
        anonymous = client.get(path)
        assert anonymous.status_code == 302 and "/connexion" in anonymous.headers["Location"]
        assert login(app, parent).get(path).status_code == 403
        assert login(app, staff).get(path).status_code == 403


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "Mois invalide : « 2026-13 »"),
        ("abc", "Mois invalide : « abc »"),
        ("", "Indiquez le mois à exporter"),
        ("1999-01", "Mois invalide"),
        ("2026-1x", "Mois invalide"),
    ],
)
def test_a_bad_month_gets_a_french_message(admin_client, month, message):
    for path in ("/admin/comptabilite", "/admin/comptabilite/export"):
        response = admin_client.get(path, query_string={"mois": month, "format": "xlsx"})
        assert response.status_code == 422
        assert response.mimetype == "text/html"
        assert message in text(response)


def test_an_unknown_format_or_sheet_gets_a_french_message(admin_client):
    response = admin_client.get("/admin/comptabilite/export?mois=2030-09&format=pdf")
    assert response.status_code == 400 and "Format d'export inconnu" in text(response)
    response = admin_client.get("/admin/comptabilite/export?mois=2030-09&feuille=secret")
    assert response.status_code == 400 and "Feuille inconnue" in text(response)


def test_the_accounting_code_is_checked(app, admin_client):
    world = make_world(app)
    path = f"/admin/activites/{world.meal_id}/modifier"
    for code, message in (
        ("7067 REST", "lettres sans accent, des chiffres, des points et des tirets"),
        ("7067/REST", "lettres sans accent"),
        ("RÉST", "lettres sans accent"),
        ("=1+1", "lettres sans accent"),
        ("A" * 21, "20 caractères"),
    ):
        response = post(admin_client, path, activity_form(accounting_code=code))
        assert response.status_code == 422, code
        assert message in text(response), code
    with app.app_context():
        assert db.session.get(Activity, world.meal_id).accounting_code is None
    assert post(admin_client, path, activity_form(accounting_code=" 706.1-a ")).status_code == 303
    with app.app_context():
        assert db.session.get(Activity, world.meal_id).accounting_code == "706.1-a"
    assert 'value="706.1-a"' in text(admin_client.get(path))
    assert post(admin_client, path, activity_form(accounting_code="")).status_code == 303
    with app.app_context():
        assert db.session.get(Activity, world.meal_id).accounting_code is None


# --- The export ---------------------------------------------------------------------------------


def test_the_totals_equal_the_runs_and_the_payments_to_the_cent(app, admin_client, september):
    _world, result, ids = september
    page = text(admin_client.get("/admin/comptabilite?mois=2030-09"))
    assert "Totaux de septembre 2030" in page
    assert f"{result.total_cents / 100:.2f}".replace(".", ",") + "\xa0€" in page
    response = admin_client.get("/admin/comptabilite/export?mois=2030-09&format=xlsx")
    assert response.status_code == 200
    assert "comptabilite-2030-09.xlsx" in response.headers["Content-Disposition"]
    book = xlsx_sheets(response)
    assert list(book) == SHEET_NAMES
    header, *lines = book["Lignes de factures"]
    assert header[:3] == ["Facture", "Date", "Mois facturé"] and header[-1] == "Montant"
    with app.app_context():
        line_count = sum(len(db.session.get(Invoice, i).lines) for i in ids)
    assert len(lines) == line_count
    assert sum(euros(row[-1]) for row in lines) == Decimal(result.total_cents) / 100
    totals = {row[0]: row for row in book["Totaux"][1:]}
    invoices = totals["Factures du mois facturé (septembre 2030)"]
    assert invoices[1] == 3 and euros(invoices[2]) == Decimal(result.total_cents) / 100
    with app.app_context():  # what the run's page reports for the month
        issued = month_plan.month_invoices(date(2030, 9, 1))
        assert Decimal(issued.total_cents) / 100 == euros(invoices[2])
    assert euros(totals["Total des lignes de factures"][2]) == Decimal(result.total_cents) / 100
    assert euros(totals["dont lignes « Solde créditeur »"][2]) == Decimal("-1.50")
    # September's export has no payment nor credit note (they came in October).
    assert book["Avoirs"][1:] == [] and book["Paiements"][1:] == []
    assert euros(totals["Total des paiements reçus en septembre 2030"][2]) == 0

    october = xlsx_sheets(admin_client.get("/admin/comptabilite/export?mois=2030-10&format=xlsx"))
    assert october["Lignes de factures"][1:] == []  # October is not invoiced yet
    payments = october["Paiements"][1:]
    # Received in October, Paris time: 6,00 + 5,00 + 1,00 (1 October 00:30); not the
    # rejected debit, not 2,00 € received on 1 November 00:30.
    assert sorted(euros(row[3]) for row in payments) == [
        Decimal("1.00"),
        Decimal("5.00"),
        Decimal("6.00"),
    ]
    totals = {row[0]: row for row in october["Totaux"][1:]}
    assert euros(totals["Paiements reçus : Carte bancaire (PayFiP)"][2]) == Decimal("7.00")
    assert totals["Paiements reçus : Carte bancaire (PayFiP)"][1] == 2
    assert euros(totals["Paiements reçus : Au guichet"][2]) == Decimal("5.00")
    assert "Paiements reçus : Prélèvement" not in totals  # only the rejected one
    total_paid = totals["Total des paiements reçus en octobre 2030"]
    assert total_paid[1] == 3 and euros(total_paid[2]) == Decimal("12.00")
    assert sum(euros(row[3]) for row in payments) == euros(total_paid[2])
    ((credit_number, _day, billed, corrected, *_rest, amount),) = october["Avoirs"][1:]
    assert billed == "2030-09" and euros(amount) == Decimal("-2.50")
    with app.app_context():
        assert corrected == db.session.get(Invoice, ids[2]).number
        assert credit_number == db.session.scalar(
            select(Invoice.number).where(Invoice.kind == "credit")
        )
    assert euros(totals["Avoirs émis en octobre 2030"][2]) == Decimal("-2.50")
    with app.app_context():
        assert db.session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "accounting.exported", AuditEvent.target == "month:2030-10"
            )
        )


def test_each_line_carries_its_activitys_accounting_code(app, admin_client, september):
    world, _result, _ids = september
    rows = csv_rows(admin_client.get("/admin/comptabilite/export?mois=2030-09&format=csv"))
    header, *lines = rows
    code = header.index("Code comptable")
    activity = header.index("Activité")
    nature = header.index("Nature")
    meals = [row for row in lines if row[activity] == "Repas du midi"]
    assert meals and {row[code] for row in meals} == {"7067-REST.1"}
    evenings = [row for row in lines if row[activity] == "Accueil du soir"]
    assert evenings and {row[code] for row in evenings} == {""}  # not coded yet
    assert "Présences sans réservation" in {row[nature] for row in lines}
    (balance,) = [row for row in lines if row[nature] == "Solde créditeur"]
    assert balance[-1] == "-1,50"
    # The CSV is the workbook's first sheet, row for row.
    book = xlsx_sheets(admin_client.get("/admin/comptabilite/export?mois=2030-09&format=xlsx"))
    assert len(book["Lignes de factures"]) == len(rows)
    # The other sheets as CSV too.
    payments = csv_rows(
        admin_client.get("/admin/comptabilite/export?mois=2030-10&format=csv&feuille=paiements")
    )
    assert payments[0][:4] == ["Reçu le", "Mode de paiement", "Code du mode", "Montant"]
    assert len(payments) == 4
    totals = csv_rows(
        admin_client.get("/admin/comptabilite/export?mois=2030-10&format=csv&feuille=totaux")
    )
    assert ["Total des paiements reçus en octobre 2030", "3", "12,00"] in totals


def test_families_named_like_formulas_reach_the_files_neutralised(app, admin_client, september):
    csv_text = admin_client.get("/admin/comptabilite/export?mois=2030-09&format=csv").get_data(
        as_text=True
    )
    book = xlsx_sheets(admin_client.get("/admin/comptabilite/export?mois=2030-09&format=xlsx"))
    families = {row[3] for row in book["Lignes de factures"][1:]}
    for formula in FORMULAS:
        assert f"'{formula} Test" in families
        assert formula + " Test" not in families
    assert '\'=HYPERLINK(""http://x"") Test' in csv_text
    assert ";'+cmd Test;" in csv_text and ";'@SUM(1) Test;" in csv_text
    assert ";=HYPERLINK" not in csv_text and ";+cmd" not in csv_text and ";@SUM" not in csv_text
    payments = xlsx_sheets(admin_client.get("/admin/comptabilite/export?mois=2030-10&format=xlsx"))[
        "Paiements"
    ]
    assert {row[6] for row in payments[1:]} <= {f"'{formula} Test" for formula in FORMULAS}


def test_the_export_runs_a_constant_number_of_queries(app, admin_client, september):
    world, _result, _ids = september

    def queries() -> int:
        with counted_queries(app) as statements:
            response = admin_client.get("/admin/comptabilite/export?mois=2030-09&format=xlsx")
            assert response.status_code == 200
        return len(statements)

    before = queries()
    for _n in range(4):  # four more families billed for September
        account = september_bookings(app, world)
        assert account.household_id
    # Another run adds their invoices (a re-run bills only the families not yet billed).
    assert run(app).count == 4
    assert queries() == before
