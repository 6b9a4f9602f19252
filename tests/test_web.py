"""The page shell: htmx fragments, CSRF header, error pages, rate limits on shared storage."""

from __future__ import annotations

import uuid

import pytest

from citoyens import create_app
from citoyens.web import render
from tests.conftest import csrf_token, post, test_config


def test_htmx_request_gets_the_block_and_a_boosted_one_the_whole_page(app):
    from citoyens.accounts.forms import LoginForm

    headers = {"HX-Request": "true"}
    with app.test_request_context("/connexion", headers=headers):
        fragment = render("accounts/login.html", block="content", form=LoginForm(), next_url=None)
    with app.test_request_context("/connexion", headers={**headers, "HX-Boosted": "true"}):
        boosted = render("accounts/login.html", block="content", form=LoginForm(), next_url=None)
    with app.test_request_context("/connexion"):
        full = render("accounts/login.html", block="content", form=LoginForm(), next_url=None)
    text = fragment.get_data(as_text=True)
    assert "<h1>Connexion" in text and "<html" not in text
    assert "<html" in boosted.get_data(as_text=True)
    assert "<html" in full.get_data(as_text=True)
    for response in (fragment, boosted, full):
        assert "HX-Request" in response.headers["Vary"]


def test_csrf_token_is_accepted_from_the_htmx_header(client, parent):
    token = csrf_token(client)
    response = client.post(
        "/connexion",
        data={"email": parent.email, "password": parent.password},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 303


def test_missing_csrf_token_is_a_french_400(client, parent):
    response = client.post("/connexion", data={"email": parent.email, "password": "x" * 12})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.get_data(as_text=True)


def test_too_large_request_is_a_french_413(client):
    response = client.post(
        "/connexion",
        data={"email": "a" * (12 * 1024 * 1024)},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert "dépasse 10 Mo" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "code", "text"),
    [("/nulle-part", 404, "Page introuvable"), ("/deconnexion", 405, "Action impossible")],
)
def test_error_pages_are_french_and_generic(client, path, code, text):
    response = client.get(path)
    assert response.status_code == code
    assert text in response.get_data(as_text=True)


def test_mail_sending_forms_are_rate_limited_with_a_french_429(client):
    for _ in range(10):
        post(client, "/mot-de-passe-oublie", {"email": "quelqu.un@example.org"})
    response = post(client, "/mot-de-passe-oublie", {"email": "quelqu.un@example.org"})
    assert response.status_code == 429
    assert "Trop de tentatives" in response.get_data(as_text=True)


def test_login_throttle_is_shared_through_redis(app, parent):
    """Two app processes with REDIS_URL count the same failures."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    prefix = f"citoyens-test-{uuid.uuid4().hex}"
    config = test_config(
        app.config["SQLALCHEMY_DATABASE_URI"],
        RATELIMIT_STORAGE_URI=url,
        RATELIMIT_KEY_PREFIX=prefix,
    )
    first, second = create_app(config), create_app(config)
    try:
        for i in range(5):
            server = first if i % 2 else second
            client = server.test_client()
            post(client, "/connexion", {"email": parent.email, "password": "mauvais mot de passe"})
        client = first.test_client()
        response = post(client, "/connexion", {"email": parent.email, "password": parent.password})
        assert response.status_code == 429
    finally:
        connection = redis.Redis.from_url(url)
        for key in connection.scan_iter(f"*{prefix}*"):
            connection.delete(key)


def test_history_restore_gets_the_whole_page(app):
    from citoyens.accounts.forms import LoginForm

    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    with app.test_request_context("/connexion", headers=headers):
        page = render("accounts/login.html", block="content", form=LoginForm(), next_url=None)
    assert "<html" in page.get_data(as_text=True)
