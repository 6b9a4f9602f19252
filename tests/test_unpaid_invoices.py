"""The unpaid invoices by age (/admin/factures/impayes, issue 14): what is left to pay on the
invoices families pay themselves, by age since the due date, with totals per age and the
reminders sent; filtered, paged, exported as CSV and XLSX; agents see their families only;
one query for the rows whatever their number."""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from citoyens.billing.outstanding import BUCKETS, bucket_of
from citoyens.formatting import date_fr
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import counted_queries
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
MEALS = [("Repas du midi", 350, 4)]  # 14,00 €
_months = itertools.count()
INVOICE_LINK = re.compile(r'href="/admin/factures/\d+"')


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr("citoyens.billing.rules.today", lambda: TODAY)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def invoice(app, household_id: int, days_late: int, **kwargs) -> int:
    """An invoice of 14,00 € whose due date was `days_late` days before TODAY."""
    n = next(_months)
    return make_invoice(
        app,
        household_id,
        month=date(2010 + n // 12, n % 12 + 1, 1),
        lines=MEALS,
        due_on=TODAY - timedelta(days=days_late),
        **kwargs,
    )


def test_the_age_buckets():
    assert [bucket.key for bucket in BUCKETS] == [
        "a-echoir",
        "1-30",
        "31-60",
        "61-90",
        "plus-de-90",
    ]
    for days_late, key in [
        (-5, "a-echoir"),
        (0, "a-echoir"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "plus-de-90"),
        (4000, "plus-de-90"),
    ]:
        assert bucket_of(TODAY - timedelta(days=days_late), TODAY).key == key, days_late


def test_the_list_by_age_with_totals_and_reminders(app, runner, admin):
    family = make_user(app, role="parent")
    household = family.household_id
    rows = {days: invoice(app, household, days) for days in (-5, 1, 30, 31, 75, 200)}
    partly = rows[31]
    make_payment(app, partly, 400)  # 10,00 € left
    make_credit_note(app, rows[75], 150, issued_at=datetime(2030, 10, 1, tzinfo=UTC))
    make_payment(app, rows[75], 1400, method="direct_debit", rejected=True)  # 12,50 € left
    paid = invoice(app, household, 50, status="paid")
    settled = invoice(app, household, 50)
    make_payment(app, settled, 1400)
    debit = invoice(
        app, household, 10, status="direct_debit", mandate_id=make_mandate(app, household)
    )
    cancelled = invoice(app, household, 10)
    make_credit_note(app, cancelled, 1400, issued_at=datetime(2030, 10, 1, tzinfo=UTC))
    result = runner.invoke(args=["invoices", "remind", "--date", TODAY.isoformat()])
    assert result.exit_code == 0, result.output

    client = login(app, admin)
    response = client.get("/admin/factures/impayes")
    assert response.status_code == 200
    page = text(response)
    assert "6 factures impayées" in page
    for invoice_id in (paid, settled, debit, cancelled):
        assert f'/admin/factures/{invoice_id}"' not in page
    # Totals per age: the table's rows in order.
    assert 'Pas encore échues</a></th>\n        <td class="inv-num">1</td>' in page
    totals = page[page.index('id="totaux-anciennete"') : page.index("</table>")]
    assert 'En retard de 1 à 30 jours</a></th>\n        <td class="inv-num">2</td>' in totals
    assert "28,00\xa0€" in totals  # 1 to 30 days: two invoices of 14,00 €
    assert "10,00\xa0€" in totals and "12,50\xa0€" in totals
    assert '<td class="inv-num">6</td><td class="inv-num">78,50\xa0€</td>' in totals
    # The rows, the most overdue first, with their reminders.
    listing = page[page.index('id="impayes"') :]
    positions = [
        listing.index(f'/admin/factures/{rows[days]}"') for days in (200, 75, 31, 30, 1, -5)
    ]
    assert positions == sorted(positions)
    assert "200 jours" in listing and "À échoir" in listing
    sent_on = date_fr(datetime.now(UTC))  # when the command ran
    assert listing.count(f"Relance le {sent_on}") == 4  # 200, 75, 31 and 30 days late
    assert listing.count(f"Rappel le {sent_on}") == 1  # due in 5 days
    assert listing.count("Aucun</span>") == 1  # 1 day late: too early for the reminder

    only = text(client.get("/admin/factures/impayes?anciennete=31-60"))
    assert "1 facture impayée" in only and f'/admin/factures/{partly}"' in only
    assert f'/admin/factures/{rows[30]}"' not in only[only.index('id="resultats"') :]
    unknown = text(client.get("/admin/factures/impayes?anciennete=x&page=abc"))
    assert "6 factures impayées" in unknown
    search = text(client.get(f"/admin/factures/impayes?q={number_of(app, rows[200])}"))
    assert "1 facture impayée" in search


def test_pages_of_fifty_and_one_query_for_the_rows(app, admin):
    family = make_user(app, role="parent")
    client = login(app, admin)
    invoice(app, family.household_id, 10)

    def queries(path: str) -> int:
        with counted_queries(app) as statements:
            assert client.get(path).status_code == 200
        return len(statements)

    few = queries("/admin/factures/impayes")
    for days in range(55):
        invoice(app, family.household_id, days)
    assert queries("/admin/factures/impayes") == few
    first = text(client.get("/admin/factures/impayes"))
    assert "56 factures impayées" in first and "page 1 sur 2" in first
    assert len(INVOICE_LINK.findall(first)) == 50
    last = text(client.get("/admin/factures/impayes?page=2"))
    assert len(INVOICE_LINK.findall(last)) == 6
    beyond = text(client.get("/admin/factures/impayes?page=99"))
    assert "page 2 sur 2" in beyond
    assert "page 1 sur 2" in text(client.get("/admin/factures/impayes?page=-4"))


def test_the_export_has_every_row_and_neutralises_formulas(app, admin):
    family = make_user(app, role="parent")
    names = ['=HYPERLINK("http://x")', "+cmd", "@SUM(1)"]
    ids = [invoice(app, family.household_id, 40 + n) for n in range(3)]
    for invoice_id, name in zip(ids, names, strict=True):
        change_invoice(app, invoice_id, addressee=name)
    make_payment(app, ids[0], 250)
    client = login(app, admin)
    response = client.get("/admin/factures/impayes/export?anciennete=31-60&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "impayes-2030-11-25.csv" in response.headers["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[:3] == ["Famille", "N° de foyer", "Facture"]
    assert sorted(row[0] for row in rows) == sorted(f"'{name}" for name in names)
    (first,) = [row for row in rows if row[2] == number_of(app, ids[0])]
    assert first[header.index("Reste à payer")] == "11,50"
    assert first[header.index("Jours de retard")] == "40"
    assert first[header.index("Ancienneté")] == "En retard de 31 à 60 jours"
    book = xlsx_sheets(client.get("/admin/factures/impayes/export?format=xlsx"))
    header, *rows = book["Impayés"]
    assert sorted(row[0] for row in rows) == sorted(f"'{name}" for name in names)
    left = header.index("Reste à payer")
    assert sum(Decimal(str(row[left])) for row in rows) == Decimal("39.50")
    bad = client.get("/admin/factures/impayes/export?format=ods")
    assert bad.status_code == 400 and "Format d'export inconnu" in text(bad)


def test_agents_see_only_their_families(app):
    world = make_world(app)  # an invoice of 2030-09 for family A (service A) and B
    change_invoice(app, world.a.invoice, due_on=TODAY - timedelta(days=40))
    change_invoice(app, world.b.invoice, due_on=TODAY - timedelta(days=40))
    mine, theirs = number_of(app, world.a.invoice), number_of(app, world.b.invoice)
    agent = login_client(app, world.agent)
    page = text(agent.get("/admin/factures/impayes"))
    assert mine in page and theirs not in page and "1 facture impayée" in page
    assert "Seules les familles de vos services apparaissent." in page
    exported = agent.get("/admin/factures/impayes/export").get_data(as_text=True)
    assert mine in exported and theirs not in exported
    loner = login_client(app, world.loner)
    assert "0 facture impayée" in text(loner.get("/admin/factures/impayes"))
    assert mine not in loner.get("/admin/factures/impayes/export?format=csv").get_data(as_text=True)
    manager = login_client(app, world.admin)
    page = text(manager.get("/admin/factures/impayes"))
    assert mine in page and theirs in page
