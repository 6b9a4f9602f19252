"""Odd inputs are refused in French, never a 500: numbers too long to parse, dates out of
range in query strings, control characters in any field (SECURITY.md "Input and files").
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import pytest
from flask_wtf import FlaskForm
from hypothesis import settings
from wtforms.fields.core import UnboundField

import citoyens.forms
from citoyens.forms import NUMBER_MAX_LENGTH, IntegerField
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
    auth.login(parent)
    response = post(client, "/mon-foyer/modifier", {**HOUSEHOLD, "family_quotient": "1" * 4000})
    assert response.status_code == 422
    assert "Saisissez le quotient familial en chiffres" in text(response)
