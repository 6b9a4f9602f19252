"""Back office landing page. Later issues add the queues and settings listed there."""

from __future__ import annotations

from flask import Blueprint

from citoyens.accounts.decorators import staff_required
from citoyens.web import render

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@staff_required
def guard():
    """Every /admin page: anonymous → login, parent → 403."""
    return None


@bp.get("/")
def index():
    return render("admin/index.html")
