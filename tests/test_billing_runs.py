"""The monthly invoice run on the job queue: « Émettre » queues it, the page follows its
progress (htmx, every 2 s) and shows its result; a second click while it runs starts
nothing; a failed run says why."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from citoyens import jobs
from citoyens.billing import tasks as billing_tasks
from citoyens.billing.models import Invoice
from citoyens.core.models import JobRun
from citoyens.extensions import db
from citoyens.households.models import Household
from tests.conftest import AuthActions, post
from tests.test_admin_billing import OCTOBER, september_bookings
from tests.test_billing_rules import make_world
from tests.test_outbox import queued_app, run_queue  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def october(monkeypatch):
    monkeypatch.setattr("citoyens.billing.staff_run.today_in_paris", lambda: OCTOBER)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def runs(app) -> list[JobRun]:
    with app.app_context():
        found = db.session.scalars(select(JobRun).order_by(JobRun.id)).all()
        for run in found:
            db.session.expunge(run)
        return found


def test_issue_queues_the_run_and_the_page_follows_it(queued_app, admin):  # noqa: F811
    app = queued_app(MAIL_SUPPRESS_SEND=True)
    world = make_world(app)
    september_bookings(app, world)
    september_bookings(app, world, paperless=False)
    client = app.test_client()
    AuthActions(client).login(admin)
    response = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "Émission des factures lancée" in page
    (run,) = runs(app)
    assert (run.status, run.key, run.actor_id) == ("queued", "2030-09", admin.id)
    fragment = f"/admin/facturation/emissions/{run.id}"
    assert f'data-hx-get="{fragment}"' in page and 'data-hx-trigger="every 2s"' in page
    assert 'aria-live="polite"' in page and "En file d&#39;attente" not in page
    assert "En file d'attente" in page

    again = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert "déjà en cours" in text(client.get(again.headers["Location"]))
    assert len(runs(app)) == 1  # the second click started nothing
    with app.app_context():
        assert jobs.counts()["queued"] == 1
        assert db.session.scalar(select(func.count(Invoice.id))) == 0  # not run yet

        # While it runs, the fragment shows how far it got.
        db.session.execute(JobRun.__table__.update().values(status="running"))
        db.session.commit()
        jobs.huey.put(billing_tasks.progress_key(run.id), (1, 2))
    running = text(client.get(fragment, headers={"HX-Request": "true"}))
    assert "1 famille traitée sur 2" in running and 'data-hx-trigger="every 2s"' in running
    with app.app_context():
        db.session.execute(JobRun.__table__.update().values(status="queued"))
        db.session.commit()

    run_queue(app)  # the worker
    (run,) = runs(app)
    assert run.status == "done" and run.started_at and run.finished_at
    assert (run.done, run.total) == (2, 2)
    done = text(client.get(fragment, headers={"HX-Request": "true"}))
    assert "2 factures de septembre 2030 émises pour 12,00\xa0€" in done
    assert "1 envoyée par e-mail, 1 sur papier à imprimer" in done
    assert "data-hx-trigger" not in done  # polling stops
    with app.app_context():
        assert db.session.scalar(select(func.count(Invoice.id))) == 2


def test_a_failed_run_says_why_and_can_be_started_again(app, client, auth, admin, monkeypatch):
    world = make_world(app)
    september_bookings(app, world)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("citoyens.billing.invoice_run.issue_month", broken)
    auth.login(admin)
    response = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    page = text(client.get(response.headers["Location"]))
    assert "Erreur inattendue" in page and "disk full" not in page
    (run,) = runs(app)
    assert run.status == "failed" and run.finished_at
    monkeypatch.undo()
    monkeypatch.setattr("citoyens.billing.staff_run.today_in_paris", lambda: OCTOBER)
    again = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert "1 facture de septembre 2030 émise" in text(client.get(again.headers["Location"]))
    assert [run.status for run in runs(app)] == ["failed", "done"]


def test_the_run_status_is_for_staff(app, client, auth, parent, staff, admin):
    with app.app_context():
        run = JobRun(kind=billing_tasks.INVOICE_RUN, key="2030-09", status="done", summary="Fait.")
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    path = f"/admin/facturation/emissions/{run_id}"
    assert client.get(path).status_code == 302  # anonymous: login
    auth.login(parent)
    assert client.get(path).status_code == 403
    auth.logout()
    auth.login(staff)
    page = text(client.get(path))  # opened directly: a page
    assert "Fait." in page and "<h1>Émission des factures 2030-09</h1>" in page
    fragment = text(client.get(path, headers={"HX-Request": "true"}))  # polled: the fragment
    assert "Fait." in fragment and "<html" not in fragment
    assert client.get("/admin/facturation/emissions/999999").status_code == 404
    assert client.get("/admin/facturation/emissions/99999999999").status_code == 404


def test_a_run_that_crashed_half_way_resumes_where_it_stopped(
    app, client, auth, admin, monkeypatch
):
    """Batches of 3 households; the third batch crashes: the first two stay committed, the
    run says so, and the next run resumes after them: every household billed once, the
    numbers gapless."""
    from citoyens.billing import invoice_run
    from citoyens.billing.models import InvoiceCounter

    world = make_world(app)
    households = [september_bookings(app, world).household_id for _ in range(8)]
    monkeypatch.setattr(invoice_run, "BATCH_SIZE", 3)
    real_batch = invoice_run._issue_batch
    calls = []

    def crashing(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(invoice_run, "_issue_batch", crashing)
    auth.login(admin)
    response = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    page = text(client.get(response.headers["Location"]))
    (failed,) = runs(app)
    assert failed.status == "failed"
    assert failed.resume_after == calls[1][1]  # the last household of the second batch
    with app.app_context():
        billed = db.session.scalars(select(Invoice.household_id)).all()
        total = db.session.scalar(select(func.count()).select_from(Household))
        scanned = db.session.scalar(select(func.count()).where(Household.id <= failed.resume_after))
    assert len(billed) == 6 and set(billed) <= set(households)
    assert (failed.done, failed.total) == (scanned, total) and 6 <= scanned < total
    assert f"Les factures des {failed.done} premières familles sur {total}" in page

    monkeypatch.setattr(invoice_run, "_issue_batch", real_batch)
    calls.clear()
    again = post(client, "/admin/facturation/emettre", {"mois": "2030-09"})
    assert "2 factures de septembre 2030 émises" in text(client.get(again.headers["Location"]))
    first, second = runs(app)
    assert second.status == "done" and second.resume_after == households[-1]
    with app.app_context():
        rows = db.session.execute(
            select(Invoice.household_id, Invoice.sequence).order_by(Invoice.sequence)
        ).all()
        counter = db.session.get(InvoiceCounter, 2030).last_number
    assert sorted(household for household, _ in rows) == sorted(households)  # once each
    assert [sequence for _, sequence in rows] == list(range(1, 9)) and counter == 8
