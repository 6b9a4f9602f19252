"""The audit log viewer (/admin/journal): administrators only, filters, pages, CSV export
with formulas neutralised, and the 12-month retention purge of what it shows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.admin import audit_log
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.retention import purge
from tests.factories import make_user
from tests.test_admin_reservations import login


def add_event(app, action, *, actor=None, target=None, at=None, details=None, ip="192.0.2.7"):
    with app.app_context():
        event = AuditEvent(
            action=action,
            actor_id=getattr(actor, "id", None),
            target=target,
            ip=ip,
            details=details,
            created_at=at or datetime.now(UTC),
        )
        db.session.add(event)
        db.session.commit()
        return event.id


def rows(response) -> list[list[str]]:
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_agents_and_parents_are_refused(app, staff, parent):
    for account in (staff, parent):
        client = login(app, account)
        assert client.get("/admin/journal").status_code == 403
        assert client.get("/admin/journal.csv").status_code == 403


def test_admin_reads_who_what_when_target(app, admin):
    agent = make_user(app, role="staff", email="claire.agent@example.org")
    add_event(
        app,
        "request.status",
        actor=agent,
        target="request:42",
        at=datetime(2030, 9, 3, 8, 5, tzinfo=UTC),
    )
    response = login(app, admin).get("/admin/journal")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "claire.agent@example.org" in text
    assert "request.status" in text and "Demande traitée" in text
    assert "03/09/2030 à 10:05" in text  # Europe/Paris
    assert "request:42" in text and "192.0.2.7" in text
    assert "12 mois" in text


def test_filters(app, admin):
    claire = make_user(app, role="staff", email="claire@example.org")
    marc = make_user(app, role="staff", email="marc@example.org")
    add_event(app, "login", actor=claire, at=datetime(2030, 9, 1, 22, 30, tzinfo=UTC))
    add_event(app, "login.failed", actor=marc, at=datetime(2030, 9, 2, 9, tzinfo=UTC))
    add_event(
        app,
        "request.status",
        actor=claire,
        target="request:7",
        at=datetime(2030, 9, 5, 9, tzinfo=UTC),
    )
    add_event(app, "signup", target="household:77", at=datetime(2030, 9, 6, 9, tzinfo=UTC))
    with app.app_context():

        def actions(**args):
            return [r.event.action for r in audit_log.page(audit_log.Filters(**args)).rows]

        assert actions(actor="claire") == ["request.status", "login"]
        assert actions(action="login") == ["login.failed", "login"]
        assert actions(action="login.failed") == ["login.failed"]
        assert actions(target="request:") == ["request.status"]
        # 22:30 UTC on 1 September is 2 September in Paris.
        day = datetime(2030, 9, 2).date()
        assert actions(start=day, end=day) == ["login.failed", "login"]
        assert actions(actor="%") == []  # a LIKE wildcard is a plain character
    client = login(app, admin)
    text = client.get("/admin/journal?auteur=marc&du=2030-09-01&au=2030-09-30").get_data(
        as_text=True
    )
    assert "login.failed" in text and "request:7" not in text


def test_bad_dates_are_a_french_400(app, admin):
    client = login(app, admin)
    response = client.get("/admin/journal?du=2030-02-30")
    assert response.status_code == 400
    assert "n&#39;existe pas" in response.get_data(as_text=True) or "n'existe pas" in (
        response.get_data(as_text=True)
    )
    response = client.get("/admin/journal?du=2030-09-10&au=2030-09-01")
    assert response.status_code == 400
    assert client.get("/admin/journal?apres=99999999999999999999").status_code == 200


def test_pages_newest_first(app, admin):
    start = datetime(2030, 9, 1, tzinfo=UTC)
    ids = [
        add_event(app, "page.test", target=f"n:{n}", at=start + timedelta(minutes=n))
        for n in range(audit_log.PAGE_SIZE + 5)
    ]
    client = login(app, admin)
    first = client.get("/admin/journal?action=page.test").get_data(as_text=True)
    assert f"n:{audit_log.PAGE_SIZE + 4}<" in first and "n:4<" not in first
    assert f"apres={ids[5]}" in first
    second = client.get(f"/admin/journal?action=page.test&apres={ids[5]}").get_data(as_text=True)
    assert "n:4<" in second and "n:0<" in second and "n:5<" not in second
    assert "Événements plus anciens" not in second


def test_csv_export_neutralises_formulas(app, admin):
    evil = make_user(app, role="staff", email="evil@example.org")
    with app.app_context():
        db.session.get(User, evil.id).first_name = "=HYPERLINK(1)"
        db.session.commit()
    add_event(app, "request.status", actor=evil, target="+cmd", details="@SUM(A1)")
    add_event(app, "signup", target="-2+3")
    client = login(app, admin)
    response = client.get("/admin/journal.csv?action=request")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = rows(response)
    assert lines[0][0] == "Date"
    assert len(lines) == 2  # the filter applies
    cells = lines[1]
    assert cells[1].startswith("'=HYPERLINK(1)")
    assert "'+cmd" in cells and "'@SUM(A1)" in cells
    for row in rows(client.get("/admin/journal.csv")):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    with app.app_context():
        assert (
            db.session.scalar(select(func.count()).where(AuditEvent.action == "audit.exported"))
            == 2
        )


def test_retention_purges_what_the_log_shows(app, admin):
    old = datetime.now(UTC) - timedelta(days=400)
    add_event(app, "login", target="cible-vieille", at=old)
    add_event(app, "login", target="cible-neuve")
    with app.app_context():
        purge(datetime.now(UTC))
        db.session.commit()
    text = login(app, admin).get("/admin/journal?action=login").get_data(as_text=True)
    assert "cible-neuve" in text and "cible-vieille" not in text
