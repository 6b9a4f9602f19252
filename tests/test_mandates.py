"""Prélèvement automatique through the pages: the family signs and revokes its SEPA mandate
(/prelevement), staff export the month's file and record rejections (/admin/prelevements).

The full IBAN must never appear in a page, an audit row, an e-mail or a log record; every
response of these tests goes through `page()`, which checks it. CSRF stays on.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import undefer

from citoyens.billing import mandates
from citoyens.billing.models import (
    DirectDebitBatch,
    DirectDebitItem,
    Invoice,
    Mandate,
    Payment,
)
from citoyens.core.models import AuditEvent, MailMessage
from citoyens.extensions import db, limiter
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import PASSWORD, make_user

IBAN = "FR1420041010050500013M02606"
IBAN_SPACED = "FR14 2004 1010 0505 0001 3M02 606"
# Pieces that would give the account away even without the country and key.
SECRETS = (
    IBAN,
    IBAN_SPACED,
    "20041010050500013M02606",
    "0500013M026",
    IBAN.lower(),
    IBAN_SPACED.lower(),
)
FACTORY_IBAN = "FR7630006000011234567890189"  # tests/billing_factories.make_mandate
SEPT = date(2030, 9, 1)
OCT = date(2030, 10, 1)


def login(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


def assert_no_iban(text: str, *ibans: str) -> None:
    for secret in (*SECRETS, *ibans, FACTORY_IBAN, FACTORY_IBAN[4:]):
        assert secret not in text, f"full IBAN {secret!r} found"


def page(response, status: int = 200, *ibans: str):
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    text = response.get_data(as_text=True)
    assert_no_iban(text, *ibans)
    return text


def sign_data(**overrides) -> dict:
    data = {
        "holder_name": "Camille Martin",
        "iban": IBAN_SPACED.lower(),
        "bic": "",
        "consent": "y",
        "password": PASSWORD,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def mandates_of(app, household_id: int) -> list[Mandate]:
    """Detached, IBAN decrypted (pages never load it: it is deferred)."""
    with app.app_context():
        return db.session.scalars(
            select(Mandate)
            .options(undefer(Mandate.iban))
            .where(Mandate.household_id == household_id)
            .order_by(Mandate.id)
        ).all()


def check_stored_traces(app) -> None:
    """Audit rows and e-mails: never the IBAN."""
    with app.app_context():
        for row in db.session.scalars(select(AuditEvent)):
            assert_no_iban(f"{row.action} {row.target} {row.details}")
        for message in db.session.scalars(select(MailMessage)):
            assert_no_iban(f"{message.subject} {message.body_text} {message.body_html}")


@pytest.fixture
def family(app):
    return make_user(app, role="parent", children=1)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(mandates, "today", lambda: date(2030, 10, 3))


# --- The page ---------------------------------------------------------------------------------


def test_page_explains_direct_debit_and_shows_the_form(app, family, clock):
    client = login(app, family)
    text = page(client.get("/prelevement"))
    assert "Prélèvement automatique" in text
    assert "Facture en ligne" in text and "Paiement en ligne" in text
    assert "En signant ce formulaire de mandat, vous autorisez (A) TRESOR PUBLIC" in text
    assert app.config["SEPA_CREDITOR_ID"] in text
    assert "à partir de la facture <strong>de septembre 2030</strong>" in text
    assert "Signer le mandat" in text
    assert 'name="iban"' in text and 'autocomplete="off"' in text


def test_signing_a_mandate(app, family, clock, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    client = login(app, family)
    response = post(client, "/prelevement/signer", sign_data(holder_name="  Hélène   Dupont "))
    page(response, 303)
    assert response.headers["Location"].endswith("/prelevement")
    [mandate] = mandates_of(app, family.household_id)
    assert (mandate.iban, mandate.bic, mandate.holder_name) == (IBAN, "PSSTFRPP", "Hélène Dupont")
    assert mandate.first_month == SEPT and mandate.revoked_at is None
    assert mandate.signed_by_id == family.id
    assert mandate.rum.startswith(f"CHALONNES-{family.household_id}-") and len(mandate.rum) <= 35

    text = page(client.get("/prelevement"))
    assert mandate.rum in text and "PSSTFRPP" in text and "Hélène Dupont" in text
    assert "FR14 •••• •••• •••• •••• •••• 606" in text
    assert "Révoquer le mandat" in text and "Signer le mandat" not in text
    assert "Votre mandat de prélèvement est signé (référence" in text  # the flash
    text = page(client.get("/prelevement"))
    assert "Il s'applique à partir de la facture de septembre 2030." in text

    [mail] = outbox
    assert mail.recipients == [family.email]
    assert mandate.rum in mail.body and "FR14 •••• •••• •••• •••• •••• 606" in mail.body
    assert "septembre 2030" in mail.body and app.config["SEPA_CREDITOR_ID"] in mail.body
    assert_no_iban(f"{mail.subject} {mail.body} {mail.html}")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "mandate.signed"))
        assert event.actor_id == family.id and mandate.rum in event.details
    check_stored_traces(app)
    for record in caplog.records:
        assert_no_iban(record.getMessage())
        assert_no_iban(str(record.args))


def test_first_month_is_the_current_one_once_last_month_is_invoiced(app, family, clock):
    make_invoice(app, family.household_id, month=SEPT)
    client = login(app, family)
    assert "facture <strong>d&#39;octobre 2030</strong>" in page(client.get("/prelevement"))
    page(post(client, "/prelevement/signer", sign_data()), 303)
    assert mandates_of(app, family.household_id)[0].first_month == OCT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": "pas le bon mot de passe"}, "Le mot de passe est incorrect."),
        ({"password": None}, "Le mot de passe est obligatoire."),
        ({"consent": None}, "Cochez la case pour donner votre accord au mandat."),
        ({"iban": "FR14 2004 1010 0505 0001 3M02 607"}, "Cet IBAN n&#39;est pas valide"),
        ({"iban": "FR0630006000011234567890188"}, "Cet IBAN n&#39;est pas valide"),
        ({"iban": "FR14 2004 1010 0505 0001 3M02 60"}, "Cet IBAN n&#39;est pas valide"),
        ({"iban": ""}, "L&#39;IBAN est obligatoire."),
        ({"holder_name": ""}, "Le nom du titulaire du compte est obligatoire."),
        ({"holder_name": "Jean & Marie"}, "ne peut contenir que des lettres"),
        ({"holder_name": "x" * 71}, "ne peut pas dépasser 70 caractères"),
        ({"bic": "PAS UN BIC"}, "Ce BIC n&#39;est pas valide"),
        ({"iban": "GB82 WEST 1234 5698 7654 32"}, "saisissez celui indiqué sur votre RIB"),
    ],
)
def test_a_refused_form_saves_nothing(app, family, outbox, overrides, message):
    client = login(app, family)
    text = page(post(client, "/prelevement/signer", sign_data(**overrides)), 422)
    assert message in text
    assert "Signer le mandat" in text
    assert mandates_of(app, family.household_id) == []
    assert outbox == []
    with app.app_context():
        assert not db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "mandate.signed")
        )


def test_wrong_password_is_audited_without_the_iban(app, family):
    client = login(app, family)
    page(post(client, "/prelevement/signer", sign_data(password="mauvais mot de passe")), 422)
    with app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "mandate.password_refused")
        )
        assert event.actor_id == family.id
    check_stored_traces(app)


def test_a_foreign_account_with_its_bic(app, family):
    client = login(app, family)
    data = sign_data(iban="GB82 WEST 1234 5698 7654 32", bic="nwbkgb2l")
    page(post(client, "/prelevement/signer", data), 303, "GB82WEST12345698765432")
    [mandate] = mandates_of(app, family.household_id)
    assert (mandate.iban, mandate.bic) == ("GB82WEST12345698765432", "NWBKGB2L")
    page(client.get("/prelevement"), 200, "GB82WEST12345698765432", "WEST12345698765432")


def test_a_second_mandate_while_one_is_active_is_refused(app, family):
    make_mandate(app, family.household_id)
    client = login(app, family)
    text = page(post(client, "/prelevement/signer", sign_data()), 409)
    assert "déjà actif" in text
    assert len(mandates_of(app, family.household_id)) == 1


def test_fields_posted_for_another_household_are_ignored(app, family):
    other = make_user(app, role="parent")
    client = login(app, family)
    data = sign_data(household_id=str(other.household_id), first_month="2020-01-01")
    page(post(client, "/prelevement/signer", data), 303)
    assert mandates_of(app, other.household_id) == []
    [mandate] = mandates_of(app, family.household_id)
    assert mandate.first_month > date(2020, 1, 1)


# --- Revoking ---------------------------------------------------------------------------------


def test_revoking_the_mandate(app, family, caplog):
    caplog.set_level(logging.DEBUG)
    mandate_id = make_mandate(app, family.household_id, first_month=SEPT)
    exported = make_invoice(
        app, family.household_id, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    admin = make_user(app, role="admin")
    page(post(login(app, admin), "/admin/prelevements/generer", {"mois": "2030-09"}), 303)
    planned = make_invoice(
        app, family.household_id, month=OCT, status="direct_debit", mandate_id=mandate_id
    )
    with app.app_context():
        db.session.execute(
            update(Invoice).where(Invoice.id == planned).values(debit_on=date(2030, 11, 15))
        )
        db.session.commit()
        planned_number = db.session.get(Invoice, planned).number

    client = login(app, family)
    text = page(client.get("/prelevement"))
    assert planned_number in text and "redeviendra « à payer »" in text
    # Wrong password: still active.
    text = page(post(client, "/prelevement/revoquer", {"password": "mauvais mot de passe"}), 422)
    assert "Le mot de passe est incorrect." in text
    assert mandates_of(app, family.household_id)[0].revoked_at is None

    response = post(client, "/prelevement/revoquer", {"password": PASSWORD})
    page(response, 303)
    assert mandates_of(app, family.household_id)[0].revoked_at is not None
    with app.app_context():
        invoice = db.session.get(Invoice, planned)
        assert (invoice.status, invoice.mandate_id, invoice.debit_on) == ("issued", None, None)
        assert db.session.get(Invoice, exported).status == "debited"
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "mandate.revoked"))
    text = page(client.get("/prelevement"))
    assert f"La facture {planned_number} qui devait être prélevée est de nouveau à payer" in text
    assert "Signer le mandat" in text  # a new mandate may be signed
    # Revoking again: nothing to revoke.
    assert "pas de mandat" in page(
        post(client, "/prelevement/revoquer", {"password": PASSWORD}), 409
    )
    check_stored_traces(app)
    for record in caplog.records:
        assert_no_iban(record.getMessage())


# --- Another household ------------------------------------------------------------------------


def test_another_household_never_sees_nor_revokes_the_mandate(app, family):
    mandate_id = make_mandate(app, family.household_id)
    with app.app_context():
        rum = db.session.get(Mandate, mandate_id).rum
    intruder = make_user(app, role="parent")
    client = login(app, intruder)
    text = page(client.get("/prelevement"))
    assert rum not in text and "Camille Martin" not in text and "Signer le mandat" in text
    page(post(client, "/prelevement/revoquer", {"password": PASSWORD}), 409)
    assert mandates_of(app, family.household_id)[0].revoked_at is None


def test_staff_and_anonymous_stay_out_of_the_family_page(app, staff):
    assert app.test_client().get("/prelevement").status_code == 302
    assert login(app, staff).get("/prelevement").status_code == 403


# --- Staff: export, download, rejection -------------------------------------------------------


@pytest.fixture
def debits(app, family):
    """Two households under direct debit for September 2030."""
    mandate_id = make_mandate(app, family.household_id, first_month=SEPT)
    first = make_invoice(
        app, family.household_id, month=SEPT, status="direct_debit", mandate_id=mandate_id
    )
    other = make_user(app, role="parent")
    other_mandate = make_mandate(app, other.household_id, first_month=SEPT)
    second = make_invoice(
        app,
        other.household_id,
        month=SEPT,
        status="direct_debit",
        mandate_id=other_mandate,
        lines=[("Accueil de loisirs", 1205, 2)],
    )
    return first, second


def test_access_to_the_staff_pages(app, family, staff, admin, debits):
    parent_client = login(app, family)
    assert parent_client.get("/admin/prelevements").status_code == 403
    assert (
        post(parent_client, "/admin/prelevements/generer", {"mois": "2030-09"}).status_code == 403
    )

    agent = login(app, staff)
    text = page(agent.get("/admin/prelevements?mois=2030-09"))
    assert "2 factures" in text and "Générer le fichier" not in text
    assert "Seul un administrateur" in text
    assert post(agent, "/admin/prelevements/generer", {"mois": "2030-09"}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 0

    boss = login(app, admin)
    page(post(boss, "/admin/prelevements/generer", {"mois": "2030-09"}), 303)
    with app.app_context():
        batch_id = db.session.scalar(select(DirectDebitBatch.id))
        item_id = db.session.scalar(select(DirectDebitItem.id))
    assert agent.get(f"/admin/prelevements/lot/{batch_id}.xml").status_code == 403
    assert agent.get(f"/admin/prelevements/rejet/{item_id}").status_code == 403
    assert parent_client.get(f"/admin/prelevements/lot/{batch_id}.xml").status_code == 403
    assert boss.get("/admin/prelevements/lot/999999.xml").status_code == 404
    assert boss.get("/admin/prelevements/rejet/999999").status_code == 404


def test_export_download_and_idempotence(app, admin, debits):
    first, second = debits
    client = login(app, admin)
    text = page(client.get("/admin/prelevements?mois=2030-09"))
    assert "2 factures" in text and "38,10" in text  # 14,00 € + 24,10 €
    assert "Générer le fichier de prélèvement" in text and "FRST" in text

    response = post(client, "/admin/prelevements/generer", {"mois": "2030-09"})
    page(response, 303)
    assert response.headers["Location"].endswith("/admin/prelevements?mois=2030-09")
    text = page(client.get("/admin/prelevements?mois=2030-09"))
    assert "Fichier créé : 2 prélèvements pour 38,10" in text
    assert "Aucune facture de septembre 2030 n'attend de prélèvement" in text
    assert "Enregistrer un rejet" in text
    with app.app_context():
        batch = db.session.scalar(select(DirectDebitBatch))
        assert (batch.count, batch.total_cents, batch.created_by_id) == (2, 3810, admin.id)
        assert {i.status for i in db.session.scalars(select(Invoice))} == {"debited"}
        payments = db.session.scalars(select(Payment).order_by(Payment.invoice_id)).all()
        assert [(p.invoice_id, p.method, p.amount_cents) for p in payments] == [
            (first, "direct_debit", 1400),
            (second, "direct_debit", 2410),
        ]
        batch_id = batch.id

    download = client.get(f"/admin/prelevements/lot/{batch_id}.xml")
    assert download.status_code == 200
    assert download.mimetype == "application/xml"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert f"prelevements-2030-09-lot-{batch_id}.xml" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "no-store"
    assert b"<SeqTp>FRST</SeqTp>" in download.data and b'<InstdAmt Ccy="EUR">14.00' in (
        download.data
    )
    with app.app_context():
        assert db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "direct_debit.downloaded",
                AuditEvent.target == f"direct_debit_batch:{batch_id}",
            )
        )

    # The same month again: nothing new.
    page(post(client, "/admin/prelevements/generer", {"mois": "2030-09"}), 303)
    assert "aucun fichier créé" in page(client.get("/admin/prelevements?mois=2030-09"))
    with app.app_context():
        assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 1
        assert db.session.scalar(select(func.count(Payment.id))) == 2
    check_stored_traces(app)


def test_an_unknown_month_creates_nothing(app, admin, debits):
    client = login(app, admin)
    assert "Mois inconnu" in page(
        post(client, "/admin/prelevements/generer", {"mois": "2030-13"}), 422
    )
    page(client.get("/admin/prelevements?mois=n%27importe"))
    with app.app_context():
        assert db.session.scalar(select(func.count(DirectDebitBatch.id))) == 0


def test_recording_a_rejection(app, family, admin, debits, outbox):
    first, _second = debits
    client = login(app, admin)
    page(post(client, "/admin/prelevements/generer", {"mois": "2030-09"}), 303)
    with app.app_context():
        item_id = db.session.scalar(
            select(DirectDebitItem.id).where(DirectDebitItem.invoice_id == first)
        )
        number = db.session.get(Invoice, first).number
    outbox.clear()
    text = page(client.get(f"/admin/prelevements/rejet/{item_id}"))
    assert "AM04 · Provision insuffisante" in text and "MS02" in text
    text = page(post(client, f"/admin/prelevements/rejet/{item_id}", {"motif": "ZZ99"}), 422)
    assert "Choisissez le motif" in text

    response = post(client, f"/admin/prelevements/rejet/{item_id}", {"motif": "AM04"})
    page(response, 303)
    text = page(client.get("/admin/prelevements?mois=2030-09"))
    assert f"la facture {number} est de nouveau à payer" in text
    assert "AM04 Provision insuffisante" in text
    with app.app_context():
        invoice = db.session.get(Invoice, first)
        assert invoice.status == "issued"  # à payer, by card again
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == first))
        assert payment.rejected_at is not None
    [mail] = outbox
    assert mail.recipients == [family.email]
    assert number in mail.subject and "Provision insuffisante" in mail.body
    assert "14,00" in mail.body
    # Twice: refused, nothing more sent.
    text = page(post(client, f"/admin/prelevements/rejet/{item_id}", {"motif": "AM04"}), 422)
    assert "déjà enregistré" in text
    assert len(outbox) == 1
    # The family sees the invoice out of direct debit and may sign again later.
    family_page = page(login(app, family).get("/prelevement"))
    assert number not in family_page  # no longer among the planned debits
    check_stored_traces(app)


# --- Property-based: the sign-up form never fails ---------------------------------------------


def test_the_mandate_form_never_fails_and_a_refusal_saves_nothing(app, family):
    client = login(app, family)
    texts = st.one_of(
        st.just(""),
        st.text(max_size=80),
        st.sampled_from([IBAN, IBAN_SPACED, "FR76", "\x00", "é" * 80, "NWBKGB2L"]),
    )

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(
        holder=texts,
        iban=texts,
        bic=texts,
        consent=st.sampled_from(["", "y", "on", "\x00"]),
        password=st.sampled_from(["", "faux", "\x00" * 3, "x" * 200]),
    )
    def run(holder, iban, bic, consent, password):
        limiter.reset()
        data = {"holder_name": holder, "iban": iban, "bic": bic, "password": password}
        if consent:
            data["consent"] = consent
        response = post(client, "/prelevement/signer", data)
        assert response.status_code == 422
        assert mandates_of(app, family.household_id) == []

    run()


def test_password_attempts_are_limited_per_account(app, family):
    client = login(app, family)
    for _ in range(10):
        page(post(client, "/prelevement/signer", sign_data(password="mauvais mot de passe")), 422)
    assert post(client, "/prelevement/signer", sign_data()).status_code == 429
    assert mandates_of(app, family.household_id) == []
    # Another family is not held back by this one.
    other = login(app, make_user(app, role="parent"))
    page(post(other, "/prelevement/signer", sign_data()), 303)
