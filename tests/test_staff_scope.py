"""What each staff member sees and does (DOMAIN.md "Staff and scope", issue 13).

An agent sees and acts on a family only while it has a live enrolment or an open request
in one of the agent's services; health documents only for children enrolled there; an
agent with no service sees no family; administrators see all. A request tied to no
service goes to administrators. Enrolling on a family's behalf is never a way in.

`test_every_admin_route_is_scoped` walks every /admin route of the url_map: each must be
classified below (a route added later and not classified fails the test, naming it).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.requests.models import Request
from citoyens.services import scope
from tests.conftest import counted_queries, csrf_token, post
from tests.documents_factories import add_child, make_type
from tests.exports_factories import export_form, ready_file
from tests.scope_factories import Family, World, make_world, stored
from tests.test_access import all_rules, login_client, request_as_page, sample_path

# --- How each /admin route is checked ---------------------------------------------------------

# Settings and money actions: administrators only (403 for every agent).
ADMIN_ONLY = {
    "admin.schools",
    "admin.schools_new",
    "admin.schools_edit",
    "admin.schools_toggle",
    "admin.services",
    "admin.services_new",
    "admin.services_show",
    "admin.services_edit",
    "admin.services_window",
    "admin.activities_new",
    "admin.activities_edit",
    "admin.activities_toggle",
    "admin.exclusion_sets_new",
    "admin.exclusion_sets_delete",
    "admin.school_years",
    "admin.school_years_new",
    "admin.school_years_edit",
    "admin.tariffs_band_new",
    "admin.tariffs_band_edit",
    "admin.tariffs_prices",
    "admin.tariffs_surcharge",
    "admin.holidays_create",
    "admin.holidays_edit",
    "admin.holidays_delete",
    "admin.calendar_seed",
    "admin.calendar_generate",
    "admin.billing_issue",
    "admin.billing_credit_note",
    "admin.credit_refund",
    "admin.credit_reviewed",
    "admin.counter_reverse",
    "admin.direct_debits_export",
    "admin.direct_debit_batch_xml",
    "admin.direct_debit_reject",
    "admin.outbox",
    "admin.outbox_resend",
    "admin.household_quotient",
    "admin.staff_accounts",
    "admin.staff_accounts_new",
    "admin.staff_accounts_edit",
    "admin.staff_accounts_activation",
    "admin.staff_accounts_send_link",
    "admin.families_import",
    "admin.families_import_upload",
    "admin.families_import_confirm",
    "admin.families_welcome",
    "admin.families_welcome_status",
    "admin.audit_log",
    "admin.audit_log_csv",
    "admin.settings",
    # The month's accounting export names every family.
    "admin.accounting",
    "admin.accounting_export",
}

# Pages listing families' data (no URL parameter): an agent sees only their families'.
LISTS = {
    "admin.index",
    "admin.households",
    "admin.documents",
    "admin.requests",
    "admin.enrolments",
    "admin.invoices",
    "admin.overpayments",
    "admin.counter_receipts",
    "admin.reservations",
    "admin.enrolment_new",
    "admin.exports",
    "admin.unpaid",
    "admin.messages",  # the messages of the agent's services
}
# Lists that show the families' data: each must show it to those who may see it.
SHOWING_FAMILIES = {
    "admin.households",
    "admin.documents",
    "admin.requests",
    "admin.enrolments",
    "admin.invoices",
    "admin.counter_receipts",
    "admin.unpaid",
}
# Lists whose body is a file (no family marker to look for in the text; the exports' scope is
# checked in tests/test_accounting_export.py and tests/test_reminders.py).
FILE_LISTS = {
    "admin.invoices_paper_pdf",
    "admin.invoices_export",
    "admin.payments_export",
    "admin.unpaid_export",
}

# One family's objects: the parameters are filled with a family's ids (`World.params`).
FAMILY = {
    "admin.household",
    "admin.household_reservations",
    "admin.household_reservation_change",
    "admin.household_credit",
    "admin.invoice",
    "admin.invoice_pdf",
    "admin.household_invoices",
    "admin.counter_new",
    "admin.counter_receipt",
    "admin.counter_receipt_pdf",
    "admin.documents_show",
    "admin.documents_file",
    "admin.documents_preview",
    "admin.documents_review",
    "admin.request",
    "admin.request_message",
    "admin.request_status",
    "admin.enrolment",
    "admin.enrolment_decision",
    "admin.enrolment_activities",
    "admin.enrolment_end",
    "admin.enrolment_school",
    "admin.household_edit",
    "admin.household_member_new",
    "admin.household_member_edit",
}

# One service's objects (an activity day, a booking, a closure): another service's → 404.
SERVICE = {
    "admin.reservation_day",
    "admin.reservation_day_csv",
    "admin.reservation_day_pdf",
    "admin.reservation_capacity",
    "admin.reservation_attendance",
    "admin.reservation_walk_in",
    "admin.closures_delete",
    "admin.message",  # a message to the families of a service
}

# Shared by all staff, holding no family's data (read-only for agents where it is money).
SHARED = {
    # A family at the counter: any staff member may create one (then enrol it).
    "admin.household_new",
    "admin.calendar",
    "admin.closures",
    # The form to write to families: choices and drafts only from the agent's services.
    "admin.message_new",
    "admin.tariffs",
    "admin.billing_run",
    "admin.billing_run_status",
    "admin.direct_debits",
    "admin.documents_types",
    "admin.documents_type_new",
    "admin.documents_type_edit",
    "admin.documents_type_active",
}

# Forms naming a service in their body (exports): another service's → 404.
SERVICE_FORMS = {"admin.exports_attendance", "admin.exports_families"}

# Files a staff member asked for (exports built by the worker): anyone else → 404, even an
# administrator.
OWN = {"admin.export_file", "admin.export_file_download"}

CLASSES = (ADMIN_ONLY, LISTS, FILE_LISTS, FAMILY, SERVICE, SHARED, SERVICE_FORMS, OWN)
DENIED = (403, 404)


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")


@pytest.fixture
def world(app) -> World:
    return make_world(app)


# --- Every /admin route -----------------------------------------------------------------------


def path_for(app, rule, values: dict[str, int]) -> str:
    missing = set(rule.arguments) - set(values)
    assert not missing, f"{rule.endpoint}: no value for {sorted(missing)} in the test world"
    return rule.build({name: values[name] for name in rule.arguments})[1]


def family_path(app, rule, family: Family) -> str:
    if rule.endpoint == "admin.enrolment_new":
        return f"/admin/inscriptions/nouvelle?foyer={family.household}"
    return path_for(app, rule, family.params())


def service_path(app, rule, world: World, mine: bool) -> str:
    family = world.a if mine else world.b
    values = {
        "activity_day_id": family.day,
        "booking_id": family.booking,
        "closure_id": world.closure_a if mine else world.closure_b,
        "message_id": world.message_a if mine else world.message_b,
    }
    return path_for(app, rule, values)


def allowed(response) -> bool:
    return response.status_code not in DENIED and response.status_code < 500


def check_rule(app, rule, world, clients) -> list[str]:
    """What is wrong with this route for the agent of A, the agent with no service and the
    administrator (an empty list when all is right)."""
    problems = []
    name = rule.endpoint

    def expect(who, path, ok: bool, exact_get: bool = True):
        response = request_as_page(clients[who], rule, path)
        status = response.status_code
        if ok:
            want = 200 if rule.methods >= {"GET"} and exact_get else None
            if (want and status != want) or not allowed(response):
                problems.append(f"{name} {path}: {who} got {status}, expected it allowed")
        elif status not in DENIED:
            problems.append(f"{name} {path}: {who} got {status}, expected 404 (or 403)")
        return response

    if name in ADMIN_ONLY:
        path = sample_path(app, rule)
        for who in ("agent", "loner"):
            status = request_as_page(clients[who], rule, path).status_code
            if status != 403:
                problems.append(f"{name}: {who} got {status}, expected 403 (administrators only)")
        if request_as_page(clients["admin"], rule, path).status_code == 403:
            problems.append(f"{name}: the administrator got 403")
    elif name in LISTS or name in FILE_LISTS:
        path = sample_path(app, rule)
        if name == "admin.enrolment_new":
            path += "?q=famille"
        texts = {}
        for who, hidden in (("agent", world.b), ("loner", world.a), ("loner", world.b)):
            texts[who] = expect(who, path, True).get_data().decode(errors="replace")
            shown = [m for m in hidden.markers() if m in texts[who]] if name in LISTS else []
            if shown:
                problems.append(f"{name}: {who} sees {shown} of a family outside their services")
        texts["admin"] = expect("admin", path, True).get_data().decode(errors="replace")
        # Not empty by mistake: the agent sees their family, the administrator every one.
        for who, family in (("agent", world.a), ("admin", world.a), ("admin", world.b)):
            if name in SHOWING_FAMILIES and not any(m in texts[who] for m in family.markers()):
                problems.append(f"{name}: {who} does not see family {family.name}")
    elif name in FAMILY:
        # Denials first, then the allowed ones (a POST may change what it acts on).
        for family in (world.a, world.b):
            expect("loner", family_path(app, rule, family), False)
        expect("agent", family_path(app, rule, world.b), False)
        expect("admin", family_path(app, rule, world.b), True)
        expect("agent", family_path(app, rule, world.a), True)
        expect("admin", family_path(app, rule, world.a), True)
    elif name in SERVICE:
        for mine in (True, False):
            expect("loner", service_path(app, rule, world, mine), False)
        expect("agent", service_path(app, rule, world, False), False)
        expect("admin", service_path(app, rule, world, False), True, exact_get=False)
        expect("agent", service_path(app, rule, world, True), True, exact_get=False)
    elif name in SERVICE_FORMS:
        with app.app_context():
            year = db.session.get(Enrolment, world.a.enrolment).school_year_id

        def submit(who, service_id):
            client = clients[who]
            data = {**export_form(name, service_id, year), "csrf_token": csrf_token(client)}
            return client.post(path_for(app, rule, {}), data=data).status_code

        for who, service_id, ok in (
            ("agent", world.service_b, False),
            ("loner", world.service_a, False),
            ("agent", world.service_a, True),
            ("admin", world.service_b, True),
        ):
            status = submit(who, service_id)
            if (status == 200) != ok or (not ok and status not in DENIED):
                problems.append(f"{name}: {who} exporting service {service_id} got {status}")
    elif name in OWN:
        export_id = ready_file(app, world.agent.id)
        path = path_for(app, rule, {"file_id": export_id})
        for who in ("loner", "admin"):
            expect(who, path, False)
        expect("agent", path, True)
    elif name in SHARED:
        path = sample_path(app, rule)
        answers = {who: request_as_page(clients[who], rule, path).status_code for who in clients}
        if len(set(answers.values())) != 1 or answers["admin"] >= 500:
            problems.append(f"{name}: staff should all get the same answer, got {answers}")
    return problems


def test_every_admin_route_is_classified(app):
    unclassified = [
        rule.endpoint
        for rule in all_rules(app)
        if rule.endpoint.startswith("admin.") and not any(rule.endpoint in c for c in CLASSES)
    ]
    assert not unclassified, (
        f"classify {unclassified} in tests/test_staff_scope.py (ADMIN_ONLY, LISTS, FAMILY, "
        "SERVICE or SHARED) and give it its access rule (services.scope)"
    )
    counted = [e for c in CLASSES for e in c]
    assert len(counted) == len(set(counted)), "an endpoint is in two classes"
    endpoints = {rule.endpoint for rule in all_rules(app)}
    assert set(counted) <= endpoints, set(counted) - endpoints


def test_every_admin_route_is_scoped(app, world):
    clients = {
        "agent": login_client(app, world.agent),
        "loner": login_client(app, world.loner),
        "admin": login_client(app, world.admin),
    }
    problems = []
    for rule in all_rules(app):
        if rule.endpoint.startswith("admin."):
            problems += check_rule(app, rule, world, clients)
    assert not problems, "\n".join(problems)


# --- The defects of issue 13 -------------------------------------------------------------------


def denials(app, target: str) -> int:
    with app.app_context():
        return len(
            db.session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.action == "access.denied", AuditEvent.target == target
                )
            ).all()
        )


def test_an_agent_with_no_service_sees_no_family_and_no_health_document(app, world):
    client = login_client(app, world.loner)
    families = client.get("/admin/familles").get_data(as_text=True)
    assert world.a.name not in families and world.b.name not in families
    assert "Alphafamille" not in client.get("/admin/documents").get_data(as_text=True)
    for document in (world.a.health, world.b.health, world.a.document):
        assert client.get(f"/admin/documents/{document}/fichier").status_code == 404
    assert denials(app, f"document:{world.a.health}") == 1
    assert client.get(f"/admin/familles/{world.a.household}").status_code == 404


def test_health_documents_only_for_children_enrolled_in_the_agents_services(app, world):
    client = login_client(app, world.agent)
    assert client.get(f"/admin/documents/{world.a.health}/fichier").status_code == 200
    # A sibling not enrolled in A: the family is visible, the child's health file is not.
    sibling = add_child(app, world.a.household, "Sibylle")
    health_type = make_type(app, scope="child", label="PAI", health=True)
    sibling_health = stored(app, world.a.household, health_type, sibling)
    assert client.get(f"/admin/documents/{sibling_health}/fichier").status_code == 404
    assert f'/admin/documents/{sibling_health}"' not in client.get("/admin/documents").get_data(
        as_text=True
    )
    # Once the enrolment in A is refused (and its request closed), the family is out of reach.
    with app.app_context():
        enrolment = db.session.get(Enrolment, world.a.enrolment)
        enrolment.status = "refused"
        db.session.get(Request, enrolment.request_id).status = "refused"
        db.session.commit()
    assert client.get(f"/admin/documents/{world.a.health}/fichier").status_code == 404
    assert client.get(f"/admin/familles/{world.a.household}").status_code == 404
    # The administrator sees them all.
    manager = login_client(app, world.admin)
    assert manager.get(f"/admin/documents/{sibling_health}/fichier").status_code == 200


def test_only_administrators_set_a_familys_qf(app, world):
    client = login_client(app, world.agent)
    page = client.get(f"/admin/familles/{world.a.household}").get_data(as_text=True)
    assert "Enregistrer le QF" not in page and 'name="family_quotient"' not in page
    path = f"/admin/familles/{world.a.household}/quotient"
    assert post(client, path, {"family_quotient": "450"}).status_code == 403
    with app.app_context():
        assert db.session.get(Household, world.a.household).family_quotient is None
    manager = login_client(app, world.admin)
    assert "Enregistrer le QF" in manager.get(f"/admin/familles/{world.a.household}").get_data(
        as_text=True
    )
    assert post(manager, path, {"family_quotient": "450"}).status_code == 303
    with app.app_context():
        assert db.session.get(Household, world.a.household).family_quotient == 450


def test_a_request_tied_to_no_service_goes_to_administrators_only(app, world):
    """Family A is visible to the agent of A, but its removal request (no service: QF
    declarations, removals, document reviews) is the administrators'."""
    for account in (world.agent, world.loner):
        client = login_client(app, account)
        assert client.get(f"/admin/demandes/{world.general_request}").status_code == 404
        queue = client.get("/admin/demandes?statut=all").get_data(as_text=True)
        assert f'/admin/demandes/{world.general_request}"' not in queue
        response = post(client, f"/admin/demandes/{world.general_request}/statut", {"accept": "y"})
        assert response.status_code == 404
    manager = login_client(app, world.admin)
    assert manager.get(f"/admin/demandes/{world.general_request}").status_code == 200
    queue = manager.get("/admin/demandes?service=general").get_data(as_text=True)
    assert f'/admin/demandes/{world.general_request}"' in queue


def test_enrolling_a_family_is_never_a_way_into_its_file(app, world, outbox):
    """An agent of A with no link to family B cannot enrol B's child into A to then read
    B's file and health documents."""
    client = login_client(app, world.agent)
    with app.app_context():
        year_id = db.session.get(Enrolment, world.a.enrolment).school_year_id
    new = f"/admin/inscriptions/nouvelle?foyer={world.b.household}"
    assert client.get(new).status_code == 404
    response = post(
        client,
        new,
        {"child": str(world.b.child), "service": str(world.service_a), "school_year": str(year_id)},
    )
    assert response.status_code == 404
    with app.app_context():
        assert (
            db.session.scalars(
                select(Enrolment.id).where(
                    Enrolment.household_id == world.b.household,
                    Enrolment.service_id == world.service_a,
                )
            ).all()
            == []
        )
    assert client.get(f"/admin/documents/{world.b.health}/fichier").status_code == 404
    assert client.get(f"/admin/familles/{world.b.household}").status_code == 404
    search = client.get("/admin/inscriptions/nouvelle?q=famille").get_data(as_text=True)
    assert f"foyer={world.b.household}" not in search
    assert f"foyer={world.a.household}" in search


# --- The rules, with their query counts ---------------------------------------------------------


def test_rules_answer_in_one_query_and_admins_in_none(app, world):
    with app.app_context():
        agent = db.session.get(User, world.agent.id)
        loner = db.session.get(User, world.loner.id)
        manager = db.session.get(User, world.admin.id)
        with counted_queries(app) as queries:
            assert scope.household_ids_visible_to(manager) is None
            assert scope.may_see_household(manager, world.b.household)
            assert scope.child_health_visible(manager, world.b.child)
        assert queries == []
        with counted_queries(app) as queries:
            assert scope.may_see_household(agent, world.a.household)
        assert len(queries) == 1
        with counted_queries(app) as queries:
            assert scope.child_health_visible(agent, world.a.child)
        assert len(queries) == 1
        assert not scope.may_see_household(agent, world.b.household)
        assert not scope.child_health_visible(agent, world.b.child)
        visible = set(db.session.scalars(select(scope.household_ids_visible_to(agent).subquery())))
        assert visible == {world.a.household}
        assert not list(
            db.session.scalars(select(scope.household_ids_visible_to(loner).subquery()))
        )
        assert not scope.may_see_household(loner, world.a.household)
