"""Accounts in production conditions (issue 12): behind a reverse proxy no one is locked out
by someone else's failures; a remember-me cookie dies on the server too; sign-up does not
tell which addresses have an account."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from citoyens import create_app
from citoyens.accounts import operations
from citoyens.extensions import db
from tests.conftest import csrf_token, test_config
from tests.factories import make_user

WRONG = "pas le bon mot de passe"
X, Y = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def proxied(app):
    """The app behind one trusted reverse proxy (TRUSTED_PROXIES=1), on the same database."""
    other = create_app(test_config(app.config["SQLALCHEMY_DATABASE_URI"], TRUSTED_PROXIES=1))
    yield other
    with other.app_context():
        db.engine.dispose()


def login_from(app, account_or_email, password, address, *, forwarded=True):
    """A login POST from the client `address`: through the proxy's X-Forwarded-For, or
    (forwarded=False) as the connection's own address."""
    client = app.test_client()
    email = getattr(account_or_email, "email", account_or_email)
    if forwarded:
        kwargs = {"headers": {"X-Forwarded-For": address}}
    else:
        kwargs = {"environ_base": {"REMOTE_ADDR": address}}
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/connexion", data=data, **kwargs)


# --- Throttling per account and per client address ---------------------------------------------


def test_behind_a_proxy_one_account_failures_lock_no_one_else(proxied, parent):
    other = make_user(proxied, role="parent")
    for _ in range(5):
        assert login_from(proxied, parent, WRONG, X).status_code == 200
    # Account A from address X is locked...
    assert login_from(proxied, parent, parent.password, X).status_code == 429
    # ...but not account B from the same address (a town hall's network)...
    assert login_from(proxied, other, other.password, X).status_code == 303
    # ...nor A's owner from another address.
    assert login_from(proxied, parent, parent.password, Y).status_code == 303


def test_a_shared_address_holds_more_than_50_failures(proxied, parent):
    # 55 people of a school mistyping their passwords, each once, from one address.
    for n in range(55):
        response = login_from(proxied, f"famille{n}@example.org", WRONG, X)
        assert response.status_code == 200, n
    assert login_from(proxied, parent, parent.password, X).status_code == 303
    # The address has a limit too: a guesser there is stopped for everyone's accounts.
    for n in range(10):
        login_from(proxied, f"autre{n}@example.org", WRONG, X)
    assert login_from(proxied, "encore@example.org", WRONG, X).status_code == 429
    assert login_from(proxied, parent, parent.password, Y).status_code == 303


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(app, parent):
    # TRUSTED_PROXIES=0: the header is the client's to write, so it must not pick the
    # address the failures are counted on.
    assert app.config["TRUSTED_PROXIES"] == 0
    client = app.test_client()
    for n in range(5):
        data = {"email": parent.email, "password": WRONG, "csrf_token": csrf_token(client)}
        client.post("/connexion", data=data, headers={"X-Forwarded-For": f"192.0.2.{n}"})
    fresh = login_from(app, parent, parent.password, "192.0.2.200")
    assert fresh.status_code == 429


def test_the_connection_address_counts_without_a_proxy(app, parent):
    for _ in range(5):
        login_from(app, parent, WRONG, X, forwarded=False)
    assert login_from(app, parent, parent.password, X, forwarded=False).status_code == 429
    assert login_from(app, parent, parent.password, Y, forwarded=False).status_code == 303


def change_password(client, current, new="une toute nouvelle phrase secrète"):
    data = {"current_password": current, "password": new, "csrf_token": csrf_token(client)}
    return client.post("/mon-compte/mot-de-passe", data=data)


def logged_in(app, account):
    client = app.test_client()
    data = {"email": account.email, "password": account.password}
    data["csrf_token"] = csrf_token(client)
    assert client.post("/connexion", data=data).status_code == 303
    return client


@pytest.mark.parametrize("path", ["/mon-compte/mot-de-passe", "/mon-compte/adresse"])
def test_the_current_password_of_the_account_forms_is_throttled(app, parent, path):
    client = logged_in(app, parent)
    someone_else = make_user(app, role="parent")
    other_client = logged_in(app, someone_else)

    def send(c, current):
        data = {"current_password": current, "csrf_token": csrf_token(c)}
        new_email = f"neuve.{id(c)}@example.org"
        data |= {"password": "une toute nouvelle phrase secrète", "email": new_email}
        return c.post(path, data=data)

    for _ in range(5):
        wrong = send(client, WRONG)
        assert "Le mot de passe actuel est incorrect." in wrong.get_data(as_text=True)
    blocked = send(client, parent.password)
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.get_data(as_text=True)
    # Another account from the same address is not held back.
    assert send(other_client, someone_else.password).status_code == 303


def test_mail_forms_are_limited_per_address_and_per_email(proxied):
    for n in range(5):
        client = proxied.test_client()
        data = {"email": "cible@example.org", "csrf_token": csrf_token(client)}
        headers = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert client.post("/mot-de-passe-oublie", data=data, headers=headers).status_code == 303
    # One address's mailbox is not flooded from many addresses...
    client = proxied.test_client()
    data = {"email": "cible@example.org", "csrf_token": csrf_token(client)}
    headers = {"X-Forwarded-For": "192.0.2.99"}
    assert client.post("/mot-de-passe-oublie", data=data, headers=headers).status_code == 429
    # ...and a shared address serves many families in an hour.
    for n in range(20):
        client = proxied.test_client()
        data = {"email": f"famille{n}@example.org", "csrf_token": csrf_token(client)}
        response = client.post("/mot-de-passe-oublie", data=data, headers={"X-Forwarded-For": X})
        assert response.status_code == 303, n


# --- Remember-me cookies die on the server -------------------------------------------------------


def remember_cookie(app, account) -> str:
    """Log in with "Se souvenir de moi" and return the remember-me cookie's value."""
    client = app.test_client()
    data = {"email": account.email, "password": account.password, "remember": "y"}
    data["csrf_token"] = csrf_token(client)
    response = client.post("/connexion", data=data)
    assert response.status_code == 303
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "remember_token=" in c)
    return re.search(r"remember_token=([^;]+)", cookie).group(1)


def with_stolen(app, cookie: str):
    """A thief's browser: only the remember-me cookie, no session."""
    thief = app.test_client()
    thief.set_cookie("remember_token", cookie)
    return thief


def test_a_stolen_remember_cookie_works_until_the_password_changes(app, parent):
    cookie = remember_cookie(app, parent)
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 200
    owner = logged_in(app, parent)
    assert change_password(owner, parent.password).status_code == 303
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 302


def test_a_stolen_remember_cookie_dies_when_the_owner_logs_out_everywhere(app, parent):
    cookie = remember_cookie(app, parent)
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 200
    owner = logged_in(app, parent)
    owner.post("/deconnexion", data={"csrf_token": csrf_token(owner)})
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 302


def test_a_remember_cookie_dies_on_the_server_after_its_lifetime(app, parent, monkeypatch):
    cookie = remember_cookie(app, parent)
    lifetime = app.config["REMEMBER_COOKIE_DURATION"].total_seconds()
    now = time.time()
    # A browser that keeps the cookie longer than asked (or a thief) gets nothing after it.
    monkeypatch.setattr(time, "time", lambda: now + lifetime - 60)
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + lifetime + 60)
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 302


def test_a_remember_cookie_follows_a_shorter_configured_lifetime(app, parent, monkeypatch):
    cookie = remember_cookie(app, parent)
    monkeypatch.setitem(app.config, "REMEMBER_COOKIE_DURATION", timedelta(seconds=0))
    time.sleep(1.1)
    assert with_stolen(app, cookie).get("/tableau-de-bord").status_code == 302


# --- Sign-up does not tell which addresses have an account ---------------------------------------

SIGNUP = {"first_name": "Camille", "last_name": "Durand", "password": "le chat dort sur la Loire"}


def test_signup_answers_the_same_and_hashes_the_password_for_a_known_address(
    app, parent, monkeypatch
):
    hashed = []
    real_hash = operations.hash_password

    def counting_hash(password):
        hashed.append(password)
        return real_hash(password)

    monkeypatch.setattr(operations, "hash_password", counting_hash)
    answers = []
    for email in (parent.email, "nouvelle.famille@example.org"):
        client = app.test_client()
        data = {**SIGNUP, "email": email, "csrf_token": csrf_token(client)}
        response = client.post("/creer-mon-espace", data=data)
        answers.append((response.status_code, response.headers.get("Location"), response.data))
        assert len(hashed) == 1, email  # the same costly work on both paths
        hashed.clear()
    assert answers[0] == answers[1]
