"""Quotient familial (DOMAIN.md "Billing"): a QF a parent types is a request with its CAF/MSA
attestation; it prices invoices only once staff accept it, until then the last accepted QF
(or the top band) applies, and the family's pages say so.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.documents.models import Document, DocumentType
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households import quotient
from citoyens.households.models import Household, QuotientDeclaration
from citoyens.requests.models import Request
from tests.billing_factories import make_bands
from tests.conftest import csrf_token, post
from tests.documents_factories import EXE, PDF, png
from tests.enrolments_factories import make_school_year
from tests.factories import make_user
from tests.households_factories import changes
from tests.test_billing_rules import OCTOBER, SEPTEMBER, book, invoices_of, make_family, make_world
from tests.test_billing_rules import run as run_month
from tests.test_documents import logged_in as login
from tests.test_documents import stored_files, upload_folder  # noqa: F401 (a fixture)

# Every test stores its files in its own folder.
pytestmark = pytest.mark.usefixtures("upload_folder")

DECLARE = "/mon-foyer/quotient"
NOVEMBER = date(2030, 11, 5)


def files(app) -> list[str]:
    return stored_files(Path(app.config["UPLOAD_FOLDER"]))


def declare(client, value: str, data: bytes | None = PDF, filename: str = "caf.pdf", **extra):
    form = {"family_quotient": value, "csrf_token": csrf_token(client), **extra}
    if data is not None:
        form["attestation"] = (io.BytesIO(data), filename)
    return client.post(DECLARE, data=form, content_type="multipart/form-data")


def decide(client, request_id: int, action: str, message: str = ""):
    button = {"accept": "Accepter", "refuse": "Refuser", "take": "Prendre en charge"}[action]
    return post(
        client, f"/admin/demandes/{request_id}/statut", {action: button, "message": message}
    )


def text(response) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


def qf_of(app, household_id: int) -> int | None:
    with app.app_context():
        return db.session.get(Household, household_id).family_quotient


def declarations(app, household_id: int) -> list[tuple[int, str, int, int | None]]:
    """(request id, status, declared QF, document id) of the household, oldest first."""
    with app.app_context():
        rows = db.session.execute(
            select(
                Request.id, Request.status, QuotientDeclaration.family_quotient, Request.document_id
            )
            .join(QuotientDeclaration, QuotientDeclaration.request_id == Request.id)
            .where(Request.household_id == household_id, Request.kind == quotient.KIND)
            .order_by(Request.id)
        )
        return [tuple(row) for row in rows]


def document_state(app, document_id: int) -> tuple[str, str, bool]:
    with app.app_context():
        document = db.session.get(Document, document_id)
        return document.type.code, document.status, document.replaced_at is not None


def saved(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Request, Document, QuotientDeclaration)
        )


def meal_price(invoice: dict) -> int:
    return next(line[2] for line in invoice["lines"] if line[0] == "booked")


# --- The journey: declared, billed at the old band, accepted, billed at the new one -----------


def test_a_declaration_prices_nothing_until_staff_accept_it(app, outbox):
    world = make_world(app)
    account, (child,) = make_family(app, qf=None)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 10))
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 10, 8))
    client = login(app, account)

    response = declare(client, "650")
    assert response.status_code == 303
    [(request_id, status, value, document_id)] = declarations(app, account.household_id)
    assert (status, value) == ("sent", 650)
    assert document_state(app, document_id) == ("quotient-familial", "pending", False)
    assert qf_of(app, account.household_id) is None
    assert changes(app, account.household_id)[-1][:2] == ("quotient_declared", "family_quotient")

    # The run of September bills the top band: the declaration is not verified yet.
    run_month(app, SEPTEMBER, OCTOBER)
    [september] = invoices_of(app, account.household_id)
    assert meal_price(september) == 500
    assert september["invoice"].family_quotient is None

    staff = make_user(app, role="admin")
    staff_client = login(app, staff)
    assert decide(staff_client, request_id, "accept").status_code == 303
    assert qf_of(app, account.household_id) == 650
    assert document_state(app, document_id) == ("quotient-familial", "accepted", False)
    assert changes(app, account.household_id)[-1] == (
        "quotient_accepted",
        "family_quotient",
        None,
        staff.id,
    )
    assert any(account.email in m.recipients and "acceptée" in m.subject for m in outbox)
    assert "Acceptée" in text(client.get(f"/mes-demandes/{request_id}"))

    # The next run uses the accepted QF: 650 is band 2.
    run_month(app, date(2030, 10, 1), NOVEMBER)
    october = invoices_of(app, account.household_id)[-1]
    assert meal_price(october) == 200
    assert october["invoice"].family_quotient == 650


def test_a_refused_declaration_keeps_the_last_accepted_qf(app, outbox):
    world = make_world(app)
    account, (child,) = make_family(app, qf=900)  # band 3
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 10))
    client = login(app, account)
    assert declare(client, "400").status_code == 303
    [(request_id, *_rest, document_id)] = declarations(app, account.household_id)

    staff_client = login(app, make_user(app, role="admin"))
    # A refusal says why, or nothing happens.
    no_reason = decide(staff_client, request_id, "refuse")
    assert no_reason.status_code == 422
    assert declarations(app, account.household_id)[0][1] == "sent"
    refused = decide(
        staff_client, request_id, "refuse", "Attestation de 2019 : envoyez la récente."
    )
    assert refused.status_code == 303
    assert declarations(app, account.household_id)[0][1] == "refused"
    assert qf_of(app, account.household_id) == 900
    assert document_state(app, document_id)[1] == "refused"
    assert changes(app, account.household_id)[-1][:2] == ("quotient_refused", "family_quotient")

    run_month(app, SEPTEMBER, OCTOBER)
    assert meal_price(invoices_of(app, account.household_id)[0]) == 300
    page = text(client.get(f"/mes-demandes/{request_id}"))
    assert "Refusée" in page and "Attestation de 2019 : envoyez la récente." in page
    # Refused: the family may declare again.
    assert declare(client, "450").status_code == 303
    assert [row[1] for row in declarations(app, account.household_id)] == ["refused", "sent"]


def test_the_pages_say_what_applies_while_a_declaration_waits(app):
    today = today_in_paris()
    start = date(today.year if today.month >= 9 else today.year - 1, 9, 1)
    make_bands(app, make_school_year(app, start))
    account = make_user(app, role="parent")
    client = login(app, account)
    page = text(client.get("/mon-foyer"))
    assert "Déclarer mon quotient familial" in page
    assert "Tarif appliqué : Tranche 5 (QF &gt; 1 500 € ou inconnu) (QF inconnu)" in page

    assert declare(client, "650").status_code == 303
    expected = (
        "Quotient familial déclaré : 650 € — en attente de vérification.</strong>\n"
        "  Tarif appliqué en attendant : Tranche 5 (QF &gt; 1 500 € ou inconnu) (QF inconnu)."
    )
    assert expected in text(client.get("/mon-foyer"))
    assert expected in text(client.get("/factures"))
    assert "en attente de vérification" in text(client.get(DECLARE))

    with app.app_context():
        db.session.get(Household, account.household_id).family_quotient = 850
        db.session.commit()
    assert "Tarif appliqué en attendant : Tranche 3 (QF 801 à 1 100 €) (QF 850 €)" in text(
        client.get("/mon-foyer")
    )


# --- Bad input saves nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "data", "filename", "message"),
    [
        ("650", None, None, "Joignez votre attestation CAF ou MSA."),
        ("", PDF, "caf.pdf", "Indiquez votre quotient familial."),
        ("abc", PDF, "caf.pdf", "Saisissez le quotient familial en chiffres, par exemple 850."),
        ("-5", PDF, "caf.pdf", "Saisissez le quotient familial en chiffres"),
        ("٦٥٠", PDF, "caf.pdf", "Saisissez le quotient familial en chiffres"),
        ("100000", PDF, "caf.pdf", "Le quotient familial doit être entre 0 et 99 999."),
        ("9" * 4000, PDF, "caf.pdf", "Le quotient familial doit être entre 0 et 99 999."),
        ("650", EXE, "caf.pdf", "Ce fichier n'est pas un document accepté."),
        ("650", b"", "caf.pdf", "Le fichier est vide."),
    ],
)
def test_bad_declarations_save_nothing(app, value, data, filename, message):
    account = make_user(app, role="parent")
    client = login(app, account)
    before = saved(app)
    response = declare(client, value, data, filename or "caf.pdf")
    assert response.status_code == 422
    assert message in text(response)
    assert saved(app) == before
    assert files(app) == []
    assert qf_of(app, account.household_id) is None


def test_spaces_and_euro_sign_are_understood(app):
    account = make_user(app, role="parent")
    assert declare(login(app, account), "1 200 €", png(), "caf.png").status_code == 303
    assert declarations(app, account.household_id)[0][2] == 1200


def test_the_household_form_no_longer_sets_the_qf(app):
    account = make_user(app, role="parent")
    client = login(app, account)
    response = post(
        client,
        "/mon-foyer/modifier",
        {"address_line": "1 rue Neuve", "postcode": "49290", "family_quotient": "100"},
    )
    assert response.status_code == 303
    with app.app_context():
        household = db.session.get(Household, account.household_id)
        assert (household.address_line, household.family_quotient) == ("1 rue Neuve", None)
    assert 'name="family_quotient"' not in text(client.get("/mon-foyer/modifier"))


# --- One declaration at a time ----------------------------------------------------------------


def test_one_open_declaration_per_household(app):
    account = make_user(app, role="parent")
    client = login(app, account)
    assert declare(client, "650").status_code == 303
    before = files(app)
    assert len(before) == 1
    second = declare(client, "700")
    assert second.status_code == 422
    assert "déjà en cours de vérification" in text(second)
    assert [row[2] for row in declarations(app, account.household_id)] == [650]
    assert files(app) == before


def test_the_database_keeps_one_open_declaration_even_if_the_check_is_raced(app, monkeypatch):
    account = make_user(app, role="parent")
    client = login(app, account)
    assert declare(client, "650").status_code == 303
    before = files(app)
    assert len(before) == 1
    # Two parents pressing at the same instant both pass the Python check...
    monkeypatch.setattr(quotient, "open_declaration", lambda *a: None)
    # ...the database refuses the second, the family reads why, its file is not kept.
    second = declare(client, "700")
    assert second.status_code == 422
    assert "déjà en cours de vérification" in text(second)
    assert len(declarations(app, account.household_id)) == 1
    assert files(app) == before


def test_a_family_cancels_its_declaration_and_its_attestation_goes_with_it(app):
    account = make_user(app, role="parent")
    client = login(app, account)
    assert declare(client, "650").status_code == 303
    [(request_id, _status, _value, document_id)] = declarations(app, account.household_id)
    assert post(client, f"/mes-demandes/{request_id}/annuler").status_code == 303
    assert declarations(app, account.household_id)[0][1] == "cancelled"
    assert document_state(app, document_id) == ("quotient-familial", "pending", True)
    assert qf_of(app, account.household_id) is None
    assert declare(client, "700").status_code == 303


def test_accepting_the_attestation_from_the_documents_page_accepts_the_declaration(app):
    account = make_user(app, role="parent")
    assert declare(login(app, account), "650").status_code == 303
    [(request_id, _status, _value, document_id)] = declarations(app, account.household_id)
    admin_client = login(app, make_user(app, role="admin"))
    response = post(
        admin_client, f"/admin/documents/{document_id}/decision", {"decision": "accepted"}
    )
    assert response.status_code == 303
    assert declarations(app, account.household_id)[0][1] == "accepted"
    assert qf_of(app, account.household_id) == 650


def test_the_attestation_type_is_made_on_first_use_and_seeded_alike(app):
    from citoyens.documents.demo import seed_demo

    account = make_user(app, role="parent")
    with app.app_context():
        assert (
            db.session.scalar(select(DocumentType).where(DocumentType.code == "quotient-familial"))
            is None
        )
    assert declare(login(app, account), "650").status_code == 303
    with app.app_context():
        made = db.session.scalar(
            select(DocumentType).where(DocumentType.code == "quotient-familial")
        )
        assert (made.label, made.scope) == (
            "Attestation de quotient familial (CAF ou MSA)",
            "household",
        )
        assert seed_demo() == 4  # the other demo types; this one exists already


# --- Access -----------------------------------------------------------------------------------


def test_access_rules(app):
    account = make_user(app, role="parent")
    client = login(app, account)
    assert declare(client, "650").status_code == 303
    [(request_id, *_rest)] = declarations(app, account.household_id)

    other = login(app, make_user(app, role="parent"))
    assert other.get(f"/mes-demandes/{request_id}").status_code == 404
    assert post(other, f"/mes-demandes/{request_id}/annuler").status_code == 404
    # A parent on the staff decision: 403, and nothing decided.
    assert decide(client, request_id, "accept").status_code == 403
    assert declarations(app, account.household_id)[0][1] == "sent"
    # No CSRF token: 400, nothing saved.
    before = saved(app)
    no_token = client.post(
        DECLARE,
        data={"family_quotient": "700", "attestation": (io.BytesIO(PDF), "caf.pdf")},
        content_type="multipart/form-data",
    )
    assert no_token.status_code == 400
    assert saved(app) == before
    # Anonymous: to the login page.
    anonymous = app.test_client().get(DECLARE)
    assert anonymous.status_code in (302, 303) and "/connexion" in anonymous.location
    assert qf_of(app, account.household_id) is None


def test_staff_see_the_declaration_in_their_queue(app):
    account = make_user(app, role="parent")
    assert declare(login(app, account), "650").status_code == 303
    staff_client = login(app, make_user(app, role="admin"))
    queue = text(staff_client.get("/admin/demandes?kind=family_quotient"))
    assert "Quotient familial déclaré : 650 €" in queue


def test_staff_accept_through_the_rule_too(app):
    """The decision handler, without HTTP: accepting copies the figure, once."""
    from citoyens.documents.uploads import check_upload
    from citoyens.requests.operations import RequestError, staff_change_status

    account = make_user(app, role="parent")
    staff = make_user(app, role="admin")
    with app.test_request_context():
        parent = db.session.get(User, account.id)
        request = quotient.declare_family_quotient(
            account.household_id, 321, check_upload(PDF, "caf.pdf"), actor=parent
        )
        db.session.commit()
        assert db.session.get(Household, account.household_id).family_quotient is None
        staff_change_status(request, "accepted", actor=db.session.get(User, staff.id))
        db.session.commit()
        assert db.session.get(Household, account.household_id).family_quotient == 321
        with pytest.raises(RequestError):
            staff_change_status(request, "refused", actor=staff, message="Trop tard")


def test_staff_see_the_declaration_and_the_qf_it_would_replace(app):
    account = make_user(app, role="parent")
    with app.app_context():
        db.session.get(Household, account.household_id).family_quotient = 900
        db.session.commit()
    assert declare(login(app, account), "650").status_code == 303
    [(request_id, _status, _value, document_id)] = declarations(app, account.household_id)
    page = text(login(app, make_user(app, role="admin")).get(f"/admin/demandes/{request_id}"))
    assert "Quotient familial déclaré : 650 €" in page
    assert "Quotient familial appliqué</dt><dd>900 €" in page
    assert f"/admin/documents/{document_id}" in page


def test_the_attestation_is_not_sent_alone_from_my_documents(app):
    from citoyens.documents.operations import quotient_attestation_type

    account = make_user(app, role="parent")
    with app.app_context():
        type_id = quotient_attestation_type().id
        db.session.commit()
    client = login(app, account)
    page = text(client.get("/mes-documents"))
    assert "Attestation de quotient familial (CAF ou MSA)" in page
    assert f'name="type_id" value="{type_id}"' not in page
    assert "/mon-foyer/quotient" in page
    before = saved(app)
    response = client.post(
        "/mes-documents/envoyer",
        data={
            "type_id": str(type_id),
            "file": (io.BytesIO(PDF), "caf.pdf"),
            "csrf_token": csrf_token(client),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "s'envoie avec le montant de votre quotient" in text(response)
    assert saved(app) == before and files(app) == []
