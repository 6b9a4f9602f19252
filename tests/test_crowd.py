"""40 parents log in at the same moment: no request fails (issue 12, "holds a crowd").

Real HTTP requests to a threaded werkzeug server on a database of its own (a SQLite
file by default, as `make run` has it; PostgreSQL under TEST_DATABASE_URL). The tests'
argon2 is cheap, so the verification sleeps as long as a real one (~0.1 s): it is the
time a login spends between reading the account and writing its traces that let
writers collide on SQLite.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from citoyens.accounts import passwords
from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from tests.crowd import crowd_logs_in
from tests.factories import PASSWORD, make_user
from tests.live import serve

CROWD = 40
ARGON2_SECONDS = 0.1  # a real argon2 verification, as on the default settings


@pytest.fixture
def slow_hashing(monkeypatch):
    """The tests' cheap argon2, taking as long as the real one (the GIL is released)."""
    hasher = passwords._hasher
    verify = hasher.verify

    class SlowHasher:
        def __getattr__(self, name):
            return getattr(hasher, name)

        def verify(self, password_hash, password):
            time.sleep(ARGON2_SECONDS)
            return verify(password_hash, password)

    monkeypatch.setattr(passwords, "_hasher", SlowHasher())


@pytest.mark.own_database
def test_forty_parents_logging_in_at_once_all_get_their_pages(tmp_path, slow_hashing):
    with serve(tmp_path, database="crowd") as server:
        accounts = [
            (make_user(server.app, email=f"foule{n}@example.org").email, PASSWORD)
            for n in range(CROWD)
        ]
        port = int(server.url.rsplit(":", 1)[1])
        result = crowd_logs_in(port, accounts, timeout=20)

        assert result.failed == [], f"{len(result.failed)} failed requests: {result.statuses}"
        assert len(result.requests) == 4 * CROWD
        # Each login really logged in: it leads to the dashboard, which answers 200.
        assert result.statuses == {200: 3 * CROWD, 303: CROWD}
        with server.app.app_context():
            logged_in = db.session.scalar(
                select(func.count()).select_from(User).where(User.last_login_at.is_not(None))
            )
            audited = db.session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "login")
            )
        assert (logged_in, audited) == (CROWD, CROWD)


# --- the login's two steps, and a failed request -------------------------------------------


def test_a_password_changed_between_check_and_write_does_not_log_in(app, parent):
    from citoyens.accounts import operations as ops

    with app.app_context():
        attempt = ops.check_credentials(parent.email, parent.password)
        assert attempt.ok
        ops.set_password(db.session.get(User, parent.id), "une toute nouvelle phrase secrète")
        db.session.commit()
        result = ops.record_login(attempt)
        db.session.commit()
        assert result.user is None
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "login.failed" in actions and "login" not in actions


def test_a_login_whose_request_fails_late_leaves_the_browser_logged_out(
    client, auth, parent, monkeypatch
):
    """The database fails after the session was started: the 503 carries no logged-in
    session (the error handler gives back the session as the browser sent it)."""
    from sqlalchemy.exc import OperationalError

    from citoyens.accounts import views

    def locked(_user):
        raise OperationalError("UPDATE users", {}, Exception("database is locked"))

    monkeypatch.setattr(views, "home_for", locked)
    response = auth.login(parent)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert client.get("/tableau-de-bord").status_code == 302
