"""Messages from staff to families (issue 14): who receives them, what is refused, the
e-mails queued once per adult, the family's « Messages » page and its read tracking, the
links from closures and day pages, and the staff home's « Réponses des familles ».

Every test goes through HTTP, as staff and families do; jobs run at once in tests.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from citoyens.core.models import AuditEvent
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.messages import tasks
from citoyens.messages.models import Message, MessageRecipient
from citoyens.reservations.models import Closure
from tests.conftest import counted_queries, post
from tests.factories import make_user
from tests.messages_factories import (
    count,
    fields,
    mails,
    make_message,
    make_scene,
    messages,
    preview,
    recipients,
    send,
)
from tests.requests_factories import make_request
from tests.reservations_factories import text_of
from tests.test_access import login_client


@pytest.fixture
def scene(app):
    return make_scene(app)


def households(*accounts) -> set[int]:
    return {account.household_id for account in accounts}


def last_message(app) -> Message:
    return messages(app)[-1]


# --- Who receives it ---------------------------------------------------------------------------


def test_a_service_message_goes_to_the_families_with_an_accepted_enrolment(app, scene):
    client = login_client(app, scene.agent)
    response = send(client, fields("service", service_id=scene.service_a))
    assert response.status_code == 303
    message = last_message(app)
    assert response.headers["Location"] == f"/admin/messages/{message.id}"
    # Pending, another service's and last year's families are left out.
    expected = households(scene.enrolled, scene.waiting, scene.other_activity)
    assert recipients(app, message.id) == expected
    assert (message.recipient_count, message.status, message.audience) == (3, "sent", "service")
    assert message.service_id == scene.service_a and message.activity_id is None
    page = text_of(login_client(app, scene.agent).get(response.headers["Location"]))
    assert "Familles 3" in page and "E-mails 4 envoyés" in page and "Lu par 0 famille sur 3" in page


def test_an_activity_message_goes_to_the_families_enrolled_in_that_activity(app, scene):
    client = login_client(app, scene.agent)
    assert send(client, fields("activity", activity_id=scene.activity_1)).status_code == 303
    message = last_message(app)
    assert recipients(app, message.id) == households(scene.enrolled, scene.waiting)
    assert (message.activity_id, message.service_id) == (scene.activity_1, scene.service_a)


def test_a_day_message_goes_to_the_families_expected_that_day_not_cancelled_ones(app, scene):
    client = login_client(app, scene.agent)
    data = fields("day", activity_id=scene.activity_1, day=scene.day_date.isoformat())
    page = text_of(preview(client, data))
    # 2 families: 5 adults (3 + 2), 3 addresses (one typed twice, one adult without any).
    assert "2 familles · 5 responsables · 3 e-mails à envoyer" in page
    assert send(client, data).status_code == 303
    message = last_message(app)
    assert recipients(app, message.id) == households(scene.enrolled, scene.waiting)
    assert message.activity_day_id == scene.day and message.audience == "day"
    assert scene.day_date.strftime("%Y") in message.audience_label


def test_each_adult_with_an_address_gets_one_email_from_the_service(app, scene):
    client = login_client(app, scene.agent)
    send(client, fields("activity", activity_id=scene.activity_1, subject="Sortie au parc"))
    sent = mails(app)
    addresses = [row.recipient.lower() for row in sent]
    assert sorted(addresses) == sorted(
        [scene.enrolled.email, "second.adulte@example.org", scene.waiting.email]
    )
    assert {row.subject for row in sent} == {"Sortie au parc"}
    with app.app_context():
        from citoyens.services.models import Service

        mailbox = db.session.get(Service, scene.service_a).mailbox
    assert {row.reply_to for row in sent} == {mailbox}
    message = last_message(app)
    assert message.email_count == 3 and message.sent_at is not None


def test_the_job_run_again_emails_nobody_twice(app, scene):
    client = login_client(app, scene.agent)
    send(client, fields("service", service_id=scene.service_a))
    message_id = last_message(app).id
    before = mails(app)
    assert len(before) == 4
    with app.app_context():
        tasks.email_message(message_id)  # the queue delivers it a second time
        assert tasks.email_recipients(message_id) == 0
    assert mails(app) == before
    assert last_message(app).email_count == 4


def test_a_message_whose_job_was_lost_is_emailed_by_the_sweeper(app, scene, monkeypatch):
    from citoyens import jobs

    monkeypatch.setattr(jobs, "enqueue_after_commit", lambda job, *args: None)  # queue down
    send(login_client(app, scene.agent), fields("activity", activity_id=scene.activity_1))
    monkeypatch.undo()
    message = last_message(app)
    assert message.status == "queued" and mails(app) == []
    with app.app_context():
        assert tasks.lost_messages() == []  # not lost yet: its job may still be coming
        db.session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(created_at=utcnow() - timedelta(minutes=11))
        )
        db.session.commit()
        assert tasks.lost_messages() == [message.id]
        tasks.requeue_lost_messages()
    assert len(mails(app)) == 3 and last_message(app).status == "sent"


def test_double_click_on_send_sends_one_message(app, scene):
    client = login_client(app, scene.agent)
    data = fields("service", service_id=scene.service_a)
    token = re.search(r'name="send_token" value="([^"]+)"', text_of_raw(preview(client, data)))
    body = {**data, "send_token": token.group(1), "send": "y"}
    first = post(client, "/admin/messages/nouveau", body)
    second = post(client, "/admin/messages/nouveau", body)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(app, Message) == 1 and len(mails(app)) == 4


def text_of_raw(response) -> str:
    return response.get_data(as_text=True)


def test_send_without_a_preview_shows_the_preview_first(app, scene):
    client = login_client(app, scene.agent)
    data = {**fields("service", service_id=scene.service_a), "send": "y"}
    response = post(client, "/admin/messages/nouveau", data)
    assert response.status_code == 200 and "Aperçu du message" in text_of(response)
    assert count(app, Message) == 0


def test_sending_is_audited(app, scene):
    send(login_client(app, scene.agent), fields("service", service_id=scene.service_a))
    message_id = last_message(app).id
    with app.app_context():
        actions = dict(
            db.session.execute(
                select(AuditEvent.action, AuditEvent.actor_id).where(
                    AuditEvent.target == f"message:{message_id}"
                )
            ).all()
        )
    assert actions == {"message.sent": scene.agent.id, "message.emailed": None}


# --- Bad input -------------------------------------------------------------------------------


BAD = [
    ({"subject": ""}, "L'objet est obligatoire."),
    ({"subject": "   "}, "L'objet est obligatoire."),
    ({"body": ""}, "Le message est obligatoire."),
    ({"subject": "x" * 151}, "L'objet ne peut pas dépasser 150 caractères."),
    ({"body": "x" * 5001}, "Le message ne peut pas dépasser 5000 caractères."),
    ({"body": "Bonjour\x07"}, "Le message contient des caractères non autorisés."),
    ({"subject": "Objet\nsur deux lignes"}, "L'objet contient des caractères non autorisés."),
    ({"audience": "tous"}, "Choisissez à qui envoyer le message."),
    ({"service_id": ""}, "Choisissez un de vos services dans la liste."),
    ({"service_id": "abc"}, "Choisissez un de vos services dans la liste."),
    ({"service_id": "99999999999999999999"}, "Choisissez un de vos services dans la liste."),
    ({"audience": "activity", "activity_id": "999999"}, "Choisissez une activité de vos"),
    ({"audience": "activity", "activity_id": ""}, "Choisissez une activité de vos"),
    ({"audience": "day", "activity_id": "ACT1"}, "Indiquez le jour"),
    ({"audience": "day", "activity_id": "ACT1", "day": "31/02/2031"}, "Saisissez une date"),
    ({"audience": "day", "activity_id": "ACT1", "day": "2030-09-07"}, "n'a pas de jour"),
]


@pytest.mark.parametrize("change, error", BAD)
def test_bad_input_is_refused_in_french_and_nothing_is_saved(app, scene, change, error):
    data = fields("service", service_id=scene.service_a)
    data.update({k: v.replace("ACT1", str(scene.activity_1)) for k, v in change.items()})
    client = login_client(app, scene.agent)
    for step in ("preview", "send"):
        response = post(client, "/admin/messages/nouveau", {**data, step: "y", "send_token": "t"})
        assert response.status_code == 422, step
        assert error in text_of(response), step
    assert count(app, Message) == count(app, MessageRecipient) == 0
    assert mails(app) == []


fuzz_text = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=1, max_size=3).map(lambda s: s * 2000),
    st.sampled_from(["\x00", "2030-09-02", "02/09/2030", "0001-01-01", "9999-12-31", "-1", "1"]),
    st.sampled_from(["service", "activity", "day", "y", "a" * 24, "a" * 65]),
    st.integers().map(str),
)


FIELDS = ("audience", "service_id", "activity_id", "day", "subject", "body")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    data=st.fixed_dictionaries(
        dict.fromkeys(FIELDS, fuzz_text),
        optional=dict.fromkeys(("send_token", "send", "preview", "edit"), fuzz_text),
    )
)
def test_random_message_forms_never_fail(app, scene, data):
    client = login_client(app, scene.admin)
    response = post(client, "/admin/messages/nouveau", data)
    assert response.status_code in (200, 303, 422), response.status_code


def test_a_field_the_audience_does_not_use_is_ignored(app, scene):
    """Sending to a service with a stray activity (left in the form) is no error."""
    data = fields("service", service_id=scene.service_a, activity_id="garbage", day="x")
    assert send(login_client(app, scene.agent), data).status_code == 303


def test_nobody_to_tell_is_said_and_nothing_is_sent(app, scene):
    client = login_client(app, scene.agent)
    data = fields("activity", activity_id=scene.activity_2)
    with app.app_context():  # the only family of activity 2 leaves
        from citoyens.enrolments.models import Enrolment

        db.session.execute(
            update(Enrolment)
            .where(Enrolment.household_id == scene.other_activity.household_id)
            .values(status="ended")
        )
        db.session.commit()
    page = preview(client, data)
    assert "Aucune famille ne recevrait ce message" in text_of(page)
    assert 'name="send"' not in text_of_raw(page)
    token = "t" * 24  # the preview's, had the family left between the preview and the click
    response = post(client, "/admin/messages/nouveau", {**data, "send_token": token, "send": "y"})
    assert response.status_code == 422 and "Aucune famille" in text_of(response)
    assert count(app, Message) == 0


# --- Scope -------------------------------------------------------------------------------------


def test_an_agent_cannot_message_another_services_families(app, scene):
    client = login_client(app, scene.agent)
    for data in (
        fields("service", service_id=scene.service_b),
        fields("activity", activity_id=scene.activity_b),
        fields("day", activity_id=scene.activity_b, day=scene.day_date.isoformat()),
    ):
        response = send_attempt(client, data)
        assert response.status_code == 422
        assert "de vos services dans la liste" in text_of(response)
    assert count(app, Message) == 0
    # Another service's day or closure as a draft: 404, and the denial is kept.
    assert client.get(f"/admin/messages/nouveau?jour={scene.day_b}").status_code == 404
    with app.app_context():
        closure = Closure(
            service_id=scene.service_b,
            starts_on=scene.day_date,
            ends_on=scene.day_date,
            reason="Grève",
        )
        db.session.add(closure)
        db.session.commit()
        closure_id = closure.id
    assert client.get(f"/admin/messages/nouveau?fermeture={closure_id}").status_code == 404
    with app.app_context():
        targets = set(
            db.session.scalars(
                select(AuditEvent.target).where(AuditEvent.action == "access.denied")
            )
        )
    assert {f"activity_day:{scene.day_b}", f"closure:{closure_id}"} <= targets
    assert client.get("/admin/messages/nouveau?jour=abc").status_code == 404
    assert client.get("/admin/messages/nouveau?fermeture=999999").status_code == 404


def send_attempt(client, data):
    return post(client, "/admin/messages/nouveau", {**data, "send_token": "t", "send": "y"})


def test_an_administrator_may_message_any_service(app, scene):
    client = login_client(app, scene.admin)
    assert send(client, fields("service", service_id=scene.service_b)).status_code == 303
    assert recipients(app, last_message(app).id) == households(scene.family_b)


def test_an_agent_with_no_service_cannot_send(app, scene):
    loner = make_user(app, role="staff")
    client = login_client(app, loner)
    page = client.get("/admin/messages/nouveau")
    assert page.status_code == 200 and "aucun service" in text_of(page)
    data = fields("service", service_id=scene.service_a)
    assert preview(client, data).status_code == 403
    assert count(app, Message) == 0


def test_staff_see_their_services_messages_only(app, scene):
    mine = make_message(app, scene.service_a, [scene.enrolled.household_id], subject="Alpha info")
    theirs = make_message(app, scene.service_b, [scene.family_b.household_id], subject="Bêta info")
    agent = login_client(app, scene.agent)
    listing = text_of(agent.get("/admin/messages"))
    assert "Alpha info" in listing and "Bêta info" not in listing
    assert agent.get(f"/admin/messages/{mine}").status_code == 200
    assert agent.get(f"/admin/messages/{theirs}").status_code == 404
    assert agent.get("/admin/messages/99999999999").status_code == 404
    admin = login_client(app, scene.admin)
    listing = text_of(admin.get("/admin/messages"))
    assert "Alpha info" in listing and "Bêta info" in listing
    assert admin.get(f"/admin/messages/{theirs}").status_code == 200


def test_parents_get_403_on_the_staff_pages(app, scene):
    client = login_client(app, scene.enrolled)
    assert client.get("/admin/messages").status_code == 403
    assert client.get("/admin/messages/nouveau").status_code == 403
    assert preview(client, fields("service", service_id=scene.service_a)).status_code == 403


# --- The family's « Messages » -------------------------------------------------------------------


def test_the_family_reads_its_message_and_the_counter_follows(app, scene):
    send(login_client(app, scene.agent), fields("service", service_id=scene.service_a))
    message_id = last_message(app).id
    client = login_client(app, scene.enrolled)
    dashboard = client.get("/tableau-de-bord").get_data(as_text=True)
    assert "1 message non lu" in dashboard
    assert re.search(r'id="messages-non-lus"> <span class="msg-count">1<', dashboard)
    listing = text_of(client.get("/mes-messages"))
    assert "Non lu : Fermeture le 12 mars" in listing and "Nouveau" in listing
    # Opening it is a GET: it shows the message, changes nothing, and posts the read receipt.
    page = client.get(f"/mes-messages/{message_id}")
    assert "Bonjour,\nFermé." in page.get_data(as_text=True)
    assert f'data-hx-post="/mes-messages/{message_id}/lu"' in page.get_data(as_text=True)
    assert read_at(app, message_id, scene.enrolled.household_id) is None
    response = post(
        client,
        f"/mes-messages/{message_id}/lu",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert (
        "Lu le" in fragment and 'id="messages-non-lus" data-hx-swap-oob="true"></span>' in fragment
    )
    first = read_at(app, message_id, scene.enrolled.household_id)
    assert first is not None
    # Again (another tab): the first reading stays.
    assert post(client, f"/mes-messages/{message_id}/lu").status_code == 303
    assert read_at(app, message_id, scene.enrolled.household_id) == first
    assert "message non lu" not in client.get("/tableau-de-bord").get_data(as_text=True)
    assert "Non lu" not in text_of(client.get("/mes-messages"))
    # The other families still have it unread; staff see one reading.
    assert read_at(app, message_id, scene.waiting.household_id) is None
    staff_page = text_of(login_client(app, scene.agent).get(f"/admin/messages/{message_id}"))
    assert "Lu par 1 famille sur 3" in staff_page
    listing = text_of(login_client(app, scene.agent).get("/admin/messages"))
    assert "1 famille" in listing


def read_at(app, message_id: int, household_id: int):
    with app.app_context():
        return db.session.scalar(
            select(MessageRecipient.read_at).where(
                MessageRecipient.message_id == message_id,
                MessageRecipient.household_id == household_id,
            )
        )


def test_another_households_message_is_a_404(app, scene):
    theirs = make_message(app, scene.service_b, [scene.family_b.household_id])
    client = login_client(app, scene.enrolled)
    assert client.get(f"/mes-messages/{theirs}").status_code == 404
    assert post(client, f"/mes-messages/{theirs}/lu").status_code == 404
    assert client.get("/mes-messages/99999999999").status_code == 404
    assert read_at(app, theirs, scene.family_b.household_id) is None
    assert "Info" not in text_of(client.get("/mes-messages"))


def test_mark_all_read(app, scene):
    household = scene.enrolled.household_id
    ids = [make_message(app, scene.service_a, [household]) for _ in range(3)]
    other = make_message(app, scene.service_a, [scene.waiting.household_id])
    client = login_client(app, scene.enrolled)
    assert "3 messages non lus" in text_of(client.get("/mes-messages"))
    response = post(client, "/mes-messages/lu")
    assert response.status_code == 303 and response.headers["Location"] == "/mes-messages"
    assert all(read_at(app, message_id, household) for message_id in ids)
    assert read_at(app, other, scene.waiting.household_id) is None
    assert "3 messages marqués comme lus." in text_of(client.get("/mes-messages"))


def test_the_messages_page_is_paginated_newest_first_in_constant_queries(app, scene):
    household = scene.enrolled.household_id
    client = login_client(app, scene.enrolled)

    def queries() -> int:
        client.get("/mes-messages")  # warm-up
        with counted_queries(app) as statements:
            assert client.get("/mes-messages").status_code == 200
        return len(statements)

    make_message(app, scene.service_a, [household], subject="Message n° 0")
    few = queries()
    for n in range(1, 25):
        make_message(app, scene.service_a, [household], subject=f"Message n° {n}")
    assert queries() == few
    first = text_of(client.get("/mes-messages"))
    assert "Message n° 24" in first and "Message n° 5 " in first and "Message n° 4 " not in first
    assert first.index("Message n° 24") < first.index("Message n° 23")
    assert "Page 1 sur 2" in first
    second = text_of(client.get("/mes-messages?page=2"))
    assert "Message n° 4 " in second and "Message n° 24" not in second
    assert client.get("/mes-messages?page=abc").status_code == 200
    assert client.get("/mes-messages?page=99999999999999").status_code == 200


def test_the_email_links_to_the_message_when_the_site_address_is_known(app, scene, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://famille.example.org")
    send(login_client(app, scene.agent), fields("activity", activity_id=scene.activity_1))
    message_id = last_message(app).id
    with app.app_context():
        from citoyens.core.models import MailMessage

        body = db.session.scalar(
            select(MailMessage.body_text).where(MailMessage.kind == "family-message").limit(1)
        )
    assert f"https://famille.example.org/mes-messages/{message_id}" in body
    assert "Bonjour,\nFermé." in body


# --- From closures and day pages ----------------------------------------------------------------


def test_a_new_closure_offers_to_tell_the_families(app, scene):
    client = login_client(app, scene.agent)
    response = post(
        client,
        "/admin/calendrier/fermetures",
        {
            "service_id": str(scene.service_a),
            "activity_id": str(scene.activity_1),
            "starts_on": "2031-03-12",
            "reason": "Formation du personnel",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        closure_id = db.session.scalar(select(Closure.id).order_by(Closure.id.desc()).limit(1))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"/admin/messages/nouveau?fermeture={closure_id}" in page
    draft = client.get(f"/admin/messages/nouveau?fermeture={closure_id}")
    form = draft.get_data(as_text=True)
    assert draft.status_code == 200
    assert checked_audience(form) == "activity"
    assert re.search(rf'<option selected value="{scene.activity_1}">', form)
    assert "Formation du personnel" in form and "mercredi 12 mars 2031" in form
    assert count(app, Message) == 0  # a draft, nothing sent


CHECKED = re.compile(r'<input checked id="audience-\d" name="audience" type="radio" value="(\w+)"')


def checked_audience(form: str) -> str:
    return CHECKED.search(form)[1]


def test_a_days_page_offers_to_tell_its_families(app, scene):
    client = login_client(app, scene.agent)
    page = client.get(f"/admin/reservations/jour/{scene.day}").get_data(as_text=True)
    assert f"/admin/messages/nouveau?jour={scene.day}" in page
    form = client.get(f"/admin/messages/nouveau?jour={scene.day}").get_data(as_text=True)
    assert checked_audience(form) == "day"
    assert f'value="{scene.day_date.isoformat()}"' in form


# --- The staff home: families' replies -----------------------------------------------------------


def reply(app, request_id: int, account, body: str) -> None:
    with app.app_context():
        from citoyens.accounts.models import User
        from citoyens.requests.models import Request
        from citoyens.requests.operations import add_message

        add_message(
            db.session.get(Request, request_id), body, actor=db.session.get(User, account.id)
        )
        db.session.commit()


def staff_answer(app, request_id: int, account, *, internal: bool = False) -> None:
    with app.app_context():
        from citoyens.accounts.models import User
        from citoyens.requests.models import Request
        from citoyens.requests.operations import add_message

        add_message(
            db.session.get(Request, request_id),
            "Réponse du service",
            actor=db.session.get(User, account.id),
            internal=internal,
        )
        db.session.commit()


def replies_panel(response) -> str:
    page = response.get_data(as_text=True)
    match = re.search(r'<section aria-labelledby="reponses".*?</section>', page, re.S)
    return text_of_html(match.group(0))


def text_of_html(html_text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html_text))


def test_the_staff_home_shows_the_families_unanswered_replies_in_scope(app, scene):
    household_a, household_b = scene.enrolled.household_id, scene.family_b.household_id
    in_a = make_request(app, household_a, kind="place_request", service_id=scene.service_a)
    answered = make_request(app, household_a, kind="place_request", service_id=scene.service_a)
    noted = make_request(app, household_a, kind="place_request", service_id=scene.service_a)
    in_b = make_request(app, household_b, kind="place_request", service_id=scene.service_b)
    general = make_request(app, household_a)  # no service: administrators only
    reply(app, in_a, scene.enrolled, "Question sur la place")
    reply(app, answered, scene.enrolled, "Déjà répondu")
    staff_answer(app, answered, scene.agent)
    reply(app, noted, scene.enrolled, "Seulement une note après")
    staff_answer(app, noted, scene.agent, internal=True)
    reply(app, in_b, scene.family_b, "Question à Bêta")
    reply(app, general, scene.enrolled, "Question générale")

    panel = replies_panel(login_client(app, scene.agent).get("/admin/"))
    assert "Question sur la place" in panel and "Seulement une note après" in panel
    assert "Déjà répondu" not in panel and "Question à Bêta" not in panel
    assert "Question générale" not in panel
    assert panel.index("Seulement une note après") < panel.index("Question sur la place")
    page = login_client(app, scene.agent).get("/admin/").get_data(as_text=True)
    assert f"/admin/demandes/{in_a}" in page and f"/admin/demandes/{in_b}" not in page

    admin_panel = replies_panel(login_client(app, scene.admin).get("/admin/"))
    assert "Question à Bêta" in admin_panel and "Question générale" in admin_panel
    assert "Déjà répondu" not in admin_panel

    loner = login_client(app, make_user(app, role="staff"))
    assert "Aucune réponse de famille en attente" in replies_panel(loner.get("/admin/"))


def test_the_replies_panel_runs_a_fixed_number_of_queries(app, scene):
    client = login_client(app, scene.agent)

    def add_reply(n: int) -> None:
        request_id = make_request(
            app, scene.enrolled.household_id, kind="place_request", service_id=scene.service_a
        )
        reply(app, request_id, scene.enrolled, f"Réponse {n}")

    def queries() -> int:
        client.get("/admin/")
        with counted_queries(app) as statements:
            assert client.get("/admin/").status_code == 200
        return len(statements)

    add_reply(0)
    one = queries()
    for n in range(1, 12):
        add_reply(n)
    assert queries() == one
    panel = replies_panel(client.get("/admin/"))
    assert "les 8 plus récentes sur 12" in panel and "Réponse 11" in panel
    assert "Réponse 3" not in panel


# --- Demo ---------------------------------------------------------------------------------------


def test_the_demo_has_a_message_to_read_and_a_family_reply_to_answer(app, client, auth):
    from citoyens.demo import ADMIN, AGENT, PARENT, seed

    with app.test_request_context():
        seed()
        db.session.commit()
        assert seed() == 0  # seeding again adds nothing
        db.session.commit()
    auth.login(email=PARENT[0], password=PARENT[1])
    listing = text_of(client.get("/mes-messages"))
    assert "Non lu : Vacances" in listing and "l'accueil périscolaire est fermé" in listing
    assert "1 message non lu" in text_of(client.get("/tableau-de-bord"))
    assert len([m for m in mails(app) if m.recipient == PARENT[0]]) == 1
    auth.logout()
    auth.login(email=ADMIN[0], password=ADMIN[1])
    assert "Faut-il aussi vous envoyer celle de Léa" in replies_panel(client.get("/admin/"))
    auth.logout()
    auth.login(email=AGENT[0], password=AGENT[1])  # the document review is the admins'
    assert "Léa" not in replies_panel(client.get("/admin/"))
    assert "l'accueil périscolaire est fermé" in text_of(client.get("/admin/messages"))
