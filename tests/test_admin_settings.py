"""The commune's settings (/admin/reglages): administrators only, validated in French
(colour contrast, IBAN, ICS), secrets never shown back, audited without values; and the
one accessor every page, the manifest, invoice PDFs and the SEPA export read."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from citoyens.billing import direct_debit_export
from citoyens.billing import rules as billing_rules
from citoyens.billing.models import DirectDebitBatch
from citoyens.config import demo_settings
from citoyens.core import settings
from citoyens.core.models import AuditEvent, Commune
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.documents_factories import jpeg, png
from tests.factories import make_user
from tests.test_admin_reservations import login
from tests.test_billing_pdf import needs_poppler, pdf_text

CREDITOR_IBAN = "FR7630006000011234567890189"
CREDITOR_ID = "FR19ZZZ654321"  # check digits right, not the demo identifier
VALID = {
    "name": "Montjean-sur-Loire",
    "address": "1 place de la Mairie, 49570 Montjean",
    "contact_email": "mairie@montjean.example.org",
    "phone": "02 41 00 00 00",
    "website": "https://montjean.example.org",
    "primary_color": "#7a1f3d",
    "mail_sender_name": "Mairie de Montjean",
    "payfip_numcli": "123456",
    "payfip_saisie": "X",
    "sepa_creditor_name": "TRESOR PUBLIC MONTJEAN",
    "sepa_creditor_iban": CREDITOR_IBAN,
    "sepa_creditor_bic": "AGRIFRPP",
    "sepa_creditor_id": CREDITOR_ID,
}


def commune(app) -> Commune | None:
    with app.app_context():
        row = db.session.scalar(select(Commune))
        if row is not None:
            db.session.expunge(row)
        return row


@pytest.fixture
def admin_client(app, admin):
    return login(app, admin)


def test_agents_are_refused(app, staff):
    client = login(app, staff)
    assert client.get("/admin/reglages").status_code == 403
    assert post(client, "/admin/reglages", VALID).status_code == 403
    assert commune(app) is None


def test_save_applies_everywhere_and_is_audited_without_values(app, admin_client):
    response = post(admin_client, "/admin/reglages", VALID)
    assert response.status_code == 303
    row = commune(app)
    assert row.name == "Montjean-sur-Loire" and row.sepa_creditor_iban == CREDITOR_IBAN
    assert row.sepa_creditor_id == CREDITOR_ID and row.payfip_saisie == "X"
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Montjean-sur-Loire" in page  # header
    assert "mairie@montjean.example.org" in page and "1 place de la Mairie" in page  # footer
    assert '<meta name="theme-color" content="#7a1f3d">' in page
    assert "/commune.css?c=7a1f3d" in page
    css = admin_client.get("/commune.css?c=7a1f3d")
    assert css.status_code == 200 and "--blue: #7a1f3d" in css.get_data(as_text=True)
    assert css.headers["Cache-Control"] == "public, max-age=86400"
    assert "Set-Cookie" not in css.headers
    assert admin_client.get("/commune.css?c=000000").status_code == 404
    manifest = admin_client.get("/manifest.webmanifest").get_json()
    assert "Montjean-sur-Loire" in manifest["name"] and manifest["theme_color"] == "#7a1f3d"
    with app.app_context():
        events = list(
            db.session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.updated"))
        )
        assert len(events) == 1
        assert "sepa_creditor_iban" in events[0].details
        assert CREDITOR_IBAN not in events[0].details and "123456" not in events[0].details


def test_secrets_are_never_shown_back(app, admin_client):
    post(admin_client, "/admin/reglages", VALID)
    text = admin_client.get("/admin/reglages").get_data(as_text=True)
    assert CREDITOR_IBAN not in text and "3000 6000" not in text
    assert "FR76 •••• 0189" in text
    assert "clé secrète" in text and app.config["SECRET_KEY"] not in text
    # A blank IBAN keeps the one saved; other fields change.
    response = post(
        admin_client, "/admin/reglages", {**VALID, "sepa_creditor_iban": "", "phone": "0241999999"}
    )
    assert response.status_code == 303
    row = commune(app)
    assert row.sepa_creditor_iban == CREDITOR_IBAN and row.phone == "+33241999999"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("primary_color", "#ffcc00", "trop claire"),
        ("primary_color", "#777777", "trop claire"),  # 4.48:1, just under
        ("primary_color", "jaune", "hexadécimal"),
        ("sepa_creditor_iban", "FR7630006000011234567890188", "IBAN n&#39;est pas valide"),
        ("sepa_creditor_id", "FR72ZZZ123457", "identifiant créancier SEPA (ICS) n&#39;est pas"),
        ("sepa_creditor_bic", "AGRI", "BIC n&#39;est pas valide"),
        ("payfip_numcli", "12345", "6 chiffres"),
        ("name", "", "nom de la commune est obligatoire"),
        ("website", "javascript:alert(1)", "https://"),
        ("phone", "12", "téléphone"),
    ],
)
def test_bad_values_are_refused_in_french_and_nothing_is_saved(
    app, admin_client, field, value, message
):
    response = post(admin_client, "/admin/reglages", {**VALID, field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert commune(app) is None
    with app.app_context():
        assert (
            db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "settings.updated"))
            is None
        )


def test_contrast_rule():
    assert settings.contrast_with_white("#1f4e8c") > 4.5
    assert settings.color_problem(settings.DEFAULT_PRIMARY_COLOR) is None
    assert settings.color_problem("#767676") is None  # 4.54:1
    assert settings.color_problem("#777777") is not None


def test_database_values_take_precedence_over_the_environment(app, admin_client):
    with app.test_request_context():
        assert settings.current()["SEPA_CREDITOR_ID"] == app.config["SEPA_CREDITOR_ID"]
        assert settings.current().name == app.config["COMMUNE_NAME"]
    post(admin_client, "/admin/reglages", {**VALID, "payfip_numcli": ""})
    with app.test_request_context():
        current = settings.current()
        assert current["SEPA_CREDITOR_ID"] == CREDITOR_ID
        assert current["PAYFIP_NUMCLI"] == app.config["PAYFIP_NUMCLI"]  # left empty
        production = {**app.config, "PRODUCTION": True, "PAYMENT_BACKEND": "payfip_ws"}
        names = [name for name, _ in demo_settings(settings.merged_config(production))]
        assert "SEPA_CREDITOR_ID" not in names and "SEPA_CREDITOR_IBAN" not in names
        assert "PAYFIP_NUMCLI" in names


def test_sepa_export_uses_the_commune_creditor(app, admin_client):
    post(admin_client, "/admin/reglages", VALID)
    household = make_user(app, role="parent").household_id
    mandate = make_mandate(app, household, first_month=date(2030, 9, 1))
    make_invoice(app, household, month=date(2030, 9, 1), status="direct_debit", mandate_id=mandate)
    with app.test_request_context():
        result = direct_debit_export.export_month(
            date(2030, 9, 1), actor=None, on=date(2030, 10, 2)
        )
        db.session.commit()
        xml = db.session.get(DirectDebitBatch, result.batch_ids[0]).xml
    assert CREDITOR_ID in xml and CREDITOR_IBAN in xml and "TRESOR PUBLIC MONTJEAN" in xml
    assert app.config["SEPA_CREDITOR_ID"] not in xml


@needs_poppler
def test_invoice_pdf_shows_the_commune(app, admin_client, tmp_path, monkeypatch):
    monkeypatch.setattr(billing_rules, "today", lambda: date(2030, 11, 20))
    post(admin_client, "/admin/reglages", VALID)
    household = make_user(app, role="parent").household_id
    invoice = make_invoice(app, household, month=date(2030, 9, 1))
    response = admin_client.get(f"/admin/factures/{invoice}.pdf")
    assert response.status_code == 200
    text = pdf_text(tmp_path, response.data)
    assert "Montjean-sur-Loire" in text and "1 place de la Mairie" in text


# --- The logo -----------------------------------------------------------------------------------


def upload(client, data: bytes, name: str = "logo.png", **fields):
    return post(
        client,
        "/admin/reglages",
        {**VALID, **fields, "logo": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_logo_is_checked_stored_and_served_with_caching(app, admin_client, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    response = upload(admin_client, png(size=(96, 48)))
    assert response.status_code == 303
    key = commune(app).logo_key
    assert key and key.endswith(".png") and (tmp_path / key).exists()
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert f'src="/logo/{key}"' in page
    served = admin_client.get(f"/logo/{key}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert app.test_client().get(f"/logo/{key}").status_code == 200  # public, like the page
    assert admin_client.get("/logo/" + "0" * 32 + ".png").status_code == 404
    icons = admin_client.get("/manifest.webmanifest").get_json()["icons"]
    assert icons[0] == {
        "src": f"/logo/{key}",
        "sizes": "96x48",
        "type": "image/png",
        "purpose": "any",
    }
    # A new logo replaces the file; removing it goes back to the portal's icon.
    assert upload(admin_client, jpeg(), "logo.jpg").status_code == 303
    new_key = commune(app).logo_key
    assert new_key.endswith(".jpg") and not (tmp_path / key).exists()
    assert post(admin_client, "/admin/reglages", {**VALID, "remove_logo": "y"}).status_code == 303
    assert commune(app).logo_key is None and not (tmp_path / new_key).exists()
    assert admin_client.get(f"/logo/{new_key}").status_code == 404


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.4 not an image", "logo.png"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "logo.svg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024), "big.png"),
    ],
)
def test_other_files_are_refused_as_logo(app, admin_client, tmp_path, monkeypatch, data, name):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    response = upload(admin_client, data, name)
    assert response.status_code == 422
    assert "Le logo doit être une image PNG ou JPEG" in response.get_data(as_text=True)
    assert commune(app) is None and list(tmp_path.iterdir()) == []
