"""Odd inputs are refused in French, never a 500: numbers too long to parse, dates out of
range in query strings, control characters in any field (SECURITY.md "Input and files").
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from datetime import date

import pytest
from flask_wtf import FlaskForm
from hypothesis import settings
from wtforms.fields.core import UnboundField

import citoyens.forms
from citoyens.forms import (
    NUMBER_MAX_LENGTH,
    IntegerField,
    RefusedInput,
    parse_query_month,
    parse_query_week,
)
from tests.conftest import post

HOUSEHOLD = {
    "address_line": "1 rue de l'Exemple",
    "postcode": "49290",
    "city": "Chalonnes-sur-Loire",
    "family_quotient": "850",
}


def text(response) -> str:
    return response.get_data(as_text=True)


# --- The suite itself -----------------------------------------------------------------------


def test_property_tests_are_derandomized_in_the_default_profile():
    # `make test` draws the same cases on every run; `make fuzz` draws fresh ones.
    assert settings.default.derandomize


# --- Numbers ---------------------------------------------------------------------------------


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_number_field_of_every_form_bounds_its_input(app):
    import wtforms

    unbounded, numbers = [], 0
    for form in _all_subclasses(FlaskForm):
        for name in dir(form):
            field = getattr(form, name, None)
            if not isinstance(field, UnboundField):
                continue
            kind = field.field_class
            number = issubclass(kind, wtforms.IntegerField | wtforms.DecimalField)
            number = number or issubclass(kind, wtforms.FloatField)
            bounded = issubclass(kind, citoyens.forms.IntegerField | citoyens.forms.DecimalField)
            numbers += number
            if number and not bounded:
                unbounded.append(f"{form.__module__}.{form.__name__}.{name}")
    assert numbers >= 5  # the walk does see the forms' number fields
    assert unbounded == []


@pytest.mark.parametrize("value", ["1" * 4000, "9" * (NUMBER_MAX_LENGTH + 1), "1e999999"])
def test_a_number_field_refuses_a_value_too_long_to_parse(app, value):
    class Form(FlaskForm):
        count = IntegerField(invalid_value_message="Saisissez un nombre.")

    with app.test_request_context(method="POST", data={"count": value}):
        form = Form(meta={"csrf": False})
        assert not form.validate()
        assert form.count.data is None
        assert form.count.errors == ["Saisissez un nombre."]


def test_a_4000_digit_family_quotient_is_a_french_error_not_a_500(app, client, auth, parent):
    # Found by the fuzz test with --hypothesis-seed=22: NumberRange overflowed (a 500).
    # The QF is declared on its own page since issue 11 (the household form ignores it).
    auth.login(parent)
    response = post(client, "/mon-foyer/modifier", {**HOUSEHOLD, "family_quotient": "1" * 4000})
    assert response.status_code in (200, 303)
    response = post(client, "/mon-foyer/quotient", {"family_quotient": "1" * 4000})
    assert response.status_code == 422
    assert "Le quotient familial doit être entre 0 et 99 999." in text(response)


# --- Dates in query strings: one shared parser -------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("", None), (" 2030-09-04 ", date(2030, 9, 2)), ("1900-01-01", date(1900, 1, 1))],
)
def test_the_week_parser_gives_the_monday_or_none(value, expected):
    assert parse_query_week(value) == expected


@pytest.mark.parametrize(
    "value", ["9999-12-31", "0001-01-01", "1899-12-31", "2201-01-01", "2030-02-30", "x", "\x00"]
)
def test_the_week_parser_refuses_dates_out_of_range_in_french(value):
    with pytest.raises(RefusedInput) as refused:
        parse_query_week(value)
    assert refused.value.code == 400 and "La semaine demandée" in refused.value.french_message


@pytest.mark.parametrize("value", ["9999-12", "0001-01", "2030-13", "2030-00", "2030-1", "²030-01"])
def test_the_month_parser_refuses_odd_months_in_french(value):
    with pytest.raises(RefusedInput, match="Le mois demandé"):
        parse_query_month(value)
    assert parse_query_month("2200-12") == date(2200, 12, 1)
    assert parse_query_month("") is None


# --- Control characters in any query string ------------------------------------------------------


def _query_pages(app):
    """Every GET page without a path argument (the access test walks the others)."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static"
    )


@pytest.mark.parametrize("query", [{"q": "Mart\x00in"}, {"mois": "\x00"}, {"x\x1b": "1"}])
def test_every_page_refuses_control_characters_in_its_query_string(app, client, auth, admin, query):
    auth.login(admin)
    pages = _query_pages(app)
    assert "/admin/familles" in pages and "/admin/inscriptions" in pages
    for path in pages:
        response = client.get(path, query_string=query)
        assert response.status_code == 400, path
        assert "caractères non autorisés" in text(response), path


@pytest.mark.parametrize("path", ["/admin/familles", "/admin/inscriptions", "/admin/factures"])
def test_staff_searches_with_nul_are_a_french_400(app, client, auth, staff, path):
    auth.login(staff)
    response = client.get(path, query_string={"q": "Du\x00pont"})
    assert response.status_code == 400
    assert "adresse de la page contient des caractères non autorisés." in text(response)


# --- NUL never reaches the database -----------------------------------------------------------


def test_a_nul_character_bound_to_a_statement_is_a_french_400_not_a_database_error(app):
    """Behind every form validator: PostgreSQL refuses NUL in any text (a 500 before);
    both engines now refuse it the same way, with the French reason, before sending."""
    from sqlalchemy import text as sql

    from citoyens.extensions import db
    from citoyens.forms import NUL_REFUSED, RefusedInput

    with app.app_context():
        with pytest.raises(RefusedInput) as refused:
            db.session.execute(sql("SELECT :value"), {"value": "Du\x00pont"})
        assert refused.value.code == 400 and refused.value.french_message == NUL_REFUSED
        db.session.rollback()
        with pytest.raises(RefusedInput):
            db.session.execute(sql("SELECT :a, :b"), [{"a": "x", "b": ["ok", "n\x00"]}][0])
        db.session.rollback()
        # Bytes (file contents) and ordinary text pass.
        assert db.session.execute(sql("SELECT :value"), {"value": "Dupont"}).scalar() == "Dupont"
