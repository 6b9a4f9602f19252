"""Back office of billing: tariffs (bands, prices, surcharges), the monthly run and credit
notes. Administrators change; agents read; parents get 403. A rejected form answers 422
with a French message tied to its field, and saves nothing."""

from __future__ import annotations

import html
from datetime import date
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from citoyens.billing.models import Invoice, Price, QfBand
from citoyens.extensions import db
from citoyens.services.models import Service
from tests.conftest import post
from tests.enrolments_factories import make_activity, make_school_year
from tests.test_billing_rules import book, make_family, make_world

OCTOBER = date(2030, 10, 5)


@pytest.fixture
def october(monkeypatch):
    """The back office's clock: 5 October 2030 (September 2030 is over)."""
    monkeypatch.setattr("citoyens.billing.staff_run.today_in_paris", lambda: OCTOBER)
    monkeypatch.setattr("citoyens.billing.staff_tariffs.today_in_paris", lambda: OCTOBER)


def text(response) -> str:
    """The page as read (entities decoded: Jinja writes « n'a » as « n&#39;a »)."""
    return html.unescape(response.get_data(as_text=True))


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def prices(app, activity_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(Price.amount_cents)
                .join(QfBand, QfBand.id == Price.band_id)
                .where(Price.activity_id == activity_id)
                .order_by(QfBand.position)
            )
        )


def september_bookings(app, world, *, paperless=True):
    account, (child,) = make_family(app, paperless=paperless)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 3))
    return account


# --- Who may do what --------------------------------------------------------------------------


def test_parent_gets_403_everywhere(app, client, auth, parent):
    world = make_world(app)
    auth.login(parent)
    for path in (
        "/admin/tarifs",
        "/admin/facturation",
        f"/admin/tarifs/{world.year_id}/tranches/nouvelle",
    ):
        assert client.get(path).status_code == 403, path
    assert post(client, "/admin/facturation/emettre", {"mois": "2030-09"}).status_code == 403


def test_agent_reads_but_cannot_change(app, client, auth, staff, october):
    world = make_world(app)
    account = september_bookings(app, world)
    auth.login(staff)
    page = client.get("/admin/tarifs?annee=2030-2031")
    assert page.status_code == 200
    assert "Consultation" in text(page) and "3,00\xa0€" in text(page)
    assert "Ajouter une tranche" not in text(page) and "Modifier" not in text(page)
    run = client.get("/admin/facturation?mois=2030-09")
    assert run.status_code == 200
    assert "Familles à facturer" in text(run) and "6,00\xa0€" in text(run)
    assert "Émettre les factures" not in text(run)
    assert f"household_id={account.household_id}" not in text(run)  # no family rows
    band = world.band_ids[0]
    forbidden = [
        ("/admin/facturation/emettre", {"mois": "2030-09"}),
        (f"/admin/tarifs/{world.year_id}/tranches/nouvelle", {"position": "9", "label": "X"}),
        (f"/admin/tarifs/tranches/{band}/modifier", {"position": "1", "label": "X"}),
        (f"/admin/tarifs/{world.year_id}/activites/{world.meal_id}", {f"band_{band}": "1"}),
        (f"/admin/tarifs/services/{world.service_id}/majoration", {"service-1-amount": "1"}),
    ]
    for path, data in forbidden:
        assert post(client, path, data).status_code == 403, path
    assert client.get(f"/admin/tarifs/{world.year_id}/tranches/nouvelle").status_code == 403
    assert count(app, Invoice) == 0
    assert prices(app, world.meal_id) == [100, 200, 300, 400, 500]


# --- Tariffs ----------------------------------------------------------------------------------


def test_tariffs_page_shows_bands_and_prices_in_euros(app, client, auth, admin):
    world = make_world(app)
    auth.login(admin)
    page = text(client.get("/admin/tarifs?annee=2030-2031"))
    assert "Tranche 1 (QF ≤ 500 €)" in page and "jusqu'à 500 €" in page
    assert "de 501 à 800 €" in page and "au-delà de 1500 €, ou inconnu" in page
    assert "Repas du midi" in page and "1,00\xa0€" in page and "10,00\xa0€" in page
    assert f"/admin/tarifs/{world.year_id}/activites/{world.meal_id}" in page
    # An unknown year name falls back to a year that exists.
    assert client.get("/admin/tarifs?annee=1999").status_code == 200


def test_admin_adds_and_edits_a_band(app, client, auth, admin):
    year_id = make_school_year(app, date(2031, 9, 1))
    auth.login(admin)
    form = client.get(f"/admin/tarifs/{year_id}/tranches/nouvelle")
    assert form.status_code == 200 and 'value="1"' in text(form)
    done = post(
        client,
        f"/admin/tarifs/{year_id}/tranches/nouvelle",
        {"position": "1", "label": "Tranche 1 (QF ≤ 600 €)", "qf_max": "600"},
    )
    assert done.status_code == 303
    top = post(
        client,
        f"/admin/tarifs/{year_id}/tranches/nouvelle",
        {"position": "2", "label": "Tranche 2 (QF > 600 €)", "qf_max": ""},
    )
    assert top.status_code == 303
    with app.app_context():
        bands = [
            (b.position, b.label, b.qf_max)
            for b in db.session.scalars(
                select(QfBand).where(QfBand.school_year_id == year_id).order_by(QfBand.position)
            )
        ]
        band_id = db.session.scalar(
            select(QfBand.id).where(QfBand.school_year_id == year_id, QfBand.position == 1)
        )
    assert bands == [(1, "Tranche 1 (QF ≤ 600 €)", 600), (2, "Tranche 2 (QF > 600 €)", None)]
    edited = post(
        client,
        f"/admin/tarifs/tranches/{band_id}/modifier",
        {"position": "1", "label": "Tranche 1 (QF ≤ 650 €)", "qf_max": "650"},
    )
    assert edited.status_code == 303
    with app.app_context():
        assert db.session.get(QfBand, band_id).qf_max == 650


@pytest.mark.parametrize(
    ("band", "data", "field", "message"),
    [
        (None, {"position": "", "label": "T", "qf_max": "9"}, "position", "est obligatoire"),
        (None, {"position": "x", "label": "T", "qf_max": "9"}, "position", "nombre entier"),
        (None, {"position": "0", "label": "T", "qf_max": "9"}, "position", "entre 1 et 99"),
        (None, {"position": "6", "label": "", "qf_max": "9"}, "label", "est obligatoire"),
        (None, {"position": "6", "label": "T" * 61, "qf_max": "9"}, "label", "60 caractères"),
        (None, {"position": "6", "label": "T", "qf_max": "-5"}, "qf_max", "doit être entre 0"),
        (None, {"position": "6", "label": "T", "qf_max": "abc"}, "qf_max", "nombre entier"),
        (None, {"position": "3", "label": "T", "qf_max": "700"}, "position", "occupe déjà"),
        (None, {"position": "6", "label": "T", "qf_max": "9000"}, "position", "pas de plafond"),
        (0, {"position": "1", "label": "T", "qf_max": ""}, "qf_max", "Seule la dernière"),
        (1, {"position": "2", "label": "T", "qf_max": "1200"}, "qf_max", "rester sous celui"),
        (1, {"position": "2", "label": "T", "qf_max": "500"}, "qf_max", "dépasser celui"),
    ],
)
def test_bad_band_is_refused_with_422_and_nothing_saved(
    app, client, auth, admin, band, data, field, message
):
    world = make_world(app)
    auth.login(admin)
    with app.app_context():
        before = [(b.position, b.label, b.qf_max) for b in db.session.scalars(select(QfBand))]
    if band is None:
        path = f"/admin/tarifs/{world.year_id}/tranches/nouvelle"
    else:
        path = f"/admin/tarifs/tranches/{world.band_ids[band]}/modifier"
    response = post(client, path, data)
    assert response.status_code == 422
    page = text(response)
    assert message in page
    assert f'id="{field}-erreur"' in page
    assert f'aria-describedby="{field}-aide {field}-erreur"' in page
    with app.app_context():
        after = [(b.position, b.label, b.qf_max) for b in db.session.scalars(select(QfBand))]
    assert after == before


def test_admin_sets_the_prices_of_an_activity(app, client, auth, admin):
    world = make_world(app)
    auth.login(admin)
    path = f"/admin/tarifs/{world.year_id}/activites/{world.meal_id}"
    form = client.get(path)
    assert form.status_code == 200 and 'value="1,00"' in text(form)
    b = world.band_ids
    data = {f"band_{b[0]}": "1,20", f"band_{b[1]}": "2.5", f"band_{b[2]}": "3", f"band_{b[3]}": ""}
    data[f"band_{b[4]}"] = " 4,20 € "
    assert post(client, path, data).status_code == 303
    assert prices(app, world.meal_id) == [120, 250, 300, 420]  # band 4 has no price now


def test_bad_price_is_refused_and_nothing_saved(app, client, auth, admin):
    world = make_world(app)
    auth.login(admin)
    path = f"/admin/tarifs/{world.year_id}/activites/{world.meal_id}"
    b = world.band_ids
    data = {f"band_{band}": "9,99" for band in b}
    data[f"band_{b[2]}"] = "trois euros"
    response = post(client, path, data)
    assert response.status_code == 422
    page = text(response)
    assert "Saisissez un montant en euros, par exemple 3,50." in page
    assert f'id="band_{b[2]}-erreur"' in page and 'aria-invalid="true"' in page
    assert prices(app, world.meal_id) == [100, 200, 300, 400, 500]


def test_prices_need_bands_first(app, client, auth, admin):
    year_id = make_school_year(app, date(2032, 9, 1))
    world = make_world(app)
    auth.login(admin)
    page = client.get(f"/admin/tarifs/{year_id}/activites/{world.meal_id}")
    assert page.status_code == 200 and "Aucune tranche" in text(page)
    assert post(client, f"/admin/tarifs/{year_id}/activites/{world.meal_id}").status_code == 422
    assert client.get(f"/admin/tarifs/{year_id}/activites/999999").status_code == 404


def test_admin_sets_the_walk_in_surcharge(app, client, auth, admin):
    world = make_world(app, surcharge=0)
    auth.login(admin)
    path = f"/admin/tarifs/services/{world.service_id}/majoration?annee=2030-2031"
    field = f"service-{world.service_id}-amount"
    assert post(client, path, {field: "2,00"}).status_code == 303
    with app.app_context():
        assert db.session.get(Service, world.service_id).walk_in_surcharge_cents == 200
    for bad, message in (("-2", "Saisissez un montant"), ("", "Le montant est obligatoire")):
        response = post(client, path, {field: bad})
        assert response.status_code == 422
        assert message in text(response) and f'id="{field}-erreur"' in text(response)
    with app.app_context():
        assert db.session.get(Service, world.service_id).walk_in_surcharge_cents == 200


# --- The run ----------------------------------------------------------------------------------


def test_run_page_previews_then_issues_the_month(app, client, auth, admin, october, outbox):
    world = make_world(app)
    online = september_bookings(app, world)
    paper = september_bookings(app, world, paperless=False)
    auth.login(admin)
    preview = text(client.get("/admin/facturation?mois=2030-09"))
    assert "Facturation de septembre 2030" in preview
    assert "Familles à facturer" in preview and "12,00\xa0€" in preview
    assert f"/admin/familles/{online.household_id}" in preview
    assert "Émettre les factures de septembre 2030" in preview
    assert count(app, Invoice) == 0  # a preview issues nothing
    done = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/admin/facturation?mois=2030-09")
    page = text(client.get(done.headers["Location"]))
    assert "2 factures de septembre 2030 émises pour 12,00\xa0€" in page
    assert "1 envoyée par e-mail, 1 sur papier à imprimer" in page
    assert "F2030-000001" in page and "F2030-000002" in page
    assert "Factures papier à imprimer (1)" in page
    assert "Établir un avoir" in page
    assert len(outbox) == 1
    # Again: nothing new.
    again = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert again.status_code == 303
    assert "Aucune nouvelle facture" in text(client.get(again.headers["Location"]))
    assert count(app, Invoice) == 2
    with app.app_context():
        paper_invoice = db.session.scalar(
            select(Invoice).where(Invoice.household_id == paper.household_id)
        )
        assert paper_invoice.paperless is False and paper_invoice.mailed_at is None


def test_missing_tariffs_must_be_confirmed(app, client, auth, admin, october):
    world = make_world(app)
    sport = make_activity(app, world.service_id, name="Multisport")
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, account.household_id, child, sport, world.year_id, date(2030, 9, 3))
    auth.login(admin)
    preview = text(client.get("/admin/facturation?mois=2030-09"))
    assert "Activités sans tarif" in preview and "Multisport" in preview
    refused = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert refused.status_code == 422
    assert "cochez cette case" in text(refused)
    assert 'id="confirm_missing-erreur"' in text(refused)
    assert count(app, Invoice) == 0
    done = post(client, "/admin/facturation/emettre", {"mois": "2030-09", "confirm_missing": "y"})
    assert done.status_code == 303
    with app.app_context():
        (total,) = db.session.scalars(select(Invoice.total_cents)).all()
    assert total == 300


@pytest.mark.parametrize(
    ("month", "message"),
    [("2030-13", "Mois invalide"), ("", "Mois invalide"), ("2030-10", "n'est pas terminé")],
)
def test_bad_or_unfinished_month_is_refused(app, client, auth, admin, october, month, message):
    world = make_world(app)
    september_bookings(app, world)
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 10, 1))
    auth.login(admin)
    response = post(client, "/admin/facturation/emettre", {"mois": month})
    assert response.status_code == 422
    assert message in text(response)
    assert count(app, Invoice) == 0


def test_run_page_with_a_bad_month_says_so(app, client, auth, admin, october):
    auth.login(admin)
    response = client.get("/admin/facturation?mois=2030-99")
    assert response.status_code == 422 and "Mois invalide" in text(response)
    unfinished = text(client.get("/admin/facturation?mois=2030-10"))
    assert "Émettre les factures" not in unfinished


# --- Credit notes -----------------------------------------------------------------------------


def issued(app, client, world) -> int:
    september_bookings(app, world)
    assert post(client, "/admin/facturation/emettre", {"mois": "2030-09"}).status_code == 303
    with app.app_context():
        return db.session.scalar(select(Invoice.id).where(Invoice.kind == "invoice"))


def test_admin_writes_a_credit_note(app, client, auth, admin, october):
    world = make_world(app)
    auth.login(admin)
    invoice_id = issued(app, client, world)
    path = f"/admin/facturation/factures/{invoice_id}/avoir"
    form = client.get(path)
    assert form.status_code == 200 and 'value="6,00"' in text(form)
    done = post(client, path, {"amount": "2,50", "reason": "Repas du 2 septembre non servi"})
    assert done.status_code == 303
    with app.app_context():
        credit = db.session.scalar(select(Invoice).where(Invoice.kind == "credit"))
        assert credit.total_cents == -250 and credit.number == "F2030-000002"
        assert credit.lines[0].label == "Repas du 2 septembre non servi"
        assert db.session.get(Invoice, invoice_id).status == "issued"
    page = text(client.get(done.headers["Location"]))
    assert "Avoir F2030-000002 établi (2,50\xa0€)" in page
    assert "Avoir F2030-000002 : -2,50\xa0€" in page
    whole = post(client, path, {"amount": "3,50", "reason": "Solde"})
    assert whole.status_code == 303
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "cancelled"
    assert "entièrement annulée" in text(client.get(path))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "abc", "reason": "Motif"}, "amount", "Saisissez un montant en euros"),
        ({"amount": "", "reason": "Motif"}, "amount", "Le montant est obligatoire."),
        ({"amount": "0", "reason": "Motif"}, "amount", "supérieur à zéro"),
        (
            {"amount": "6,01", "reason": "Motif"},
            "amount",
            "reste à créditer sur cette facture (6,00",
        ),
        ({"amount": "1", "reason": ""}, "reason", "Le motif est obligatoire."),
        ({"amount": "1", "reason": "x" * 201}, "reason", "200 caractères"),
    ],
)
def test_bad_credit_note_is_refused(app, client, auth, admin, october, data, field, message):
    world = make_world(app)
    auth.login(admin)
    invoice_id = issued(app, client, world)
    response = post(client, f"/admin/facturation/factures/{invoice_id}/avoir", data)
    assert response.status_code == 422
    assert message in text(response) and f'id="{field}-erreur"' in text(response)
    assert count(app, Invoice, Invoice.kind == "credit") == 0


def test_credit_notes_are_for_administrators_and_invoices_only(
    app, client, auth, admin, staff, october
):
    world = make_world(app)
    auth.login(admin)
    invoice_id = issued(app, client, world)
    post(client, f"/admin/facturation/factures/{invoice_id}/avoir", {"amount": "1", "reason": "R"})
    with app.app_context():
        credit_id = db.session.scalar(select(Invoice.id).where(Invoice.kind == "credit"))
    assert client.get(f"/admin/facturation/factures/{credit_id}/avoir").status_code == 404
    assert client.get("/admin/facturation/factures/99999999/avoir").status_code == 404
    auth.logout()
    auth.login(staff)
    path = f"/admin/facturation/factures/{invoice_id}/avoir"
    assert client.get(path).status_code == 403
    assert post(client, path, {"amount": "1", "reason": "R"}).status_code == 403
    assert count(app, Invoice, Invoice.kind == "credit") == 1


def test_no_route_edits_an_issued_invoice(app):
    """Issued invoices change only through a credit note (and payment, elsewhere)."""
    mine = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin.billing") or rule.endpoint.startswith("admin.tariffs")
    ]
    writing = [
        rule.rule for rule in mine if "POST" in rule.methods and "invoice_id" in rule.arguments
    ]
    assert writing == ["/admin/facturation/factures/<int:invoice_id>/avoir"]


def test_admin_home_has_a_billing_tile(app, client, auth, staff):
    auth.login(staff)
    page = text(client.get("/admin/"))
    assert "/admin/facturation" in page and "Facturation" in page


# --- Random input -----------------------------------------------------------------------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
fuzz_text = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=1, max_size=3).map(lambda s: s * 300),
    st.sampled_from(["\x00", "3,50", "3.5", "-1", "1e9", "2030-09", "2030-13", "0", "99999,999"]),
    st.integers().map(str),
)


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert post(client, "/connexion", {"email": admin.email, "password": admin.password})
    return client


@pytest.fixture
def world(app):
    return make_world(app)


@FUZZ
@given(position=fuzz_text, label=fuzz_text, qf_max=fuzz_text)
def test_random_band_forms_never_fail(app, admin_client, world, position, label, qf_max):
    data = {"position": position, "label": label, "qf_max": qf_max}
    response = post(admin_client, f"/admin/tarifs/{world.year_id}/tranches/nouvelle", data)
    assert response.status_code in (303, 422)
    edit = post(admin_client, f"/admin/tarifs/tranches/{world.band_ids[2]}/modifier", data)
    assert edit.status_code in (303, 422)


@FUZZ
@given(amounts=st.lists(fuzz_text, min_size=5, max_size=5), surcharge=fuzz_text)
def test_random_price_forms_never_fail(app, admin_client, world, amounts, surcharge):
    data = {f"band_{band}": value for band, value in zip(world.band_ids, amounts, strict=True)}
    path = f"/admin/tarifs/{world.year_id}/activites/{world.meal_id}"
    assert post(admin_client, path, data).status_code in (303, 422)
    path = f"/admin/tarifs/services/{world.service_id}/majoration?annee={surcharge[:20]}"
    field = f"service-{world.service_id}-amount"
    # 400: a control character in the query string (refused before the view, issue 12).
    assert post(admin_client, path, {field: surcharge}).status_code in (303, 400, 422)


@FUZZ
@given(month=fuzz_text, confirm=fuzz_text, amount=fuzz_text, reason=fuzz_text)
def test_random_run_and_credit_forms_never_fail(
    app, admin_client, world, october, month, confirm, amount, reason
):
    september_bookings(app, world)
    data = {"mois": month, "confirm_missing": confirm}
    assert post(admin_client, "/admin/facturation/emettre", data).status_code in (303, 422)
    with app.app_context():
        invoice_id = db.session.scalar(select(Invoice.id).where(Invoice.kind == "invoice"))
    if invoice_id is not None:
        path = f"/admin/facturation/factures/{invoice_id}/avoir"
        response = post(admin_client, path, {"amount": amount, "reason": reason})
        assert response.status_code in (303, 422)
    assert admin_client.get(f"/admin/facturation?mois={quote(month[:50])}").status_code in (
        200,
        400,  # a control character in the query string (issue 12)
        422,
    )


def test_the_run_warns_when_the_debit_day_comes_too_soon_for_the_pre_notification(
    app, client, auth, admin, october
):
    from tests.billing_factories import make_mandate

    world = make_world(app)
    account = september_bookings(app, world)
    make_mandate(app, account.household_id, first_month=date(2030, 9, 1))
    auth.login(admin)
    warning = (
        "Le prélèvement du mardi 15 octobre serait annoncé moins de 14 jours avant : "
        "il est reporté au lundi 21 octobre."
    )
    assert warning in text(client.get("/admin/facturation?mois=2030-09"))
    done = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert warning in text(client.get(done.headers["Location"]))
    with app.app_context():
        invoice = db.session.scalar(select(Invoice))
        assert invoice.debit_on == date(2030, 10, 21)
