"""The calendar on a phone (issue 16), server side: the month holding today opens on this
week (its anchor, the weeks before it folded), other months are whole, and the planner
shows the estimated total of the period above its confirm button.

The browser half (the week in the first screen, the page's height) is in
tests/test_browser_calendar_phone.py.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from citoyens.billing.money import euros
from citoyens.reservations import rules, views
from tests.billing_factories import BANDS, make_bands, make_prices
from tests.conftest import post
from tests.reservations_factories import (
    EARLY,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
)

TODAY = date(2030, 12, 19)  # a Thursday: the weeks of 2 and 9 December are past
MONTH = "2030-12"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """Today is 19 December 2030; the cut-offs are read on 1 June 2030 (all open)."""
    monkeypatch.setattr(rules, "now_utc", lambda: EARLY)
    monkeypatch.setattr(views, "today_in_paris", lambda: TODAY)


@pytest.fixture
def family(app, parent):
    offer = make_bookable_offer(app, activities=2, capacity=3)
    children = children_of(app, parent.household_id)
    for child_id in children:
        enrol_accepted(app, parent.household_id, child_id, offer)
    return offer, children


def month_page(client, child_id, **query) -> str:
    response = client.get(f"/reservations/enfant/{child_id}", query_string=query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_month_of_today_opens_on_this_week_with_the_past_weeks_folded(
    app, client, auth, parent, family
):
    _offer, (child, _sibling) = family
    auth.login(parent)
    html = month_page(client, child, mois=MONTH)
    folded = re.search(
        r'<details class="rv-past card">\s*<summary>Semaines passées \(2\)</summary>'
        r"(.*?)</details>",
        html,
        re.S,
    )
    assert folded, "the past weeks are not folded in a closed <details>"
    assert 'id="semaine-2030-12-02"' in folded.group(1)
    assert 'id="semaine-2030-12-09"' in folded.group(1)
    assert 'id="semaine-2030-12-16"' not in folded.group(1)
    # The anchor stands right before this week's form, after the folded weeks.
    assert html.count('id="cette-semaine"') == 1
    anchor = html.index('id="cette-semaine"')
    assert folded.end() < anchor < html.index('id="semaine-2030-12-16"')
    assert "cette semaine</span>" in html[anchor:]
    # Today's day is marked, and the child tabs keep the anchor.
    assert 'class="rv-day rv-today"' in html
    assert f'mois={MONTH}#cette-semaine"' in html


def test_another_month_is_whole_and_its_links_lead_back_to_this_week(
    app, client, auth, parent, family
):
    _offer, (child, _sibling) = family
    auth.login(parent)
    html = month_page(client, child, mois="2031-01")
    assert '<details class="rv-past' not in html
    assert 'id="cette-semaine"' not in html
    assert "Semaines passées" not in html
    # « Mois précédent » leads to December, the month of today: on this week.
    assert f'href="/reservations/enfant/{child}?mois={MONTH}#cette-semaine" rel="prev"' in html
    november = month_page(client, child, mois="2030-11")
    assert f'href="/reservations/enfant/{child}?mois={MONTH}#cette-semaine" rel="next"' in november
    assert 'id="cette-semaine"' not in november and "Semaines passées" not in november
    # The week view is never folded either.
    week = month_page(client, child, semaine="2030-12-16")
    assert "Semaines passées" not in week and 'id="cette-semaine"' not in week
    # The index links each calendar to this week.
    index = client.get("/reservations/").get_data(as_text=True)
    assert f'href="/reservations/enfant/{child}?mois={MONTH}#cette-semaine"' in index


def test_a_day_with_nothing_to_do_is_one_quiet_line(app, client, auth, parent, family, monkeypatch):
    """Past its cut-off and not booked: the day is muted (no checkbox, no link)."""
    from datetime import UTC, datetime

    offer, (child, _sibling) = family
    monkeypatch.setattr(rules, "now_utc", lambda: datetime(2030, 12, 1, 12, tzinfo=UTC))
    auth.login(parent)
    html = month_page(client, child, semaine="2030-12-02")
    days = re.findall(r'<div class="rv-day([^"]*)">', html)
    # Monday 2 and Tuesday 3 are past their cut-off; Thursday 5 and Friday 6 are open.
    assert days == [" rv-quiet", " rv-quiet", "", ""], days
    quiet = html[html.index("rv-quiet") : html.index('<div class="rv-day">')]
    assert 'type="checkbox"' not in quiet and "<a " not in quiet
    assert 'type="checkbox"' in html[html.index('<div class="rv-day">') :]
    first_id = day_ids(app, offer.activity_ids[0], date(2030, 12, 2))[0][0]
    assert f'class="rv-cell rv-locked" id="cellule-{first_id}"' in html


def figure(text: str) -> int:
    """ "1 234,50 €" → 123450."""
    digits = re.sub(r"[^\d,]", "", text)
    whole, _, cents = digits.partition(",")
    return int(whole) * 100 + int(cents or 0)


def plan_data(offer, children, **extra):
    data = {
        "enfants": [str(c) for c in children],
        "activites": [str(a) for a in offer.activity_ids],
        "jours": ["1", "2", "4", "5"],
        "du": "2030-09-01",
        "au": "2031-08-31",
        "etape": "apercu",
    }
    data.update(extra)
    return data


def test_the_planner_shows_the_total_of_its_lines_above_the_confirm_button(
    app, client, auth, parent, family
):
    offer, children = family
    bands = make_bands(app, offer.year_id)
    make_prices(app, offer.activity_ids[0], bands)  # top band (QF unknown): 5,00 €
    make_prices(app, offer.activity_ids[1], bands, factor=3)  # 15,00 €
    top = BANDS[-1][2]
    days = [len(day_ids(app, activity_id)) for activity_id in offer.activity_ids]
    expected_cents = len(children) * (days[0] * top + days[1] * 3 * top)
    expected_days = len(children) * sum(days)

    auth.login(parent)
    html = post(client, "/reservations/planifier", plan_data(offer, children)).get_data(
        as_text=True
    )
    lines = [figure(x) for x in re.findall(r"Coût estimé : <strong>≈ ([^<]+)</strong>", html)]
    assert len(lines) == len(children) * len(offer.activity_ids)
    assert sum(lines) == expected_cents
    total = f"Total estimé : {euros(expected_cents)} pour {expected_days} jours"
    assert total in html
    assert "la facture est mensuelle" in html
    # Above the confirm button, below the lines.
    assert html.rindex("Coût estimé") < html.index(total) < html.index("Confirmer et réserver")


def test_days_without_a_tariff_are_said_apart_from_the_total(app, client, auth, parent, family):
    offer, children = family
    bands = make_bands(app, offer.year_id)
    make_prices(app, offer.activity_ids[0], bands)  # the second activity has no price
    days = [len(day_ids(app, activity_id)) for activity_id in offer.activity_ids]
    auth.login(parent)
    html = post(client, "/reservations/planifier", plan_data(offer, children)).get_data(
        as_text=True
    )
    cents = len(children) * days[0] * BANDS[-1][2]
    assert (
        f"Total estimé : {euros(cents)} pour {len(children) * days[0]} jours</strong>, "
        f"plus {len(children) * days[1]} jours sans tarif connu"
    ) in html


def test_without_any_tariff_the_total_says_so(app, client, auth, parent, family):
    offer, children = family
    auth.login(parent)
    html = post(client, "/reservations/planifier", plan_data(offer, children)).get_data(
        as_text=True
    )
    assert "Total estimé : pas de tarif connu pour ces jours" in html
    assert "Confirmer et réserver" in html
