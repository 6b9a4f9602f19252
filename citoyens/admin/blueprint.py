"""The staff blueprint (`admin`, under /admin) and its guard.

Each domain registers its staff pages on this one blueprint from its own `staff_*.py`
modules (DESIGN.md "Architecture"), so every endpoint stays `admin.<name>`;
`citoyens.register_blueprints` imports them.
"""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import staff_required
from citoyens.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1


@bp.before_request
@staff_required
def guard():
    """Every /admin page: anonymous → login, parent → 403."""
    return None


def get_or_404(model, record_id: int):
    """The row of `model` with this id, or 404 (also for ids beyond a 32-bit integer)."""
    record = db.session.get(model, record_id) if record_id <= MAX_ID else None
    if record is None:
        abort(404)
    return record


def form_status(form) -> int:
    """422 for a form posted back with errors, 200 for a fresh one."""
    return 422 if form.is_submitted() else 200


def deny(target: str):
    """Another service's data: the same 404 as a missing one, and a line in the audit."""
    audit.record("access.denied", actor=current_user, target=target)
    db.session.commit()
    abort(404)


def visible_or_deny(record, allowed: bool, target: str):
    """A record found by a scoped rule (`record, allowed`): 404 when missing, `deny` when
    outside the agent's services, else the record."""
    if record is None:
        abort(404)
    if not allowed:
        deny(target)
    return record
