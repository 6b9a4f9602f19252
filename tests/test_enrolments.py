"""Enrolment ("Inscriptions"): the rules, the family's pages, the decision, the race.

The rules are plain functions tested without HTTP; the pages are walked like a
parent on a phone would (step by step, with and without htmx), with forged ids
and missing documents; the duplicate rule is tested under two threads.
"""

from __future__ import annotations

import io
import os
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import event, func, select, text

from citoyens.accounts.models import User
from citoyens.core.models import MailMessage
from citoyens.database import utcnow
from citoyens.documents.rules import today_in_paris
from citoyens.enrolments import rules
from citoyens.enrolments.models import Enrolment
from citoyens.enrolments.operations import EnrolmentError, _mirror_status, enrol
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.requests.models import Request
from citoyens.requests.operations import change_status, family_cancel
from citoyens.services.models import School, SchoolYear, Service
from tests.conftest import csrf_token, dedicated_app, post
from tests.documents_factories import children_of, make_document, make_type
from tests.enrolments_factories import (
    counts,
    enrolments_of,
    make_activity,
    make_offer,
    make_private_school,
    make_school_year,
    make_service,
    make_window,
    next_school_year_start,
    update_child,
)
from tests.factories import make_user

TODAY = today_in_paris()


# --- Rules: eligibility (no database) --------------------------------------------------------


def year_starting(starts_on: date) -> SchoolYear:
    return SchoolYear(
        name="2026-2027", starts_on=starts_on, ends_on=date(starts_on.year + 1, 8, 31)
    )


def child(**fields) -> Person:
    fields.setdefault("first_name", "Léa")
    fields.setdefault("last_name", "Martin")
    return Person(**fields)


@pytest.mark.parametrize(
    ("birth", "on", "months"),
    [
        (date(2023, 9, 1), date(2026, 9, 1), 36),
        (date(2023, 9, 2), date(2026, 9, 1), 35),
        (date(2023, 8, 31), date(2026, 9, 1), 36),
        (date(2024, 2, 29), date(2026, 9, 1), 30),
        (date(2026, 9, 1), date(2026, 9, 1), 0),
    ],
)
def test_age_in_months_counts_whole_months(birth, on, months):
    assert rules.age_in_months(birth, on) == months


@pytest.mark.parametrize(
    ("birth", "eligible"),
    [
        (date(2023, 9, 1), True),  # exactly 36 months on 1 September 2026
        (date(2023, 9, 2), False),  # one day short of 36 months
        (date(2020, 9, 2), True),  # 71 months
        (date(2020, 9, 1), False),  # 72 months: too old
    ],
)
def test_eligibility_by_age_at_the_start_of_the_school_year(birth, eligible):
    service = Service(name="APS", min_age_months=36, max_age_months=71)
    problems = rules.eligibility_problems(
        child(birth_date=birth), service, year_starting(date(2026, 9, 1))
    )
    assert (problems == []) is eligible, problems
    if not eligible:
        assert "au 1er septembre 2026" in problems[0]


def test_eligibility_asks_for_a_missing_birth_date():
    service = Service(name="APS", min_age_months=36)
    problems = rules.eligibility_problems(child(), service, year_starting(date(2026, 9, 1)))
    assert problems and "date de naissance de Léa" in problems[0]


@pytest.mark.parametrize(("level", "eligible"), [("MS", True), ("GS", True), ("CP", False)])
def test_eligibility_by_class_level(level, eligible):
    service = Service(name="APS maternelle", school_levels="PS,MS,GS")
    problems = rules.eligibility_problems(
        child(class_level=level), service, year_starting(date(2026, 9, 1))
    )
    assert (problems == []) is eligible
    if not eligible:
        assert "PS, MS, GS" in problems[0] and "CP" in problems[0]


def test_eligibility_needs_the_class_when_the_service_lists_levels():
    service = Service(name="APS", school_levels="CP,CE1")
    problems = rules.eligibility_problems(child(), service, year_starting(date(2026, 9, 1)))
    assert problems and "classe de Léa" in problems[0]


def test_private_school_pupil_is_sent_to_the_ogec_canteen():
    service = Service(name="Restauration scolaire", excludes_private_school=True)
    pupil = child(school_id=1, class_level="CP")
    pupil.school = School(name="Saint-Joseph", kind="private", canteen_contact="ogec@example.org")
    problems = rules.eligibility_problems(pupil, service, year_starting(date(2026, 9, 1)))
    assert problems == [
        "Les élèves d'une école privée déjeunent à la cantine de leur école, gérée par l'OGEC. "
        "Contact : ogec@example.org."
    ]
    # A public school pupil, or another service: no objection.
    pupil.school = School(name="Les Goulidons", kind="public")
    assert rules.eligibility_problems(pupil, service, year_starting(date(2026, 9, 1))) == []
    pupil.school = School(name="Saint-Joseph", kind="private")
    assert (
        rules.eligibility_problems(pupil, Service(name="APS"), year_starting(date(2026, 9, 1)))
        == []
    )


# --- Rules: documents, duplicates, windows (database) ----------------------------------------


@pytest.fixture
def family(app):
    """A parent with two children (born 1 January 2018)."""
    account = make_user(app, role="parent", children=2)
    first, second = children_of(app, account.household_id)
    return account, first, second


def missing(app, household_id, child_id, service_id, year_id, today=TODAY):
    with app.app_context():
        service = db.session.get(Service, service_id)
        year = db.session.get(SchoolYear, year_id)
        return [
            (t.id, reason)
            for t, reason in rules.missing_documents(household_id, child_id, service, year, today)
        ]


def test_required_documents_present_missing_refused_expired(app, family):
    account, first, second = family
    child_type = make_type(app, scope="child", validity_months=12)
    household_type = make_type(app, scope="household")
    service_id = make_service(app, document_type_ids=(child_type, household_type))
    year_id = make_school_year(app)
    hid = account.household_id

    assert missing(app, hid, first, service_id, year_id) == [
        (household_type, "manquant"),
        (child_type, "manquant"),
    ]
    # The other child's document does not count for this one.
    make_document(app, household_id=hid, type_id=child_type, person_id=second)
    make_document(app, household_id=hid, type_id=household_type, status="refused")
    assert missing(app, hid, first, service_id, year_id) == [
        (household_type, "refusé"),
        (child_type, "manquant"),
    ]
    # Under review counts; a refused one is replaced by a new upload.
    with app.app_context():
        from citoyens.database import utcnow
        from citoyens.documents.models import Document

        for doc in db.session.scalars(select(Document).where(Document.household_id == hid)):
            doc.replaced_at = utcnow()
        db.session.commit()
    make_document(app, household_id=hid, type_id=household_type, status="pending")
    make_document(
        app,
        household_id=hid,
        type_id=child_type,
        person_id=first,
        status="accepted",
        valid_until=TODAY - timedelta(days=1),
    )
    assert missing(app, hid, first, service_id, year_id) == [(child_type, "expiré")]


def test_a_document_expiring_before_the_school_year_does_not_count(app, family):
    account, first, _ = family
    doc_type = make_type(app, scope="child", validity_months=12)
    service_id = make_service(app, document_type_ids=(doc_type,))
    starts_on = next_school_year_start()
    year_id = make_school_year(app, starts_on)
    make_document(
        app,
        household_id=account.household_id,
        type_id=doc_type,
        person_id=first,
        status="accepted",
        valid_until=starts_on - timedelta(days=1),
    )
    assert missing(app, account.household_id, first, service_id, year_id) == [
        (doc_type, "expire avant la rentrée")
    ]
    # Valid on the first day of the year: fine.
    with app.app_context():
        from citoyens.documents.models import Document

        db.session.scalar(
            select(Document).where(Document.type_id == doc_type)
        ).valid_until = starts_on
        db.session.commit()
    assert missing(app, account.household_id, first, service_id, year_id) == []


def test_a_year_already_started_checks_validity_today(app, family):
    account, first, _ = family
    doc_type = make_type(app, scope="household")
    service_id = make_service(app, document_type_ids=(doc_type,))
    year_id = make_school_year(app, date(TODAY.year - 1, 9, 1))
    make_document(app, household_id=account.household_id, type_id=doc_type, valid_until=TODAY)
    assert missing(app, account.household_id, first, service_id, year_id) == []


def test_inactive_required_types_are_not_asked(app, family):
    account, first, _ = family
    doc_type = make_type(app, scope="household", active=False)
    service_id = make_service(app, document_type_ids=(doc_type,))
    assert missing(app, account.household_id, first, service_id, make_school_year(app)) == []


def enrol_now(app, account, child_id, offer, activity_ids=None, **kwargs):
    with app.test_request_context():
        actor = db.session.get(User, account.id)
        enrolment = enrol(
            account.household_id,
            child_id,
            offer.service_id,
            offer.year_id,
            offer.activity_ids[:1] if activity_ids is None else activity_ids,
            actor=actor,
            **kwargs,
        )
        db.session.commit()
        return enrolment.id


def enrol_problems(app, account, child_id, offer, activity_ids=None, **kwargs) -> list[str]:
    with app.test_request_context():
        actor = db.session.get(User, account.id)
        with pytest.raises(EnrolmentError) as caught:
            enrol(
                account.household_id,
                child_id,
                offer.service_id,
                offer.year_id,
                offer.activity_ids[:1] if activity_ids is None else activity_ids,
                actor=actor,
                **kwargs,
            )
        db.session.rollback()
        return caught.value.problems


def test_enrol_opens_a_request_and_tells_the_service_and_the_family(app, family, outbox):
    account, first, _ = family
    offer = make_offer(app, name="Restauration scolaire")
    update_child(app, first, first_name="Léa", last_name="Martin")
    enrolment_id = enrol_now(app, account, first, offer, offer.activity_ids)
    [row] = enrolments_of(app, account.household_id)
    assert row[:4] == (first, offer.service_id, offer.year_id, "pending")
    assert row[5] == sorted(offer.activity_ids)
    with app.app_context():
        request = db.session.get(Request, row[4])
        year = db.session.get(SchoolYear, offer.year_id).name
        assert request.kind == "enrolment" and request.status == "sent"
        assert request.title == f"Inscription de Léa Martin — Restauration scolaire {year}"
        assert request.service_id == offer.service_id and request.person_id == first
        assert "Activités :" in request.events[0].body
        audit = db.session.scalar(
            text("SELECT count(*) FROM audit_events WHERE action = 'enrolment.created'")
        )
        assert audit == 1
    subjects = {(m.recipients[0], m.subject) for m in outbox}
    assert (account.email, "Votre demande d'inscription est envoyée") in subjects
    assert any(r == "service-tests@example.org" and "Nouvelle demande" in s for r, s in subjects)
    family_mail = next(m for m in outbox if m.recipients == [account.email])
    assert f"/inscriptions/{enrolment_id}" in family_mail.body


def test_duplicates_are_refused_until_the_first_is_refused_or_cancelled(app, family):
    account, first, second = family
    offer = make_offer(app)
    enrol_now(app, account, first, offer)
    problems = enrol_problems(app, account, first, offer)
    assert any("a déjà une inscription" in p for p in problems)
    with app.app_context():
        found = rules.duplicate(first, offer.service_id, offer.year_id)
        assert found is not None and found.status == "pending"
        assert rules.duplicate(second, offer.service_id, offer.year_id) is None
    enrol_now(app, account, second, offer)  # the other child may
    # Staff refuse the first: the child may be enrolled again.
    with app.test_request_context():
        enrolment = rules.duplicate(first, offer.service_id, offer.year_id)
        staff = db.session.get(User, make_user(app, role="staff").id)
        change_status(enrolment.request, "refused", actor=staff, message="Complet")
        db.session.commit()
    enrol_now(app, account, first, offer)
    assert [row[3] for row in enrolments_of(app, account.household_id)] == [
        "refused",
        "pending",
        "pending",
    ]


@pytest.mark.parametrize(
    ("opens", "closes", "expected"),
    [
        (10, 20, "ouvriront le"),
        (-20, -1, "sont closes depuis le"),
        (None, None, "ne sont pas ouvertes"),
    ],
)
def test_enrolment_window_must_be_open(app, family, opens, closes, expected):
    account, first, _ = family
    service_id = make_service(app)
    year_id = make_school_year(app)
    activity_id = make_activity(app, service_id)
    if opens is not None:
        make_window(
            app,
            service_id,
            year_id,
            opens_on=TODAY + timedelta(days=opens),
            closes_on=TODAY + timedelta(days=closes),
        )
    from tests.enrolments_factories import Offer

    offer = Offer(service_id, year_id, [activity_id])
    problems = enrol_problems(app, account, first, offer)
    assert any(expected in p for p in problems), problems
    # Open on its first and last day.
    if opens is not None:
        first_day = TODAY + timedelta(days=opens)
        last_day = TODAY + timedelta(days=closes)
        enrol_now(app, account, first, offer, today=first_day)
        with app.app_context():
            db.session.execute(text("DELETE FROM enrolment_activities"))
            db.session.execute(text("UPDATE enrolments SET status = 'cancelled'"))
            db.session.commit()
        enrol_now(app, account, first, offer, today=last_day)


def test_staff_skip_window_and_documents_but_not_eligibility_or_duplicates(app, family, outbox):
    account, first, second = family
    doc_type = make_type(app, scope="child")
    service_id = make_service(app, document_type_ids=(doc_type,), max_age_months=200)
    year_id = make_school_year(app)
    from tests.enrolments_factories import Offer

    offer = Offer(service_id, year_id, [make_activity(app, service_id)])  # no window at all
    problems = enrol_problems(app, account, first, offer)
    assert any("ne sont pas ouvertes" in p for p in problems)
    assert any("Documents à fournir" in p for p in problems)
    staff = make_user(app, role="staff")
    with app.test_request_context():
        actor = db.session.get(User, staff.id)
        enrol(
            account.household_id,
            first,
            service_id,
            year_id,
            offer.activity_ids,
            actor=actor,
            by_staff=True,
        )
        db.session.commit()
        with pytest.raises(EnrolmentError) as caught:
            enrol(
                account.household_id,
                first,
                service_id,
                year_id,
                offer.activity_ids,
                actor=actor,
                by_staff=True,
            )
        assert "a déjà une inscription" in caught.value.problems[0]
        db.session.rollback()
    update_child(app, second, birth_date=date(2000, 1, 1))
    with app.test_request_context():
        actor = db.session.get(User, staff.id)
        with pytest.raises(EnrolmentError) as caught:
            enrol(
                account.household_id,
                second,
                service_id,
                year_id,
                offer.activity_ids,
                actor=actor,
                by_staff=True,
            )
        assert "jusqu'à" in caught.value.problems[0]
        db.session.rollback()
    # Staff enrolled the child: the family is not told "your request is sent".
    assert not [m for m in outbox if m.recipients == [account.email]]


def test_enrol_refuses_forged_ids(app, family):
    account, first, _ = family
    offer = make_offer(app)
    other = make_offer(app)
    stranger = make_user(app, role="parent", children=1)
    [stranger_child] = children_of(app, stranger.household_id)
    assert "ne fait pas partie du foyer" in enrol_problems(app, account, stranger_child, offer)[0]
    problems = enrol_problems(app, account, first, offer, activity_ids=other.activity_ids)
    assert "n'est pas proposée par ce service" in problems[-1]
    assert (
        "au moins une activité" in enrol_problems(app, account, first, offer, activity_ids=[])[-1]
    )
    inactive = make_offer(app, active=False)
    assert "n'est plus proposé" in enrol_problems(app, account, first, inactive)[0]
    assert counts(app)["enrolments"] == 0


def test_place_request_fields_are_checked(app, family):
    account, first, _ = family
    offer = make_offer(app, place_request=True, activities=0, category="petite-enfance")
    bad = {
        "wished_start_on": TODAY - timedelta(days=1),
        "days_per_week": 6,
        "hours_per_week": 56,
        "comments": "x" * 2001,
    }
    problems = enrol_problems(app, account, first, offer, activity_ids=[], place=bad)
    assert len(problems) == 4
    good = {"wished_start_on": TODAY, "days_per_week": 5, "hours_per_week": 55, "comments": ""}
    enrol_now(app, account, first, offer, activity_ids=[], place=good)
    with app.app_context():
        enrolment = db.session.scalar(select(Enrolment))
        assert enrolment.request.kind == "place_request"
        assert enrolment.request.title.startswith("Demande de place de ")
        assert (enrolment.days_per_week, enrolment.hours_per_week) == (5, 55)


def test_request_decisions_and_status_changes_show_on_the_enrolment(app, family):
    account, first, second = family
    offer = make_offer(app, place_request=True, activities=0)
    place = {"wished_start_on": TODAY, "days_per_week": 3, "hours_per_week": 20}
    first_id = enrol_now(app, account, first, offer, activity_ids=[], place=place)
    second_id = enrol_now(app, account, second, offer, activity_ids=[], place=place)
    staff = make_user(app, role="staff")
    with app.test_request_context():
        agent = db.session.get(User, staff.id)
        parent = db.session.get(User, account.id)
        one = db.session.get(Enrolment, first_id)
        _mirror_status(one.request, "sent", "waiting_list", agent)
        assert one.status == "waiting_list"
        change_status(one.request, "accepted", actor=agent)
        assert one.status == "accepted" and one.decided_by_id == agent.id
        assert one.decided_at is not None
        two = db.session.get(Enrolment, second_id)
        family_cancel(two.request, actor=parent)
        assert two.status == "cancelled"
        db.session.commit()
    # The cancelled one freed the place: the child may ask again.
    enrol_now(app, account, second, offer, activity_ids=[], place=place)


def test_services_used_by_counts_enrolments(app, family):
    from citoyens.services.rules import services_used_by

    account, first, _ = family
    offer = make_offer(app)
    enrol_now(app, account, first, offer)
    with app.app_context():
        db.session.execute(text("UPDATE requests SET service_id = NULL"))
        assert [s.id for s in services_used_by(account.household_id)] == [offer.service_id]
        db.session.rollback()


# --- Pages ------------------------------------------------------------------------------------


def new_url(child_id=None, offer=None) -> str:
    params = []
    if child_id:
        params.append(f"enfant={child_id}")
    if offer:
        params += [f"service={offer.service_id}", f"annee={offer.year_id}"]
    return "/inscriptions/nouvelle" + ("?" + "&".join(params) if params else "")


def send_data(child_id, offer, activity_ids=None, **extra) -> dict:
    data = {
        "enfant": str(child_id),
        "service": str(offer.service_id),
        "annee": str(offer.year_id),
        "activities": [
            str(i) for i in (offer.activity_ids if activity_ids is None else activity_ids)
        ],
    }
    data.update(extra)
    return data


def test_parent_enrols_a_child_step_by_step(app, client, auth, family, outbox):
    account, first, _ = family
    doc_type = make_type(app, scope="child", label="Fiche sanitaire")
    offer = make_offer(app, name="Accueil périscolaire", document_type_ids=(doc_type,))
    auth.login(account)

    page = client.get("/inscriptions")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Nouvelle inscription" in body and 'href="/inscriptions/nouvelle"' in body
    assert "Inscriptions" in body  # in the navigation

    page = client.get("/inscriptions/nouvelle").get_data(as_text=True)
    assert 'name="enfant"' in page and "Accueil périscolaire" in page
    assert "Envoyer la demande" not in page
    # Without JavaScript: the GET form shows the rest.
    page = client.get(new_url(first, offer)).get_data(as_text=True)
    assert "remplit les conditions" in page
    assert "Fiche sanitaire d&#39;Enfant0 : manquant" in page
    # The missing document's upload form, in place (the documents endpoint).
    assert 'action="/mes-documents/envoyer"' in page
    assert f'name="type_id" value="{doc_type}"' in page
    assert f'name="person_id" value="{first}"' in page
    assert 'name="activities"' in page and "Envoyer la demande" in page

    # Sending is refused while the document is missing.
    response = post(client, "/inscriptions/nouvelle", send_data(first, offer))
    assert response.status_code == 422
    assert "Documents à fournir" in response.get_data(as_text=True)
    assert "Fiche sanitaire d&#39;Enfant0 (manquant)" in response.get_data(as_text=True)
    assert counts(app)["enrolments"] == 0

    make_document(app, household_id=account.household_id, type_id=doc_type, person_id=first)
    response = post(client, "/inscriptions/nouvelle", send_data(first, offer))
    assert response.status_code == 303
    [row] = enrolments_of(app, account.household_id)
    with app.app_context():
        enrolment_id = db.session.scalar(select(Enrolment.id))
    assert response.headers["Location"] == f"/inscriptions/{enrolment_id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "En attente de validation" in page and "est envoyée" in page
    assert f'href="/mes-demandes/{row[4]}"' in page
    # On the dashboard, as a request "Envoyée".
    dashboard = client.get("/tableau-de-bord")
    text_ = dashboard.get_data(as_text=True)
    assert "Inscription de Enfant0 Test" in text_ and "Envoyée" in text_
    assert any(m.subject == "Votre demande d'inscription est envoyée" for m in outbox)
    # The list shows it under the child, with its badge.
    listing = client.get("/inscriptions").get_data(as_text=True)
    assert "Accueil périscolaire" in listing and "En attente de validation" in listing
    # A second time: refused as a duplicate.
    response = post(client, "/inscriptions/nouvelle", send_data(first, offer))
    assert response.status_code == 422
    assert "a déjà une inscription" in response.get_data(as_text=True)
    assert counts(app)["enrolments"] == 1
    page = client.get(new_url(first, offer)).get_data(as_text=True)
    assert "Voir cette inscription" in page and "Envoyer la demande" not in page


def test_htmx_change_renders_only_the_next_section(app, client, auth, family):
    account, first, _ = family
    offer = make_offer(app)
    auth.login(account)
    response = client.get(new_url(first, offer), headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="inscription-suite"')
    assert "<html" not in body and "Conditions d'accès" in body
    assert "HX-Request" in response.headers["Vary"]
    # A boosted request (or the back button) gets the whole page.
    full = client.get(new_url(first, offer), headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in full.get_data(as_text=True)


def test_private_school_pupil_sees_the_ogec_contact(app, client, auth, family):
    account, first, _ = family
    school = make_private_school(app, contact="OGEC Saint-Joseph, ogec@example.org")
    update_child(app, first, school_id=school, class_level="CP")
    offer = make_offer(app, name="Restauration scolaire", excludes_private_school=True)
    auth.login(account)
    page = client.get(new_url(first, offer)).get_data(as_text=True)
    assert "gérée par l&#39;OGEC. Contact : OGEC Saint-Joseph, ogec@example.org." in page
    assert "Envoyer la demande" not in page
    response = post(client, "/inscriptions/nouvelle", send_data(first, offer))
    assert response.status_code == 422
    assert counts(app)["enrolments"] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"activities": []}, "Choisissez au moins une activité."),
    ],
)
def test_sending_without_activity_is_refused(app, client, auth, family, extra, message):
    account, first, _ = family
    offer = make_offer(app)
    auth.login(account)
    response = post(client, "/inscriptions/nouvelle", send_data(first, offer, **extra))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert counts(app)["enrolments"] == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"wished_start_on": ""}, "Indiquez la date d&#39;entrée souhaitée."),
        ({"wished_start_on": "hier"}, "Saisissez une date valide"),
        ({"wished_start_on": "2000-01-01"}, "ne peut pas être déjà passée"),
        ({"days_per_week": "0"}, "entre 1 et 5"),
        ({"days_per_week": "6"}, "entre 1 et 5"),
        ({"days_per_week": "deux"}, "Saisissez un nombre entier"),
        ({"hours_per_week": "56"}, "entre 1 et 55"),
        ({"hours_per_week": ""}, "Indiquez le nombre d&#39;heures"),
        ({"comments": "x" * 2001}, "2000 caractères"),
        ({"comments": "a\x00b"}, "caractères non autorisés"),
    ],
)
def test_place_request_bad_inputs(app, client, auth, family, fields, message):
    account, first, _ = family
    offer = make_offer(app, place_request=True, activities=0, category="petite-enfance")
    auth.login(account)
    data = send_data(first, offer, activity_ids=[])
    data.update(
        {"wished_start_on": TODAY.isoformat(), "days_per_week": "3", "hours_per_week": "20"}
    )
    data.update(fields)
    response = post(client, "/inscriptions/nouvelle", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert counts(app)["enrolments"] == 0


def test_place_request_through_the_form(app, client, auth, family, outbox):
    account, first, _ = family
    offer = make_offer(app, name="Multi-accueil", place_request=True, activities=0)
    auth.login(account)
    page = client.get(new_url(first, offer)).get_data(as_text=True)
    assert 'name="wished_start_on"' in page and 'type="date"' in page
    data = send_data(first, offer, activity_ids=[])
    data.update(
        {
            "wished_start_on": (TODAY + timedelta(days=30)).isoformat(),
            "days_per_week": "4",
            "hours_per_week": "32",
            "comments": "Plutôt le matin.",
        }
    )
    response = post(client, "/inscriptions/nouvelle", data)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "4 jours, 32 heures" in page and "Plutôt le matin." in page
    with app.app_context():
        assert db.session.scalar(select(Request.kind)) == "place_request"


def test_forged_ids_answer_404_and_save_nothing(app, client, auth, family):
    account, first, _ = family
    offer = make_offer(app)
    other = make_offer(app)
    inactive = make_offer(app, active=False)
    stranger = make_user(app, role="parent", children=1)
    [stranger_child] = children_of(app, stranger.household_id)
    auth.login(account)
    for url in (
        new_url(stranger_child, offer),
        new_url(first, inactive),
        "/inscriptions/nouvelle?enfant=abc",
        "/inscriptions/nouvelle?service=99999999999",
        "/inscriptions/nouvelle?annee=987654",
    ):
        assert client.get(url).status_code == 404, url
    for data in (
        send_data(stranger_child, offer),
        send_data(first, inactive),
        send_data(first, offer, activity_ids=other.activity_ids),
        send_data(first, offer, activity_ids=["x"]),
        {**send_data(first, offer), "enfant": "abc"},
        {**send_data(first, offer), "annee": "987654"},
        {k: v for k, v in send_data(first, offer).items() if k != "service"},
    ):
        assert post(client, "/inscriptions/nouvelle", data).status_code == 404, data
    # A child who left the household cannot be enrolled either.
    with app.app_context():
        membership = db.session.scalar(
            select(HouseholdMember).where(HouseholdMember.person_id == first)
        )
        membership.left_at = utcnow()
        db.session.commit()
    assert post(client, "/inscriptions/nouvelle", send_data(first, offer)).status_code == 404
    assert counts(app) == {"enrolments": 0, "enrolment_activities": 0, "requests": 0}


def test_parent_cannot_see_another_households_enrolment(app, client, auth, family):
    account, first, _ = family
    offer = make_offer(app)
    enrolment_id = enrol_now(app, account, first, offer)
    stranger = make_user(app, role="parent", children=1)
    auth.login(stranger)
    assert client.get(f"/inscriptions/{enrolment_id}").status_code == 404
    assert f"/inscriptions/{enrolment_id}" not in client.get("/inscriptions").get_data(as_text=True)
    auth.logout()
    auth.login(account)
    assert client.get(f"/inscriptions/{enrolment_id}").status_code == 200


def test_staff_and_anonymous_cannot_use_family_enrolment_pages(app, client, auth):
    for path in ("/inscriptions", "/inscriptions/nouvelle", "/inscriptions/1"):
        response = client.get(path)
        assert response.status_code in (302, 303) and "/connexion" in response.headers["Location"]
    auth.login(make_user(app, role="staff"))
    for path in ("/inscriptions", "/inscriptions/nouvelle", "/inscriptions/1"):
        assert client.get(path).status_code == 403
    response = client.post("/inscriptions/nouvelle", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 403


def test_sending_needs_the_csrf_token(app, client, auth, family):
    account, first, _ = family
    offer = make_offer(app)
    auth.login(account)
    response = client.post("/inscriptions/nouvelle", data=send_data(first, offer))
    assert response.status_code == 400
    response = client.post(
        "/inscriptions/nouvelle", data={**send_data(first, offer), "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert counts(app)["enrolments"] == 0


def test_pages_run_a_constant_number_of_queries(app, client, auth, family):
    account, first, second = family

    def queries_for(url: str) -> int:
        with app.app_context():
            engine = db.engine
        seen = []

        def count(*_args):
            seen.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    small_type = make_type(app, scope="child")
    small = make_offer(app, activities=1, document_type_ids=(small_type,))
    types = tuple(make_type(app, scope=s) for s in ("child", "household", "child", "household"))
    big = make_offer(app, activities=6, document_type_ids=types, year_id=small.year_id)
    auth.login(account)
    assert queries_for(new_url(first, small)) == queries_for(new_url(first, big))
    enrol_now(app, account, first, small, by_staff=True)
    one = queries_for("/inscriptions")
    enrol_now(app, account, second, small, by_staff=True)
    enrol_now(app, account, first, big, big.activity_ids, by_staff=True)
    assert queries_for("/inscriptions") == one


# --- Two parents press "Envoyer" at the same instant ----------------------------------------


@pytest.fixture
def race_app(tmp_path):
    with dedicated_app(tmp_path, "citoyens_enrol_concurrency") as app:
        yield app


@pytest.mark.own_database
def test_concurrent_enrolments_of_the_same_child_make_one(race_app):
    from sqlalchemy.exc import OperationalError

    from tests.enrolments_factories import Offer

    app = race_app
    with app.app_context():
        household = Household()
        child_ = Person(first_name="Léa", last_name="Martin", birth_date=date(2018, 1, 1))
        household.memberships.append(HouseholdMember(person=child_, role="child"))
        db.session.add(household)
        db.session.commit()
        household_id, child_id = household.id, child_.id
    offer = make_offer(app)
    assert isinstance(offer, Offer)

    threads_count = 4
    barrier = threading.Barrier(threads_count)
    outcomes: list[str] = []

    def attempt():
        with app.test_request_context():  # as in a view: the mail templates need a request
            barrier.wait()
            try:
                enrol(
                    household_id,
                    child_id,
                    offer.service_id,
                    offer.year_id,
                    offer.activity_ids,
                    actor=None,
                )
                db.session.commit()
                outcomes.append("enrolled")
            except EnrolmentError as error:
                db.session.rollback()
                assert "a déjà une inscription" in error.problems[0], error.problems
                outcomes.append("duplicate")
            except OperationalError:  # SQLite: "database is locked" for a stale reader
                db.session.rollback()
                outcomes.append("busy")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == threads_count
    assert outcomes.count("enrolled") == 1, outcomes
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM enrolments")) == 1
        assert db.session.scalar(text("SELECT count(*) FROM requests")) == 1
        assert db.session.scalar(text("SELECT count(*) FROM enrolment_activities")) == len(
            offer.activity_ids
        )
        # One family mail and one service mail, recorded.
        assert db.session.scalar(select(func.count()).select_from(MailMessage)) == 1
    if (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgres"):
        assert sorted(outcomes) == ["duplicate"] * (threads_count - 1) + ["enrolled"]


def test_a_document_sent_from_the_enrolment_form_comes_back_to_it(app, client, auth, parent):
    """Without JavaScript the upload returns to the page it was sent from."""
    from tests.conftest import post as post_form
    from tests.documents_factories import make_type, png

    type_id = make_type(app, scope="household")
    auth.login(parent)
    back = "/inscriptions/nouvelle?enfant=1&service=2&annee=3"
    response = post_form(
        client,
        "/mes-documents/envoyer",
        {"type_id": type_id, "next": back, "file": (io.BytesIO(png()), "a.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303 and response.headers["Location"] == back
    evil = post_form(
        client,
        "/mes-documents/envoyer",
        {"type_id": type_id, "next": "https://evil.example", "file": (io.BytesIO(png()), "b.png")},
        content_type="multipart/form-data",
    )
    assert evil.headers["Location"].startswith("/mes-documents")
