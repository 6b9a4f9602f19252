"""The accessibility statement (/accessibilite): the RGAA's required parts, and the footer's
mention on every page saying the same state as the statement."""

from __future__ import annotations

import re

from citoyens.core.models import Commune
from citoyens.extensions import db

STATES = ("totalement conforme", "partiellement conforme", "non conforme")


def test_the_statement_gives_the_state_date_tests_gaps_and_contact(app, client):
    with app.app_context():
        db.session.add(
            Commune(
                name="Chalonnes-sur-Loire",
                address="Place de l'Hôtel de Ville, 49290 Chalonnes-sur-Loire",
                contact_email="mairie@example.org",
                phone="+33241744410",
            )
        )
        db.session.commit()
    response = client.get("/accessibilite")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    article = html[html.index("<article") : html.index("</article>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", article))

    # One state, the one the RGAA imposes without a full audit, and the footer agrees.
    said = [state for state in STATES if f"est {state}" in text]
    assert said == ["non conforme"], said
    assert "RGAA), version 4.1.2" in text
    footer = html[html.index("<footer") :]
    assert "Accessibilité : non conforme" in footer
    # The date of the tests, machine-readable; what was tested; what is not accessible.
    assert re.search(r'<time datetime="\d{4}-\d{2}-\d{2}">', article)
    for tested in ("Nu Html Checker", "axe-core", "clavier seul", "Lighthouse"):
        assert tested in text, tested
    assert re.search(r"aucune erreur sur les \d+ pages", text), text
    assert re.search(r"performance de \d+ à \d+/100", text), text
    assert "Contenus non accessibles" in text and "PDF" in text
    # How to reach the commune: e-mail, phone, address, as links where they can be.
    assert 'href="mailto:mairie@example.org"' in article
    assert 'href="tel:+33241744410"' in article
    assert "Place de l'Hôtel de Ville" in text or "Place de l&#39;Hôtel de Ville" in text
    assert "Défenseur des droits" in text


def test_the_statement_without_contact_details_still_says_where_to_go(client):
    response = client.get("/accessibilite")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "mailto:" not in html[html.index("<article") : html.index("</article>")]
    assert "l'accueil de la mairie" in html or "l&#39;accueil de la mairie" in html
