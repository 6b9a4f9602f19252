"""Paying an invoice online: the parent's journey through the simulated bank and PayFiP
(eopayment's payfip_ws with only its two SOAP calls replaced), and every way a notification
can lie, repeat or come late (SECURITY.md: at most one payment, never a wrong amount)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from eopayment.payfip_ws import PAYMENT_URL, PayFiP, PayFiPError
from flask import render_template
from sqlalchemy import func, select

from citoyens.billing import bank_sim, payments
from citoyens.billing.bank_orders import BankStatus
from citoyens.billing.models import Invoice, Payment, PaymentAttempt
from citoyens.billing.payfip import SimulatedBank
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.forms import PARIS
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import make_user

TOTAL = 1400  # make_invoice's default: 4 meals at 3,50 €
BANK_PAGE = "/banque-simulee/paiement/"


@pytest.fixture
def family(app, auth):
    """A parent, logged in on `client`."""
    account = make_user(app, role="parent", children=1)
    auth.login(account)
    return account


@pytest.fixture
def invoice_id(app, family):
    return make_invoice(app, family.household_id)


# --- Helpers ----------------------------------------------------------------------------------


def pay(client, invoice_id, data=None):
    return post(client, f"/factures/{invoice_id}/payer", data)


def start(client, invoice_id) -> str:
    """Press « Payer en ligne »; the simulated bank's id for the trip."""
    response = pay(client, invoice_id)
    assert response.status_code == 303, response.status_code
    location = response.headers["Location"]
    assert location.startswith(BANK_PAGE), location
    return location.removeprefix(BANK_PAGE)


def choose(client, bank_id: str, choice: str):
    """The parent's button on the bank's page: the bank notifies, then sends them back."""
    return post(client, BANK_PAGE + bank_id, {"choix": choice})


def notify(app, bank_id: str, field: str = "idOp"):
    """The bank's server calling: no cookie, no CSRF token."""
    return app.test_client().post("/paiement/notification", data={field: bank_id})


def bank_says(monkeypatch, status: str, amount_cents: int | None, reference: str | None):
    """The simulated bank's answer to every status request from now on."""
    report = BankStatus(status, amount_cents, reference)
    monkeypatch.setattr(SimulatedBank, "fetch_status", lambda self, *args, **kwargs: report)


def payments_of(app, invoice_id) -> list[tuple[str, int, str]]:
    with app.app_context():
        return [
            (p.method, p.amount_cents, p.transaction_id)
            for p in db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id))
        ]


def attempts_of(app, invoice_id) -> list[PaymentAttempt]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(PaymentAttempt)
                .where(PaymentAttempt.invoice_id == invoice_id)
                .order_by(PaymentAttempt.id)
            )
        )


def invoice_status(app, invoice_id) -> str:
    with app.app_context():
        return db.session.get(Invoice, invoice_id).status


def reference_of(app, invoice_id, attempt_id) -> str:
    with app.app_context():
        return payments.bank_reference(db.session.get(Invoice, invoice_id).number, attempt_id)


def audit_actions(app, invoice_id) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"invoice:{invoice_id}")
                .order_by(AuditEvent.id)
            )
        )


def flashes(client) -> list[str]:
    with client.session_transaction() as session:
        return [message for _category, message in session.get("_flashes", [])]


def invoice_path(app, invoice_id) -> str:
    return f"/factures/{invoice_id}"


def receipts(outbox) -> list:
    return [m for m in outbox if m.subject.startswith("Paiement reçu")]


# --- The journey on the simulated bank ----------------------------------------------------------


def test_parent_pays_on_the_simulated_bank_and_gets_one_receipt(
    app, client, family, invoice_id, outbox
):
    bank_id = start(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    assert (attempt.status, attempt.amount_cents, attempt.bank_id) == ("pending", TOTAL, bank_id)

    page = client.get(BANK_PAGE + bank_id)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "14,00\xa0€" in text
    assert reference_of(app, invoice_id, attempt.id) in text
    assert "Chalonnes-sur-Loire" in text
    for label in ("Payer", "Refuser", "Abandonner"):
        assert f">{label}</button>" in text

    response = choose(client, bank_id, "paid")
    assert response.status_code == 303
    # The bank's notification came before the browser is even back.
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert invoice_status(app, invoice_id) == "paid"

    back = client.get(response.headers["Location"])
    assert back.status_code == 303
    assert back.headers["Location"] == invoice_path(app, invoice_id)
    assert any(message.startswith("Paiement enregistré") for message in flashes(client))
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]

    (receipt,) = receipts(outbox)
    assert receipt.recipients == [family.email]
    assert "14,00\xa0€" in receipt.body and bank_id in receipt.body
    assert "payment.recorded" in audit_actions(app, invoice_id)


def test_the_payment_counts_when_the_parent_never_comes_back(
    app, client, family, invoice_id, outbox
):
    bank_id = start(client, invoice_id)
    bank_sim.settle(bank_id, "paid")  # paid, then the phone's battery died
    assert payments_of(app, invoice_id) == []

    assert notify(app, bank_id).status_code == 200
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert invoice_status(app, invoice_id) == "paid"
    assert len(receipts(outbox)) == 1


def test_a_notification_repeated_three_times_records_one_payment_and_one_receipt(
    app, client, family, invoice_id, outbox
):
    bank_id = start(client, invoice_id)
    choose(client, bank_id, "paid")
    for _ in range(3):
        assert notify(app, bank_id).status_code == 200
    client.get(f"/paiement/retour?idop={bank_id}")
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert len(receipts(outbox)) == 1
    assert audit_actions(app, invoice_id).count("payment.recorded") == 1


@pytest.mark.parametrize(
    ("choice", "message"),
    [("refused", "Paiement refusé"), ("cancelled", "Paiement abandonné")],
)
def test_refused_or_abandoned_payment_records_nothing(
    app, client, family, invoice_id, outbox, choice, message
):
    bank_id = start(client, invoice_id)
    response = choose(client, bank_id, choice)
    client.get(response.headers["Location"])
    assert any(m.startswith(message) for m in flashes(client))
    assert [a.status for a in attempts_of(app, invoice_id)] == [choice]
    assert payments_of(app, invoice_id) == []
    assert invoice_status(app, invoice_id) == "issued"
    assert receipts(outbox) == []
    # The invoice is still due: a new trip to the bank for the same amount.
    second = start(client, invoice_id)
    assert second != bank_id
    assert [a.amount_cents for a in attempts_of(app, invoice_id)] == [TOTAL, TOTAL]


def test_a_pending_payment_shows_as_being_checked(app, client, family, invoice_id):
    bank_id = start(client, invoice_id)
    client.get(f"/paiement/retour?idop={bank_id}")  # back before choosing (browser's back)
    assert any(m.startswith("Paiement en cours de vérification") for m in flashes(client))
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]


def test_a_late_paid_notification_for_a_cancelled_attempt_is_recorded_all_the_same(
    app, client, family, invoice_id, monkeypatch, outbox
):
    """The bank took the money after the attempt was closed here: never lost."""
    bank_id = start(client, invoice_id)
    choose(client, bank_id, "cancelled")
    (attempt,) = attempts_of(app, invoice_id)
    bank_says(monkeypatch, "paid", TOTAL, reference_of(app, invoice_id, attempt.id))

    assert notify(app, bank_id).status_code == 200
    assert [a.status for a in attempts_of(app, invoice_id)] == ["paid"]
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert invoice_status(app, invoice_id) == "paid"
    assert len(receipts(outbox)) == 1
    assert "payment.late" in audit_actions(app, invoice_id)
    assert notify(app, bank_id).status_code == 200  # repeated: nothing more
    assert len(payments_of(app, invoice_id)) == 1


def test_a_notification_for_an_unknown_bank_id_records_nothing(app, client, family, invoice_id):
    start(client, invoice_id)
    assert notify(app, "f" * 32).status_code == 404
    assert notify(app, "").status_code == 400
    assert notify(app, "<script>", field="idop").status_code == 400
    assert app.test_client().post("/paiement/notification").status_code == 400
    assert payments_of(app, invoice_id) == []
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]


@pytest.mark.parametrize(
    ("amount", "reference"),
    [(TOTAL - 1, "right"), (TOTAL * 2, "right"), (None, "right"), (TOTAL, "wrong"), (TOTAL, None)],
    ids=["less", "more", "no-amount", "other-reference", "no-reference"],
)
def test_the_bank_saying_paid_with_another_amount_or_reference_records_nothing(
    app, client, family, invoice_id, monkeypatch, outbox, amount, reference
):
    bank_id = start(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    expected = reference_of(app, invoice_id, attempt.id)
    bank_says(
        monkeypatch, "paid", amount, {"right": expected, "wrong": "F2030999P1"}.get(reference)
    )

    assert notify(app, bank_id).status_code == 200
    assert payments_of(app, invoice_id) == []
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]
    assert invoice_status(app, invoice_id) == "issued"
    assert receipts(outbox) == []
    assert "payment.mismatch" in audit_actions(app, invoice_id)


def test_a_notification_for_another_attempt_reference_records_nothing(
    app, client, family, invoice_id, monkeypatch
):
    """A bank id replayed against another invoice's attempt: references differ."""
    other_invoice = make_invoice(app, family.household_id, month=date(2030, 10, 1))
    start(client, other_invoice)
    bank_id = start(client, invoice_id)
    (other_attempt,) = attempts_of(app, other_invoice)
    bank_says(monkeypatch, "paid", TOTAL, reference_of(app, other_invoice, other_attempt.id))
    notify(app, bank_id)
    assert payments_of(app, invoice_id) == payments_of(app, other_invoice) == []


# --- What can be paid, and by whom --------------------------------------------------------------


def test_the_amount_is_what_remains_due_whatever_the_form_says(app, client, family, invoice_id):
    with app.app_context():
        db.session.add(
            Payment(
                invoice_id=invoice_id,
                household_id=family.household_id,
                method="manual",
                amount_cents=400,
                transaction_id="guichet-1",
            )
        )
        db.session.commit()
    pay(client, invoice_id, {"amount": "1", "amount_cents": "1", "household_id": "999"})
    (attempt,) = attempts_of(app, invoice_id)
    assert attempt.amount_cents == TOTAL - 400
    assert attempt.household_id == family.household_id

    choose(client, attempt.bank_id, "paid")
    assert invoice_status(app, invoice_id) == "paid"  # 400 at the counter + 1000 by card


def test_a_partial_credit_note_lowers_the_amount_as_the_invoice_page_shows_it(
    app, client, family, invoice_id
):
    from citoyens.billing import rules

    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        db.session.add(
            Invoice(
                household_id=family.household_id,
                kind="credit",
                credit_for_id=invoice_id,
                year=invoice.year,
                sequence=invoice.sequence + 500_000,
                number=f"A{invoice.number}",
                month=invoice.month,
                due_on=invoice.due_on,
                total_cents=-350,  # one meal not owed
                status="issued",
                addressee=invoice.addressee,
            )
        )
        db.session.commit()
        page_figure = rules.invoice_detail(invoice, rules.today()).open_cents
    bank_id = start(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    assert attempt.amount_cents == page_figure == TOTAL - 350

    choose(client, bank_id, "paid")
    assert payments_of(app, invoice_id) == [("card", TOTAL - 350, bank_id)]
    assert invoice_status(app, invoice_id) == "paid"
    assert "payment.overpaid" not in audit_actions(app, invoice_id)


def test_pay_pressed_twice_goes_back_to_the_open_attempt(app, client, family, invoice_id):
    first = start(client, invoice_id)
    assert start(client, invoice_id) == first
    (attempt,) = attempts_of(app, invoice_id)
    assert (attempt.status, attempt.bank_id) == ("pending", first)
    assert attempt.bank_url == BANK_PAGE + first


def test_an_open_attempt_past_its_time_is_closed_and_a_new_one_opens(
    app, client, family, invoice_id, monkeypatch
):
    first = start(client, invoice_id)
    monkeypatch.setitem(app.config, "PAYMENT_ATTEMPT_MINUTES", 0)
    second = start(client, invoice_id)
    assert second != first
    assert [a.status for a in attempts_of(app, invoice_id)] == ["expired", "pending"]


def test_an_invoice_settled_at_the_counter_meanwhile_is_not_sent_back_to_the_bank(
    app, client, family, invoice_id
):
    bank_id = start(client, invoice_id)
    with app.app_context():
        db.session.add(
            Payment(
                invoice_id=invoice_id,
                household_id=family.household_id,
                method="manual",
                amount_cents=TOTAL,
                transaction_id="guichet-2",
            )
        )
        db.session.get(Invoice, invoice_id).status = "paid"
        db.session.commit()
    response = pay(client, invoice_id)
    assert response.headers["Location"] == invoice_path(app, invoice_id)
    assert flashes(client) == ["Cette facture est déjà réglée : il ne reste rien à payer."]
    assert [(a.status, a.bank_id) for a in attempts_of(app, invoice_id)] == [("pending", bank_id)]


def test_the_database_refuses_a_second_pending_attempt(app, family, invoice_id):
    from sqlalchemy.exc import IntegrityError

    with app.app_context():
        for _ in range(2):
            db.session.add(
                PaymentAttempt(
                    invoice_id=invoice_id,
                    household_id=family.household_id,
                    amount_cents=TOTAL,
                    status="pending",
                )
            )
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_two_attempts_paid_record_both_and_the_excess_becomes_a_credit(
    app, client, family, monkeypatch, outbox
):
    """19,55 € due, paid twice at the bank: 39,10 € recorded, the invoice paid once, the
    second 19,55 € in the family's credit, flagged to staff (not reviewed)."""
    from citoyens.billing.credits import credit_balance
    from citoyens.billing.models import HouseholdCredit

    invoice_id = make_invoice(app, family.household_id, lines=[("Accueil du soir", 1955, 1)])
    first = start(client, invoice_id)
    monkeypatch.setitem(app.config, "PAYMENT_ATTEMPT_MINUTES", 0)  # the first one expires
    second = start(client, invoice_id)
    bank_sim.settle(first, "paid")  # the first tab was still on the bank's page
    choose(client, second, "paid")
    assert invoice_status(app, invoice_id) == "paid"
    assert notify(app, first).status_code == 200  # the late one: recorded all the same

    assert sorted(payments_of(app, invoice_id)) == sorted(
        [("card", 1955, first), ("card", 1955, second)]
    )
    assert invoice_status(app, invoice_id) == "paid"
    assert [a.status for a in attempts_of(app, invoice_id)] == ["paid", "paid"]
    with app.app_context():
        assert credit_balance(family.household_id) == 1955
        (credit,) = db.session.scalars(select(HouseholdCredit))
        late = db.session.scalar(select(Payment.id).where(Payment.transaction_id == first))
        assert (credit.kind, credit.amount_cents, credit.invoice_id, credit.payment_id) == (
            "overpayment",
            1955,
            invoice_id,
            late,
        )
        assert credit.reviewed_at is None
    assert audit_actions(app, invoice_id).count("payment.overpaid") == 1
    assert len(receipts(outbox)) == 2


def test_the_staff_invoice_page_shows_the_overpayment(
    app, client, family, invoice_id, monkeypatch, admin
):
    from citoyens.billing.credits import add_credit

    bank_id = start(client, invoice_id)
    choose(client, bank_id, "paid")
    with app.app_context():
        payment_id = db.session.scalar(select(Payment.id).where(Payment.invoice_id == invoice_id))
        add_credit(
            family.household_id, "overpayment", 250, payment_id=payment_id, invoice_id=invoice_id
        )
        db.session.commit()
    agent = app.test_client()
    post(agent, "/connexion", {"email": admin.email, "password": admin.password})
    text = agent.get(f"/admin/factures/{invoice_id}").get_data(as_text=True)
    assert "Trop-perçu</span> de 2,50\xa0€" in text


def test_a_payment_after_a_credit_note_cancelled_the_invoice_is_all_credit(
    app, client, family, invoice_id, monkeypatch
):
    from citoyens.billing.credits import credit_balance

    bank_id = start(client, invoice_id)
    with app.app_context():
        db.session.get(Invoice, invoice_id).status = "cancelled"  # a credit note, meanwhile
        db.session.commit()
    choose(client, bank_id, "paid")
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert invoice_status(app, invoice_id) == "cancelled"
    with app.app_context():
        assert credit_balance(family.household_id) == TOTAL


def test_another_households_invoice_is_404(app, client, family):
    stranger = make_user(app, role="parent")
    foreign = make_invoice(app, stranger.household_id)
    assert pay(client, foreign).status_code == 404
    assert pay(client, 999_999).status_code == 404
    assert attempts_of(app, foreign) == []


def test_a_direct_debit_invoice_is_not_payable_by_card(app, client, family):
    mandate = make_mandate(app, family.household_id)
    invoice_id = make_invoice(app, family.household_id, status="direct_debit", mandate_id=mandate)
    with app.app_context():
        db.session.get(Invoice, invoice_id).debit_on = date(2030, 10, 15)
        db.session.commit()
    response = pay(client, invoice_id)
    assert response.status_code == 303
    assert response.headers["Location"] == invoice_path(app, invoice_id)
    assert flashes(client) == [
        "Cette facture sera prélevée le 15/10/2030 : elle ne se paie pas par carte."
    ]
    assert attempts_of(app, invoice_id) == []


@pytest.mark.parametrize(
    ("status", "lines", "message"),
    [
        ("paid", None, "Cette facture est déjà réglée"),
        ("debited", None, "Cette facture est déjà réglée"),
        ("cancelled", None, "Cette facture a été annulée par un avoir"),
        ("issued", [("Goûter", 50, 1)], "Le paiement en ligne n'est possible qu'à partir de"),
    ],
)
def test_an_invoice_with_nothing_to_pay_by_card_is_refused(
    app, client, family, status, lines, message
):
    invoice_id = make_invoice(app, family.household_id, status=status, lines=lines)
    pay(client, invoice_id)
    (shown,) = flashes(client)
    assert shown.startswith(message)
    assert attempts_of(app, invoice_id) == []


def test_a_credit_note_is_not_payable(app, client, family, invoice_id):
    with app.app_context():
        db.session.get(Invoice, invoice_id).kind = "credit"
        db.session.commit()
    pay(client, invoice_id)
    assert flashes(client) == ["Un avoir ne se paie pas : il vient en déduction d'une facture."]
    assert attempts_of(app, invoice_id) == []


def test_a_payment_already_made_is_found_before_a_second_trip(
    app, client, family, invoice_id, outbox
):
    """Paid, notification not there yet, « Payer » again: the bank is asked first."""
    bank_id = start(client, invoice_id)
    bank_sim.settle(bank_id, "paid")
    pay(client, invoice_id)
    assert flashes(client) == ["Cette facture est déjà réglée : il ne reste rien à payer."]
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]
    assert len(attempts_of(app, invoice_id)) == 1


def test_staff_cannot_pay_and_anonymous_is_sent_to_login(app, staff, invoice_id):
    anonymous = app.test_client()
    response = post(anonymous, f"/factures/{invoice_id}/payer")
    assert urlsplit(response.headers["Location"]).path == "/connexion"
    agent = app.test_client()
    post(agent, "/connexion", {"email": staff.email, "password": staff.password})
    assert post(agent, f"/factures/{invoice_id}/payer").status_code == 403
    assert attempts_of(app, invoice_id) == []


def test_the_bank_being_down_leaves_the_invoice_due(app, client, family, invoice_id, monkeypatch):
    from citoyens.billing.payfip import BankUnavailable

    def down(self, order):
        raise BankUnavailable("timeout")

    monkeypatch.setattr(SimulatedBank, "start", down)
    response = pay(client, invoice_id)
    assert response.headers["Location"] == invoice_path(app, invoice_id)
    assert flashes(client)[0].startswith("Le paiement en ligne est momentanément indisponible")
    assert [a.status for a in attempts_of(app, invoice_id)] == ["cancelled"]


def test_the_invoice_page_offers_the_button_and_lets_its_form_reach_payfip(
    app, client, family, invoice_id, monkeypatch
):
    page = client.get(f"/factures/{invoice_id}")
    assert f'action="/factures/{invoice_id}/payer"' in page.get_data(as_text=True)
    assert "payfip" not in page.headers["Content-Security-Policy"]
    # The form's 303 leads to PayFiP: browsers check it against the page's form-action.
    monkeypatch.setitem(app.config, "PAYMENT_BACKEND", "payfip_ws")
    page = client.get(f"/factures/{invoice_id}")
    policy = page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://www.payfip.gouv.fr;" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy


# --- The return, without the session -----------------------------------------------------------


def test_the_return_shows_nothing_personal_without_the_households_session(
    app, client, family, invoice_id
):
    bank_id = start(client, invoice_id)
    response = choose(client, bank_id, "paid")
    return_url = response.headers["Location"]
    with app.app_context():
        number = db.session.get(Invoice, invoice_id).number

    for visitor in (app.test_client(), None):
        if visitor is None:  # another family's account
            visitor = app.test_client()
            other = make_user(app, role="parent")
            post(visitor, "/connexion", {"email": other.email, "password": other.password})
        page = visitor.get(return_url)
        text = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "Paiement enregistré" in text
        assert number not in text and "14,00" not in text and family.email not in text

    assert app.test_client().get("/paiement/retour?tentative=forged").status_code == 404
    assert app.test_client().get("/paiement/retour").status_code == 404


@pytest.mark.parametrize(
    "shape",
    [
        "{url}&idop={bank_id}",  # PayFiP appends to our query string
        "{url}?idop={bank_id}",  # ...or adds a second "?"
        "{url}&IdOp={bank_id}&utm_source=payfip&resultrans=P",  # its parameters, any case
        "{base}?tentative=forged&{query}&tentative=again",  # a key repeated
        "{base}?lang=fr&{query}#haut",  # our side adds parameters too
        "{base}?idop={bank_id}&x=1",  # the signed token lost: the idOp finds the attempt
    ],
)
def test_the_return_address_works_with_the_parameters_both_sides_add(
    app, client, family, invoice_id, shape
):
    bank_id = start(client, invoice_id)
    bank_sim.settle(bank_id, "paid")
    (attempt,) = attempts_of(app, invoice_id)
    with app.test_request_context():
        from citoyens.billing.pay_views import return_url

        url = return_url(attempt.id)
    base, query = url.split("?", 1)
    address = shape.format(url=url, base=base, query=query, bank_id=bank_id)

    response = client.get(address.removeprefix("http://localhost"))
    assert response.status_code == 303, address
    assert response.headers["Location"] == invoice_path(app, invoice_id)
    assert payments_of(app, invoice_id) == [("card", TOTAL, bank_id)]


# --- Where the simulated bank exists -------------------------------------------------------------


@pytest.mark.parametrize(
    "setting", [{"PAYMENT_BACKEND": "payfip_ws"}, {"PRODUCTION": True}], ids=["payfip", "prod"]
)
def test_the_simulated_bank_is_404_unless_configured(
    app, client, family, invoice_id, monkeypatch, setting
):
    bank_id = start(client, invoice_id)
    for key, value in setting.items():
        monkeypatch.setitem(app.config, key, value)
    assert client.get(BANK_PAGE + bank_id).status_code == 404
    assert choose(client, bank_id, "paid").status_code == 404
    assert payments_of(app, invoice_id) == []


def test_the_simulated_bank_is_never_used_in_production(
    app, client, family, invoice_id, monkeypatch
):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    pay(client, invoice_id)
    assert flashes(client)[0].startswith("Le paiement en ligne est momentanément indisponible")
    assert attempts_of(app, invoice_id) == []


def test_the_simulated_bank_page_answers_404_to_unknown_ids(client):
    assert client.get(BANK_PAGE + "0" * 32).status_code == 404
    assert client.get(BANK_PAGE + "../etc").status_code == 404


# --- PayFiP through eopayment (only the SOAP calls replaced) -------------------------------------


class SoapReply(dict):
    """What zeep returns: attributes, and keys for eopayment's bank_data."""

    def __getattr__(self, name):
        return self.get(name)


@pytest.fixture
def payfip(app, monkeypatch):
    """PAYMENT_BACKEND=payfip_ws; PayFiP's web service answers from `payfip.replies`."""
    monkeypatch.setitem(app.config, "PAYMENT_BACKEND", "payfip_ws")
    monkeypatch.setitem(app.config, "PAYFIP_NUMCLI", "123456")
    monkeypatch.setitem(app.config, "PAYFIP_SAISIE", "T")

    class Service:
        created: list[dict] = []
        asked: list[str] = []
        reply = None  # a SoapReply, or a PayFiPError to raise

        def get_idop(self, **kwargs):
            Service.created.append(kwargs)
            return f"idop{len(Service.created):032d}"[-36:]

        def get_info_paiement(self, idop, timeout=None):
            Service.asked.append(idop)
            if isinstance(Service.reply, Exception):
                raise Service.reply
            return Service.reply

    monkeypatch.setattr(PayFiP, "get_idop", Service.get_idop)
    monkeypatch.setattr(PayFiP, "get_info_paiement", Service.get_info_paiement)
    Service.created, Service.asked = [], []
    return Service


def soap_reply(resultrans: str, montant: str, refdet: str, idop: str, minutes_ago: int = 10):
    when = datetime.now(PARIS) - timedelta(minutes=minutes_ago)
    return SoapReply(
        dattrans=when.strftime("%d%m%Y"),
        heurtrans=when.strftime("%H%M"),
        exer="2030",
        idOp=idop,
        mel="parent@example.org",
        montant=montant,
        numauto="112233" if resultrans == "P" else None,
        numcli="123456",
        objet="Facture",
        refdet=refdet,
        resultrans=resultrans,
        saisie="T",
    )


def test_payfip_whole_flow_start_notification_status_payment(
    app, client, family, invoice_id, payfip, outbox
):
    response = pay(client, invoice_id)
    assert response.status_code == 303
    url = urlsplit(response.headers["Location"])
    assert url._replace(query="").geturl() == PAYMENT_URL
    (attempt,) = attempts_of(app, invoice_id)
    assert parse_qs(url.query) == {"idop": [attempt.bank_id]}
    assert (
        "form-action 'self' https://www.payfip.gouv.fr"
        in response.headers["Content-Security-Policy"]
    )

    (created,) = payfip.created
    reference = reference_of(app, invoice_id, attempt.id)
    assert created["numcli"] == "123456" and created["saisie"] == "T"
    assert created["montant"] == "1400" and created["exer"] == "2030"
    assert created["refdet"] == reference and created["mel"] == family.email
    assert created["objet"].startswith("Facture T2030")
    assert urlsplit(created["url_notification"]).path == "/paiement/notification"
    assert urlsplit(created["url_redirect"]).path == "/paiement/retour"

    # The parent is paying: PayFiP answers P5 (operation in progress).
    payfip.reply = PayFiPError("P5", "transaction en cours")
    assert notify(app, attempt.bank_id).status_code == 200
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]

    # Paid: the notification only names the idOp; the status is fetched and checked.
    payfip.reply = soap_reply("P", "1400", reference, attempt.bank_id)
    assert notify(app, attempt.bank_id).status_code == 200
    assert payfip.asked == [attempt.bank_id, attempt.bank_id]
    assert payments_of(app, invoice_id) == [("card", TOTAL, attempt.bank_id)]
    assert invoice_status(app, invoice_id) == "paid"

    # The browser's return (PayFiP's redirect) changes nothing more.
    back = client.get(created["url_redirect"])
    assert back.headers["Location"] == invoice_path(app, invoice_id)
    assert any(m.startswith("Paiement enregistré") for m in flashes(client))
    assert len(payments_of(app, invoice_id)) == 1
    assert len(receipts(outbox)) == 1


def test_payfip_paid_for_another_amount_records_nothing(app, client, family, invoice_id, payfip):
    pay(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    reference = reference_of(app, invoice_id, attempt.id)
    payfip.reply = soap_reply("P", "1300", reference, attempt.bank_id)
    assert notify(app, attempt.bank_id).status_code == 200
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]
    assert payments_of(app, invoice_id) == []


def test_payfip_unreachable_answers_503_so_the_bank_notifies_again(
    app, client, family, invoice_id, payfip
):
    pay(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    payfip.reply = PayFiPError("HTTP error", "timeout")
    assert notify(app, attempt.bank_id).status_code == 503
    assert [a.status for a in attempts_of(app, invoice_id)] == ["pending"]


def test_payfip_cannot_start_without_a_client_number(
    app, client, family, invoice_id, payfip, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "PAYFIP_NUMCLI", "")
    pay(client, invoice_id)
    assert flashes(client)[0].startswith("Le paiement en ligne n'est pas encore disponible")
    assert "PAYFIP_NUMCLI" in caplog.text
    assert payfip.created == [] and attempts_of(app, invoice_id) == []


@pytest.mark.parametrize(
    ("numcli", "saisie"), [("", "W"), ("123456", "W"), ("000000", "X"), ("654321", "T")]
)
def test_payfip_in_production_refuses_a_placeholder_client_number_or_test_mode(
    app, client, family, invoice_id, payfip, monkeypatch, caplog, numcli, saisie
):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    monkeypatch.setitem(app.config, "PAYFIP_NUMCLI", numcli)
    monkeypatch.setitem(app.config, "PAYFIP_SAISIE", saisie)
    pay(client, invoice_id)
    assert flashes(client) == [
        "Le paiement en ligne n'est pas encore disponible : réglez cette facture au guichet "
        "de la mairie."
    ]
    assert "Paiement en ligne désactivé" in caplog.text
    assert payfip.created == [] and attempts_of(app, invoice_id) == []


def test_payfip_in_production_with_a_real_client_number_starts(
    app, client, family, invoice_id, payfip, monkeypatch
):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    monkeypatch.setitem(app.config, "PAYFIP_NUMCLI", "654321")
    monkeypatch.setitem(app.config, "PAYFIP_SAISIE", "W")
    assert pay(client, invoice_id).headers["Location"].startswith(PAYMENT_URL)
    assert payfip.created[0]["numcli"] == "654321"


def test_payfip_gets_the_communes_address_when_the_parents_is_too_long(
    app, client, invoice_id, payfip, monkeypatch
):
    """eopayment refuses a `mel` over 80 characters: the payment starts all the same."""
    long_email = "a" * 70 + "@exemple-de-domaine.fr"  # 92 characters
    account = make_user(app, role="parent", email=long_email)
    invoice_id = make_invoice(app, account.household_id)
    visitor = app.test_client()
    post(visitor, "/connexion", {"email": account.email, "password": account.password})
    monkeypatch.setitem(app.config, "PAYFIP_CONTACT_EMAIL", "regie@mairie-exemple.fr")

    response = pay(visitor, invoice_id)
    assert response.headers["Location"].startswith(PAYMENT_URL)
    (created,) = payfip.created
    assert created["mel"] == "regie@mairie-exemple.fr"

    monkeypatch.setitem(app.config, "PAYFIP_CONTACT_EMAIL", "")  # else the sender's address
    with app.app_context():
        from citoyens.billing.payfip import contact_email, payfip_email

        assert payfip_email(long_email, contact_email(app.config)) == "ne-pas-repondre@example.org"
        assert payfip_email("parent@example.org", "x@y.fr") == "parent@example.org"
        assert payfip_email("pas une adresse", "x@y.fr") == "x@y.fr"


# What eopayment's payfip_ws makes of each PayFiP answer, and the attempt's status after.
PAYFIP_ANSWERS = [
    ("P", 10, "paid"),  # paid by card
    ("V", 10, "paid"),  # paid by direct debit through PayFiP
    ("R", 10, "refused"),  # card refused
    ("Z", 10, "refused"),  # direct debit refused
    ("A", 10, "cancelled"),  # abandoned...
    ("A", 1, "pending"),  # ...but in the first minutes the idOp is still payable: waiting
    ("Q", 10, "pending"),  # an unknown code: ERROR, nothing final
]


@pytest.mark.parametrize(("resultrans", "minutes", "status"), PAYFIP_ANSWERS)
def test_each_payfip_result_code_maps_to_the_attempt_status(
    app, client, family, invoice_id, payfip, resultrans, minutes, status
):
    pay(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    reference = reference_of(app, invoice_id, attempt.id)
    payfip.reply = soap_reply(resultrans, "1400", reference, attempt.bank_id, minutes)
    assert notify(app, attempt.bank_id).status_code == 200
    assert [a.status for a in attempts_of(app, invoice_id)] == [status]
    paid = [("card", TOTAL, attempt.bank_id)] if status == "paid" else []
    assert payments_of(app, invoice_id) == paid


@pytest.mark.parametrize(
    ("code", "started_minutes_ago", "status", "http"),
    [
        ("P1", 5, "cancelled", 200),  # idOp unknown to PayFiP: nobody paid it
        ("P5", 5, "pending", 200),  # no result yet: the parent is paying
        ("P5", 180, "cancelled", 200),  # no result hours later: never paid
        ("P2", 5, "pending", 503),  # another PayFiP error: ask again later
    ],
)
def test_each_payfip_error_code_maps_to_the_attempt_status(
    app, client, family, invoice_id, payfip, code, started_minutes_ago, status, http
):
    pay(client, invoice_id)
    (attempt,) = attempts_of(app, invoice_id)
    with app.app_context():
        row = db.session.get(PaymentAttempt, attempt.id)
        row.created_at = row.created_at - timedelta(minutes=started_minutes_ago)
        db.session.commit()
    payfip.reply = PayFiPError(code, "message de PayFiP")
    assert notify(app, attempt.bank_id).status_code == http
    assert [a.status for a in attempts_of(app, invoice_id)] == [status]


# --- Pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "attempt_id", "expected"),
    [
        ("F2026-000042", 17, "F2026000042P17"),
        ("T2030-000001", 123456789, "T2030000001P123456789"),
        ("X" * 20 + "-" + "9" * 20, 123456789, "X" * 20 + "P123456789"),
    ],
)
def test_bank_reference_fits_payfip_refdet(number, attempt_id, expected):
    from eopayment.payfip_ws import REFDET_RE

    reference = payments.bank_reference(number, attempt_id)
    assert reference == expected
    assert REFDET_RE.match(reference)


def test_pay_block_shows_the_button_the_planned_debit_or_a_counter_note(app, family, invoice_id):
    with app.test_request_context():
        invoice = db.session.get(Invoice, invoice_id)
        html = render_template("billing/_pay_block.html", invoice=invoice, balance_cents=TOTAL)
        assert f'action="/factures/{invoice_id}/payer"' in html
        assert 'name="csrf_token"' in html and "Payer en ligne 14,00\xa0€" in html

        assert "Payer" not in render_template(
            "billing/_pay_block.html", invoice=invoice, balance_cents=0
        )
        assert "au guichet" in render_template(
            "billing/_pay_block.html", invoice=invoice, balance_cents=40
        )

        invoice.status, invoice.debit_on = "direct_debit", date(2030, 10, 15)
        html = render_template("billing/_pay_block.html", invoice=invoice, balance_cents=TOTAL)
        assert "Prélèvement prévu le 15/10/2030 : pas de paiement par carte." in html
        assert "<form" not in html
        db.session.rollback()


def test_receipts_are_recorded_once_in_the_mail_log(app, client, family, invoice_id):
    from citoyens.core.models import MailMessage

    bank_id = start(client, invoice_id)
    choose(client, bank_id, "paid")
    notify(app, bank_id)
    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.kind == "payment-receipt")
        )
    assert count == 1


def test_the_sweep_command_settles_attempts_left_pending(app, client, runner, family, outbox):
    paid_invoice = make_invoice(app, family.household_id)
    left_invoice = make_invoice(app, family.household_id, month=date(2030, 10, 1))
    paid = start(client, paid_invoice)
    left = start(client, left_invoice)
    bank_sim.settle(paid, "paid")  # no notification came: the parent closed the tab
    bank_sim.settle(left, "cancelled")

    too_young = runner.invoke(args=["payments", "check-pending"])
    assert too_young.exit_code == 0 and "Aucun paiement en cours" in too_young.output

    result = runner.invoke(args=["payments", "check-pending", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "Payé : 1" in result.output and "Abandonné : 1" in result.output
    assert payments_of(app, paid_invoice) == [("card", TOTAL, paid)]
    assert invoice_status(app, left_invoice) == "issued"
    assert len(receipts(outbox)) == 1

    again = runner.invoke(args=["payments", "check-pending", "--older-than", "0"])
    assert "Aucun paiement en cours" in again.output
    assert len(receipts(outbox)) == 1


def test_the_sweep_command_asks_the_bank_about_expired_attempts_too(
    app, client, runner, family, invoice_id, monkeypatch, outbox
):
    """Closed here past their time, the bank's final word still counts: paid is recorded,
    abandoned ends the checks."""
    first = start(client, invoice_id)
    monkeypatch.setitem(app.config, "PAYMENT_ATTEMPT_MINUTES", 0)
    start(client, invoice_id)
    third_invoice = make_invoice(app, family.household_id, month=date(2030, 10, 1))
    gone = start(client, third_invoice)
    start(client, third_invoice)
    bank_sim.settle(first, "paid")  # no notification came for it
    bank_sim.settle(gone, "cancelled")

    result = runner.invoke(args=["payments", "check-pending", "--older-than", "60"])
    assert result.exit_code == 0, result.output
    assert "Payé : 1" in result.output and "Abandonné : 1" in result.output
    assert payments_of(app, invoice_id) == [("card", TOTAL, first)]
    assert invoice_status(app, invoice_id) == "paid"
    assert [a.status for a in attempts_of(app, invoice_id)] == ["paid", "pending"]
    assert [a.status for a in attempts_of(app, third_invoice)] == ["cancelled", "pending"]
    assert len(receipts(outbox)) == 1
