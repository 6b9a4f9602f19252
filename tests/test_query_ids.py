"""Ids and numbers typed in a URL: a huge number, a Unicode digit, a negative one are
never a 500 (SQLite and PostgreSQL refuse integers out of their range)."""

from __future__ import annotations

import pytest

from tests.factories import make_user

BAD = ["99999999999999999999", "3000000000", "²", "-1", "0", "1.5", "x"]

STAFF_PAGES = [
    "/admin/inscriptions?service={v}&year={v}&page={v}",
    "/admin/demandes?service={v}&page={v}",
    "/admin/familles?page={v}",
    "/admin/inscriptions/nouvelle?foyer={v}",
    "/admin/reservations?service={v}",
    "/admin/calendrier?annee={v}",
]
PARENT_PAGES = [
    "/reservations/planifier?enfant={v}",
    "/reservations/enfant/1?mois={v}-{v}",
]


@pytest.mark.parametrize("value", BAD)
def test_staff_pages_survive_bad_numbers(app, client, auth, admin, value):
    auth.login(admin)
    for page in STAFF_PAGES:
        response = client.get(page.format(v=value))
        assert response.status_code in (200, 404), (page, value, response.status_code)


@pytest.mark.parametrize("value", BAD)
def test_parent_pages_survive_bad_numbers(app, client, auth, value):
    parent = make_user(app, children=1)
    auth.login(parent)
    for page in PARENT_PAGES:
        response = client.get(page.format(v=value))
        assert response.status_code in (200, 404), (page, value, response.status_code)
