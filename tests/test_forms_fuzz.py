"""Property-based tests: random input to every form is never a 500, and a refused sign-up
saves nothing (SECURITY.md "Input and files").

Values mix any Unicode text, empty strings, NUL bytes, strings at and around the length
limits, and very long strings (up to 10,000 characters).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import create_environ
from werkzeug.utils import redirect

from citoyens.accounts import tokens
from citoyens.accounts.models import User
from citoyens.accounts.passwords import hash_password
from citoyens.extensions import db, limiter
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.web import safe_next
from tests.conftest import TEST_DATABASE_URL, post
from tests.factories import PASSWORD

ON_POSTGRESQL = (TEST_DATABASE_URL or "").startswith("postgres")

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)

NUL = "\x00"
# Stands for the real account's value, filled in by the test (strategies cannot see fixtures).
REAL = "\x00real\x00"

any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
long_text = st.tuples(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=10_000),
).map(lambda pair: (pair[0] * pair[1])[:10_000])
at_limits = st.sampled_from([11, 12, 100, 101, 128, 129, 254, 255, 10_000]).flatmap(
    lambda n: st.sampled_from(["a" * n, "é" * n, "😀" * n, " " * n])
)
with_nul = any_text.map(lambda s: f"{s}{NUL}{s}")
fuzz_text = st.one_of(
    st.just(""), any_text, long_text, at_limits, with_nul, st.just(NUL), st.just(" \t\n ")
)
emails = st.one_of(
    fuzz_text,
    st.emails().filter(lambda e: len(e) <= 254),
    any_text.map(lambda s: f"{s}@example.org"),
)
passwords = st.one_of(fuzz_text, st.just(PASSWORD), st.just("une autre phrase assez longue"))
names = st.one_of(fuzz_text, st.sampled_from(["Zoé", "Jean-Éric", "N'Diaye", "李"]))
extra_fields = st.dictionaries(
    st.sampled_from(["role", "household_id", "status", "price", "next", "id", "csrf"]),
    fuzz_text,
    max_size=3,
)


def form(**fields) -> st.SearchStrategy[dict]:
    """A form body: each field absent, one value or a list of values; plus stray fields."""

    def field(strategy):
        return st.one_of(st.none(), strategy, st.lists(strategy, min_size=2, max_size=3))

    body = st.fixed_dictionaries({name: field(s) for name, s in fields.items()})
    return st.tuples(body, extra_fields).map(
        lambda pair: {
            **pair[1],
            **{name: value for name, value in pair[0].items() if value is not None},
        }
    )


def fill(data: dict, account) -> dict:
    """Replace the REAL marker by the account's e-mail or password."""
    real = {"email": account.email, "password": account.password, "current_password": PASSWORD}

    def one(name, value):
        return real.get(name, value) if value == REAL else value

    return {
        name: [one(name, v) for v in value] if isinstance(value, list) else one(name, value)
        for name, value in data.items()
    }


def fresh_example():
    """Hypothesis runs every example inside one test: start each with empty rate limits."""
    limiter.reset()


def counts(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (User, Household, Person, HouseholdMember)
        )


def check(response, what: str):
    event(f"{what}: {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code < 500, f"{what} answered {response.status_code}"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    return response


def login_client(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


# --- Anonymous forms ----------------------------------------------------------------------


@FUZZ
@given(data=form(email=st.one_of(emails, st.just(REAL)), password=passwords, remember=fuzz_text))
@example(data={"email": f"a{NUL}b@example.org", "password": PASSWORD})
def test_login_form_never_fails(app, client, parent, data):
    fresh_example()
    response = check(post(client, "/connexion", fill(data, parent)), "login")
    if response.status_code in (302, 303):
        location = urlsplit(response.headers["Location"])
        assert not location.netloc or location.netloc == "localhost"
        post(client, "/deconnexion")


# The `next` parameter of the login page, checked on the function that filters it (no
# password hashing per example, so many more examples); test_access.py checks it end to end.

C0_AND_SPACE = "".join(map(chr, range(0x21)))
next_targets = st.one_of(
    fuzz_text,
    fuzz_text.map(lambda s: "/" + s),
    st.text(alphabet="/\\\t\n\r\x00\x0b :.@%?#éa", max_size=12),
    st.text(alphabet="/\\\t\n\r\x00\x0b :.@%?#éa", max_size=12).map(lambda s: "/" + s),
)
MANY = settings(max_examples=500, deadline=None, database=None)


def as_a_browser_reads(location: str) -> str:
    """WHATWG URL parsing: outer C0 controls and spaces dropped, tabs and newlines removed
    anywhere, and a backslash read as a slash."""
    location = location.strip(C0_AND_SPACE)
    return re.sub(r"[\t\n\r]", "", location).replace("\\", "/")


def location_sent(target: str) -> str | None:
    """The Location header a browser receives after login with `next=target`, or None
    when the login page would not redirect there."""
    try:
        result = safe_next(target)
    except ValueError:  # "//[": see test_next_never_raises
        return None
    if result is None:
        return None
    try:
        response = redirect(result, 303)
    except ValueError:  # CR/LF: see test_next_never_keeps_control_characters
        return None
    return dict(response.get_wsgi_headers(create_environ()).items())["Location"]


@MANY
@given(target=next_targets)
@example(target="/\t/evil.example")
@example(target="/\t//evil.example")
@example(target="/\\evil.example")
@example(target="\x00//evil.example")
def test_next_is_always_a_path_of_this_site(target):
    location = location_sent(target)
    if location is None:
        return
    seen = as_a_browser_reads(location)
    parts = urlsplit(seen)
    # a relative reference ("", "?x", "/path"), never another host ("//host", "///host")
    assert not parts.scheme and not parts.netloc, (target, location)
    assert not seen.startswith("//"), (target, location)


@MANY
@given(target=next_targets)
@example(target="//[")
@example(target="/\\[")
def test_next_never_raises(target):
    safe_next(target)


@MANY
@given(target=next_targets)
@example(target="/\n")
@example(target="/\t//evil.example")
def test_next_never_keeps_control_characters(target):
    result = safe_next(target)
    if result is not None:
        assert not re.search(r"[\x00-\x1f\x7f]", result), repr(result)
        redirect(result, 303)  # raises on characters a header cannot carry


@FUZZ
@given(
    data=form(
        first_name=names,
        last_name=names,
        email=st.one_of(emails, st.just(REAL)),
        password=passwords,
    )
)
@example(
    data={
        "first_name": f"Zoé{NUL}",
        "last_name": "Martin",
        "email": "zoe.martin@example.org",
        "password": PASSWORD,
    }
)
def test_signup_form_never_fails_and_a_refusal_saves_nothing(app, client, parent, data):
    fresh_example()
    before = counts(app)
    response = check(post(client, "/creer-mon-espace", fill(data, parent)), "sign-up")
    if response.status_code != 303:
        assert counts(app) == before, "a refused sign-up saved something"
    else:
        assert response.headers["Location"].endswith("/verifiez-vos-mails")


def test_signup_refuses_a_nul_byte_in_a_name(app, client):
    before = counts(app)
    response = post(
        client,
        "/creer-mon-espace",
        {
            "first_name": f"Zoé{NUL}",
            "last_name": "Martin",
            "email": "zoe.martin@example.org",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert counts(app) == before


@pytest.mark.parametrize("path", ["/mot-de-passe-oublie", "/renvoyer-le-lien"])
def test_email_only_forms_never_fail(app, client, parent, path):
    @FUZZ
    @given(data=form(email=st.one_of(emails, st.just(REAL))))
    @example(data={"email": f"a{NUL}b@example.org"})
    def run(data):
        fresh_example()
        before = counts(app)
        response = check(post(client, path, fill(data, parent)), path)
        assert response.status_code in (200, 303, 429), response.status_code
        assert counts(app) == before

    run()


garbage_tokens = st.one_of(
    fuzz_text.filter(bool),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1
    ),
)


@pytest.mark.parametrize("prefix", ["/nouveau-mot-de-passe/", "/confirmer/", "/confirmer-adresse/"])
def test_token_links_with_garbage_never_fail(app, client, parent, prefix):
    @FUZZ
    @given(token=garbage_tokens, data=form(password=passwords))
    @example(token=f"x{NUL}y", data={"password": PASSWORD})
    @example(token="eyJ1IjoxfQ.AAAAAA.BBBBBB", data={"password": PASSWORD})
    def run(token, data):
        fresh_example()
        path = prefix + quote(token, safe="")
        before = snapshot(app, parent)
        check(client.get(path), f"GET {prefix}")
        response = check(post(client, path, fill(data, parent)), f"POST {prefix}")
        assert response.status_code in (200, 308, 404, 405), response.status_code
        assert snapshot(app, parent) == before

    run()


def snapshot(app, account):
    with app.app_context():
        user = db.session.get(User, account.id)
        return user.email, user.password_hash, user.confirmed_at, user.session_token


@FUZZ
@given(data=form(password=passwords))
def test_reset_form_with_a_real_token_never_fails(app, client, parent, data):
    fresh_example()
    with app.app_context():
        token = tokens.make_token(db.session.get(User, parent.id), tokens.RESET)
    response = check(post(client, f"/nouveau-mot-de-passe/{token}", data), "reset")
    assert response.status_code in (200, 303)


# --- Forms of a logged-in parent --------------------------------------------------------------


def test_change_password_form_never_fails(app, parent):
    client = login_client(app, parent)

    @FUZZ
    @given(data=form(current_password=st.one_of(passwords, st.just(REAL)), password=passwords))
    @example(data={"current_password": REAL, "password": f"phrase{NUL}de passe longue"})
    def run(data):
        fresh_example()
        response = check(post(client, "/mon-compte/mot-de-passe", fill(data, parent)), "password")
        assert response.status_code in (200, 303), "the parent was logged out"
        with app.app_context():
            user = db.session.get(User, parent.id)
            assert (user.role, user.household_id) == ("parent", parent.household_id)
            if response.status_code == 303:  # back to the known password for the next example
                user.password_hash = hash_password(PASSWORD)
                db.session.commit()

    run()


def test_change_email_form_never_fails(app, parent):
    client = login_client(app, parent)

    @FUZZ
    @given(data=form(email=emails, current_password=st.one_of(passwords, st.just(REAL))))
    @example(data={"email": f"a{NUL}b@example.org", "current_password": REAL})
    def run(data):
        fresh_example()
        response = check(post(client, "/mon-compte/adresse", fill(data, parent)), "e-mail change")
        assert response.status_code in (200, 303), "the parent was logged out"
        with app.app_context():  # only the link sent to the new address changes it
            assert db.session.get(User, parent.id).email == parent.email

    run()
