"""Access control over every route of `app.url_map` (SECURITY.md "Access control").

A route that is neither in PUBLIC_ENDPOINTS nor guarded (anonymous → login) makes
`test_every_route_is_public_or_guarded` fail, so new routes are covered the day
they are added. CSRF stays on here: every state-changing method needs a token.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from citoyens.accounts import tokens
from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from tests.conftest import csrf_token, post
from tests.factories import PASSWORD, make_user

# Pages anyone may open. Everything else must send an anonymous visitor to the login page.
PUBLIC_ENDPOINTS = {
    "core.home",
    "core.accessibility",
    "core.privacy",
    "core.healthz",
    "static",
    "accounts.login",
    "accounts.signup",
    "accounts.check_inbox",
    "accounts.confirm_email",
    "accounts.resend_confirmation",
    "accounts.forgot_password",
    "accounts.reset_password",
    # Signed links sent by e-mail, opened maybe on another device: the link is the credential
    # (GET only shows a form or a button; the POST, with its CSRF token, acts).
    "accounts.confirm_email_change",
    "households.accept_invitation",
    # The household's iCalendar feed: phone calendars cannot log in, the secret URL is the
    # credential (random 256-bit token; unknown → 404; the family can regenerate or stop it).
    "calendar_feed.ics",
    # Online payment: the bank's server-to-server notification carries no session (it only
    # makes the portal ask the bank), and the browser may come back from the bank after its
    # session expired (the return shows nothing personal unless logged in as the household).
    "billing.payment_notification",
    "billing.payment_return",
}
# The simulated bank stands for PayFiP, another site: no login there (404 outside
# PAYMENT_BACKEND=simulated and in production).
PUBLIC_PREFIXES = ("pwa.", "bank_sim.")

# Family pages: an agent or an administrator gets 403 there. Every non-public route of the
# family blueprints counts, so their new routes are checked without editing this list.
PARENT_ONLY_ENDPOINTS = {"core.dashboard", "core.more"}
FAMILY_BLUEPRINTS = {
    "billing",
    "households",
    "documents",
    "requests",
    "messages",
    "enrolments",
    "reservations",
    "calendar_feed",
    "privacy",
}

# Only the bank's server-to-server notification may ever be exempt (SECURITY.md).
# It is believed in nothing: the portal fetches the payment's status from the bank.
CSRF_EXEMPT_ENDPOINTS = {"billing.payment_notification"}

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}
PLACEHOLDER = re.compile(r"<[^>]+>")
DUMMY_VALUES = ("1", "x", "00000000-0000-0000-0000-000000000001")


def is_public(endpoint: str) -> bool:
    return endpoint in PUBLIC_ENDPOINTS or endpoint.startswith(PUBLIC_PREFIXES)


def is_parent_only(rule) -> bool:
    if is_public(rule.endpoint):
        return False
    return (
        rule.endpoint in PARENT_ONLY_ENDPOINTS or rule.endpoint.split(".")[0] in FAMILY_BLUEPRINTS
    )


def is_staff_area(rule) -> bool:
    return rule.rule.startswith("/admin") or rule.endpoint.startswith("admin.")


def methods_of(rule) -> list[str]:
    return sorted(rule.methods - IGNORED_METHODS)


def main_method(rule) -> str:
    methods = methods_of(rule)
    return "GET" if "GET" in methods else methods[0]


def sample_path(app, rule) -> str:
    """A concrete URL for the rule, its variables filled with dummy values."""
    adapter = app.url_map.bind("localhost")
    for value in DUMMY_VALUES:
        path = PLACEHOLDER.sub(value, rule.rule)
        try:
            matched, _ = adapter.match(path, method=main_method(rule), return_rule=True)
        except HTTPException:
            continue
        if matched is rule:
            return path
    raise AssertionError(f"no dummy URL matches {rule.rule!r}: add a value to DUMMY_VALUES")


def all_rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule)


def request_as_page(client, rule, path):
    """GET the rule, or submit it with a valid CSRF token when it takes no GET. The body is
    read (`buffered`): a streamed export left unread would keep its request context open."""
    method = main_method(rule)
    if method == "GET":
        return client.get(path, buffered=True)
    return client.open(path, method=method, data={"csrf_token": csrf_token(client)}, buffered=True)


def login_redirect_problem(response, path: str) -> str | None:
    if response.status_code not in (302, 303):
        return f"answers {response.status_code} instead of a redirect to the login page"
    location = urlsplit(response.headers["Location"])
    if location.path != "/connexion":
        return f"redirects to {response.headers['Location']!r}, not to /connexion"
    if parse_qs(location.query).get("next") != [path]:
        return f"login redirect {response.headers['Location']!r} does not carry next={path}"
    return None


def login_client(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


# --- Inventory ---------------------------------------------------------------------------


def test_allow_list_names_existing_endpoints(app):
    """A stale entry would silently make a future route with that name public."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= PUBLIC_ENDPOINTS, PUBLIC_ENDPOINTS - endpoints
    assert endpoints >= PARENT_ONLY_ENDPOINTS, PARENT_ONLY_ENDPOINTS - endpoints


def test_every_route_is_public_or_guarded(app):
    """Anonymous → /connexion?next=…, except on the explicit allow-list."""
    problems = []
    for rule in all_rules(app):
        path = sample_path(app, rule)
        client = app.test_client()
        response = request_as_page(client, rule, path)
        if is_public(rule.endpoint):
            if response.status_code in (302, 303) and urlsplit(
                response.headers["Location"]
            ).path.startswith("/connexion"):
                problems.append(f"{rule.endpoint} is public but redirects to the login page")
            if response.status_code >= 500:
                problems.append(f"{rule.endpoint} answers {response.status_code}")
            continue
        problem = login_redirect_problem(response, path)
        if problem:
            problems.append(
                f"{rule.endpoint} ({main_method(rule)} {path}) {problem}: guard it "
                "(login_required / parent_required / staff_required) or, if it really is "
                "public, add it to PUBLIC_ENDPOINTS"
            )
    assert not problems, "\n".join(problems)


def test_parent_gets_403_on_every_admin_route(app, parent):
    client = login_client(app, parent)
    problems = []
    for rule in all_rules(app):
        if not is_staff_area(rule):
            continue
        path = sample_path(app, rule)
        response = request_as_page(client, rule, path)
        if response.status_code != 403:
            problems.append(f"{rule.endpoint} ({path}) answers {response.status_code} to a parent")
    assert not problems, "\n".join(problems)


# Settings only administrators change; agents get 403 there.
ADMIN_ONLY_ENDPOINTS = {
    "admin.schools",
    "admin.schools_new",
    "admin.services",
    "admin.services_new",
    "admin.school_years",
    "admin.school_years_new",
    "admin.staff_accounts",
    "admin.staff_accounts_new",
    "admin.families_import",
    "admin.audit_log",
    "admin.audit_log_csv",
    "admin.settings",
    "admin.outbox",  # the messages name every family
    "admin.accounting",  # the month's accounting export names every family
    "admin.accounting_export",
}


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_reaches_admin_pages_and_gets_403_on_parent_pages(app, role):
    account = make_user(app, role=role)
    client = login_client(app, account)
    for rule in all_rules(app):
        if is_staff_area(rule) and main_method(rule) == "GET" and not rule.arguments:
            response = client.get(sample_path(app, rule), buffered=True)
            expected = 403 if role == "staff" and rule.endpoint in ADMIN_ONLY_ENDPOINTS else 200
            assert response.status_code == expected, (rule.endpoint, response.status_code)
        if is_parent_only(rule):
            response = request_as_page(client, rule, sample_path(app, rule))
            assert response.status_code == 403, (rule.endpoint, response.status_code)


def test_parent_reaches_parent_pages(app, parent):
    client = login_client(app, parent)
    for rule in all_rules(app):
        if is_parent_only(rule) and main_method(rule) == "GET" and not rule.arguments:
            assert client.get(sample_path(app, rule)).status_code == 200, rule.endpoint


# --- CSRF ----------------------------------------------------------------------------------


def csrf_rules(app):
    return [
        (rule, method)
        for rule in all_rules(app)
        for method in sorted(rule.methods & STATE_CHANGING)
        if rule.endpoint not in CSRF_EXEMPT_ENDPOINTS
    ]


def test_csrf_is_enabled(app):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    assert app.config.get("WTF_CSRF_CHECK_DEFAULT", True) is True


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "parent"])
def test_every_state_changing_route_needs_a_csrf_token(app, parent, logged_in):
    client = login_client(app, parent) if logged_in else app.test_client()
    problems = []
    for rule, method in csrf_rules(app):
        path = sample_path(app, rule)
        for data in ({}, {"csrf_token": "forged"}):
            response = client.open(path, method=method, data=data)
            if response.status_code != 400:
                problems.append(f"{method} {path} with {data} answers {response.status_code}")
            elif "Le formulaire a expiré" not in response.get_data(as_text=True):
                problems.append(f"{method} {path}: 400 without the French CSRF message")
    assert not problems, "\n".join(problems)
    if logged_in:  # the refused logout changed nothing
        assert client.get("/tableau-de-bord").status_code == 200


def test_only_the_bank_notification_is_exempt_from_csrf(app):
    """The exemptions the app really has (csrf.exempt), not only the list above."""
    from citoyens.extensions import csrf

    exempt = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        if (
            f"{view.__module__}.{view.__name__}" in csrf._exempt_views
            or blueprint in csrf._exempt_blueprints
        ):
            exempt.add(rule.endpoint)
    assert exempt == CSRF_EXEMPT_ENDPOINTS
    # Reached without a token, like the bank's server: the view answers (unknown idOp), no
    # CSRF 400, and no session is opened for it.
    response = app.test_client().post("/paiement/notification", data={"idOp": "0" * 32})
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers


def test_csrf_token_of_another_session_is_refused(app, parent):
    other = app.test_client()
    foreign_token = csrf_token(other)
    client = login_client(app, parent)
    response = client.post("/deconnexion", data={"csrf_token": foreign_token})
    assert response.status_code == 400
    assert client.get("/tableau-de-bord").status_code == 200


def test_htmx_csrf_header_is_accepted(app, parent):
    """htmx sends the token as X-CSRFToken (static/js/app.js)."""
    client = login_client(app, parent)
    response = client.post("/deconnexion", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 303
    assert client.get("/tableau-de-bord").status_code == 302


# --- No state change on GET -------------------------------------------------------------------


def snapshot(app):
    with app.app_context():
        users = db.session.execute(
            select(
                User.id,
                User.email,
                User.role,
                User.household_id,
                User.person_id,
                User.session_token,
                User.password_hash,
                User.active,
                User.confirmed_at,
            ).order_by(User.id)
        ).all()
        counts = [
            db.session.scalar(select(func.count()).select_from(model))
            for model in (User, Household, Person, HouseholdMember)
        ]
    return users, counts


def test_logout_by_get_is_405_and_keeps_the_session(app, client, auth, parent):
    assert client.get("/deconnexion").status_code == 405
    auth.login(parent)
    response = client.get("/deconnexion")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert client.get("/tableau-de-bord").status_code == 200


def test_no_get_changes_state(app, parent, staff):
    """GET (and HEAD) every route as anonymous, parent and agent: the accounts stay as they were."""
    unconfirmed = make_user(app, confirmed=False)
    clients = [app.test_client(), login_client(app, parent), login_client(app, staff)]
    before = snapshot(app)  # logging in updates last_login_at only, not in the snapshot
    for rule in all_rules(app):
        if "GET" not in rule.methods:
            continue
        path = sample_path(app, rule)
        for client in clients:
            assert client.get(path).status_code < 500, path
            assert client.head(path).status_code < 500, path
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.get(User, unconfirmed.id).confirmed_at is None


def test_get_on_confirmation_link_does_not_confirm(app, client):
    account = make_user(app, confirmed=False)
    with app.app_context():
        token = tokens.make_token(db.session.get(User, account.id), tokens.CONFIRM)
    for _ in range(2):
        response = client.get(f"/confirmer/{token}")
        assert response.status_code == 200
        assert "Confirmer mon adresse" in response.get_data(as_text=True)
    assert client.head(f"/confirmer/{token}").status_code == 200
    with app.app_context():
        assert db.session.get(User, account.id).confirmed_at is None
    # The button (POST + CSRF) is what confirms: the GET above was the only difference.
    assert post(client, f"/confirmer/{token}").status_code == 303
    with app.app_context():
        assert db.session.get(User, account.id).confirmed_at is not None


def test_get_on_reset_link_does_not_change_the_password(app, client, parent):
    with app.app_context():
        user = db.session.get(User, parent.id)
        token = tokens.make_token(user, tokens.RESET)
        before = (user.password_hash, user.session_token)
    response = client.get(f"/nouveau-mot-de-passe/{token}", query_string={"password": "x" * 20})
    assert response.status_code == 200
    with app.app_context():
        user = db.session.get(User, parent.id)
        assert (user.password_hash, user.session_token) == before


def test_get_on_email_change_link_does_not_change_the_address(app, client, parent):
    with app.app_context():
        user = db.session.get(User, parent.id)
        token = tokens.make_token(user, tokens.CHANGE_EMAIL, e="nouvelle@example.org")
    assert client.get(f"/confirmer-adresse/{token}").status_code == 200
    assert client.head(f"/confirmer-adresse/{token}").status_code == 200
    with app.app_context():
        assert db.session.get(User, parent.id).email == parent.email
    assert post(client, f"/confirmer-adresse/{token}").status_code == 303
    with app.app_context():
        assert db.session.get(User, parent.id).email == "nouvelle@example.org"


def test_password_reset_kills_a_pending_email_change(app, client, parent):
    """Someone who got in asks to move the account to their address; the owner resets the
    password. The pending link must die with the old password, or it hands the account over."""
    with app.app_context():
        user = db.session.get(User, parent.id)
        change = tokens.make_token(user, tokens.CHANGE_EMAIL, e="intrus@example.org")
        reset = tokens.make_token(user, tokens.RESET)
    response = post(client, f"/nouveau-mot-de-passe/{reset}", {"password": "ma nouvelle phrase"})
    assert response.status_code == 303
    post(app.test_client(), f"/confirmer-adresse/{change}")
    with app.app_context():
        assert db.session.get(User, parent.id).email == parent.email


# --- Hidden fields are never trusted ----------------------------------------------------------


def test_signup_ignores_role_and_household_fields(app, client, parent):
    with app.app_context():
        members_before = db.session.scalar(
            select(func.count())
            .select_from(HouseholdMember)
            .where(HouseholdMember.household_id == parent.household_id)
        )
    response = post(
        client,
        "/creer-mon-espace",
        {
            "first_name": "Eve",
            "last_name": "Intruse",
            "email": "eve.intruse@example.org",
            "password": PASSWORD,
            "role": "admin",
            "household_id": str(parent.household_id),
            "person_id": "1",
            "confirmed_at": "2020-01-01",
            "active": "y",
            "is_admin": "1",
            "status": "validated",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "eve.intruse@example.org"))
        assert user is not None
        assert user.role == "parent"
        assert user.household_id is not None
        assert user.household_id != parent.household_id
        assert user.confirmed_at is None
        members_after = db.session.scalar(
            select(func.count())
            .select_from(HouseholdMember)
            .where(HouseholdMember.household_id == parent.household_id)
        )
        assert members_after == members_before


def test_logged_in_parent_cannot_sign_up_again(app, client, auth, parent):
    auth.login(parent)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(User))
    response = post(
        client,
        "/creer-mon-espace",
        {
            "first_name": "Bis",
            "last_name": "Bis",
            "email": "bis@example.org",
            "password": PASSWORD,
            "role": "admin",
        },
    )
    assert response.status_code in (302, 303)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == before


def test_password_change_ignores_role_field(app, client, auth, parent):
    auth.login(parent)
    response = post(
        client,
        "/mon-compte/mot-de-passe",
        {
            "current_password": PASSWORD,
            "password": "une autre phrase de passe solide",
            "role": "admin",
            "household_id": "999999",
            "email": "autre@example.org",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        user = db.session.get(User, parent.id)
        assert (user.role, user.household_id, user.email) == (
            "parent",
            parent.household_id,
            parent.email,
        )
    assert client.get("/admin/").status_code == 403


# --- Redirect after login stays on the site ----------------------------------------------------


OFFSITE_TARGETS = [
    "//evil.example/",
    "https://evil.example/",
    "https:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\t//evil.example",
    "\t//evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "///evil.example",
]


def test_login_next_never_leaves_the_site(app, parent):
    """One account for every target: each login costs an argon2 check."""
    for target in OFFSITE_TARGETS:
        client = app.test_client()
        response = post(
            client,
            "/connexion",
            {"email": parent.email, "password": parent.password},
            query_string={"next": target},
        )
        assert response.status_code == 303, target
        location = urlsplit(response.headers["Location"])
        assert not location.scheme and not location.netloc, (target, location)
        assert location.path.startswith("/"), (target, location)
        assert not location.path.startswith("//"), (target, location)


@pytest.mark.parametrize("target", ["//[", "http://[", "/\\["])
def test_login_page_with_a_malformed_next_is_not_a_500(client, target):
    assert client.get("/connexion", query_string={"next": target}).status_code == 200


def test_login_next_with_a_newline_is_not_a_500(app, client, parent):
    response = post(
        client,
        "/connexion",
        {"email": parent.email, "password": parent.password},
        query_string={"next": "/tableau-de-bord\r\nX-Injected: 1"},
    )
    assert response.status_code == 303
    assert "X-Injected" not in response.headers


def test_login_next_same_site_path_is_followed(app, client, parent):
    response = client.get("/mon-compte")
    next_path = parse_qs(urlsplit(response.headers["Location"]).query)["next"][0]
    response = post(
        client,
        "/connexion",
        {"email": parent.email, "password": parent.password},
        query_string={"next": next_path},
    )
    assert response.headers["Location"] == "/mon-compte"
