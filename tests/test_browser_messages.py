"""End to end on a phone: the demo parent has a message from the APS, unread. The navigation
and the dashboard say so; opening it marks it read (the page posts the receipt by htmx) and
the counter goes; every page fits the phone's width. Skipped without Playwright or Chromium.
"""

from __future__ import annotations

import re

import pytest

from tests import live
from tests.test_browser import chromium, phone  # noqa: F401 (fixtures)
from tests.test_browser_enrolment import PARENT, log_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app with the whole demo (the name matters: see tests/conftest.py)."""
    from citoyens.demo import seed
    from citoyens.extensions import db

    tmp = tmp_path_factory.mktemp("browser-messages")
    with live.serve(tmp, database="citoyens_browser_messages") as server:
        with server.app.app_context():
            seed()
            db.session.commit()
        yield server


def test_a_parent_reads_the_services_message_on_a_phone(live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    page = phone.page
    log_in(page, live_server.url, PARENT, "/tableau-de-bord")
    # On a phone, « Messages » is under « Plus » in the bottom bar, which shows the count.
    menu = page.get_by_role("navigation", name="Navigation principale")
    plus = menu.get_by_role("link", name="Plus 1 non lu", exact=True)
    expect(plus).to_be_visible()
    expect(page.locator("#messages-a-lire")).to_contain_text("1 message non lu")
    live.assert_fits_the_phone(page)

    plus.click()
    link = page.get_by_role("main").get_by_role("link", name="Messages 1 non lu", exact=True)
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Messages")
    item = page.locator(".msg-item.msg-unread")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Nouveau")
    live.assert_fits_the_phone(page)

    item.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("l'accueil périscolaire est fermé")
    # The receipt is posted once the page is shown: « Lu le … », and the counter is gone.
    expect(page.locator("#etat-lecture")).to_contain_text(re.compile(r"Lu le \d{2}/\d{2}/\d{4}"))
    expect(menu.get_by_role("link", name="Plus", exact=True)).to_be_visible()
    live.assert_fits_the_phone(page)

    page.go_back()
    page.reload()
    expect(page.locator(".msg-item.msg-unread")).to_have_count(0)
    expect(page.get_by_role("button", name="Tout marquer comme lu")).to_have_count(0)
    assert phone.errors == []
