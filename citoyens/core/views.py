"""Public pages, the family dashboard and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, url_for
from flask_login import current_user
from sqlalchemy import text

from citoyens.accounts.decorators import parent_required
from citoyens.core.next_steps import next_steps
from citoyens.documents.rules import checklist as documents_checklist
from citoyens.documents.rules import summarize as documents_summary
from citoyens.documents.rules import today_in_paris
from citoyens.extensions import db
from citoyens.households.rules import overview_and_checklist
from citoyens.requests.rules import open_requests_for_household
from citoyens.reservations.rules import now_utc
from citoyens.web import render

bp = Blueprint("core", __name__)


@bp.get("/")
def home():
    if current_user.is_authenticated:
        if current_user.is_staff:
            return redirect(url_for("admin.index"))
        return redirect(url_for("core.dashboard"))
    return render("pages/home.html")


@bp.get("/tableau-de-bord")
@parent_required
def dashboard():
    household_id = current_user.household_id
    today = today_in_paris()
    overview, steps = overview_and_checklist(household_id)
    sections = documents_checklist(household_id, today, overview.children)
    documents = documents_summary(sections)
    steps["documents_up_to_date"] = documents["up_to_date"]
    upcoming = next_steps(
        household_id,
        sections=sections,
        has_children=bool(overview.children),
        today=today,
        now=now_utc(),
    )
    return render(
        "pages/dashboard.html",
        overview=overview,
        steps=steps,
        documents=documents,
        next_steps=upcoming,
        open_requests=open_requests_for_household(household_id),
    )


@bp.get("/plus")
@parent_required
def more():
    """On a phone, the places the bottom bar has no room for (the desktop menu has them)."""
    return render("pages/more.html")


@bp.get("/accessibilite")
def accessibility():
    return render("pages/accessibility.html")


@bp.get("/donnees-personnelles")
def privacy():
    return render("pages/privacy.html")


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 otherwise; for load balancers and monitoring."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not healthy"
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
