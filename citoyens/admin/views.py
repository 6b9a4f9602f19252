"""Back office landing page: what waits for this agent, and the way to each section."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user
from sqlalchemy import func, select

from citoyens.admin.blueprint import bp
from citoyens.config import demo_settings
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.requests.models import OPEN_STATUSES, Request
from citoyens.services import scope
from citoyens.web import render


def waiting_counts(user) -> dict[str, int]:
    """Open requests in the agent's queues, documents to check, families: three counts."""
    open_requests = select(func.count(Request.id)).where(
        Request.status.in_(OPEN_STATUSES), scope.request_filter(user)
    )
    return {
        "requests": db.session.scalar(open_requests),
        "documents": db.session.scalar(
            select(func.count(Document.id)).where(
                Document.status == "pending",
                Document.replaced_at.is_(None),
                scope.document_filter(user),
            )
        ),
        "households": db.session.scalar(
            select(func.count(Household.id)).where(scope.household_filter(Household.id, user))
        ),
    }


@bp.get("/")
def index():
    config = current_app.config
    # Administrators see the settings still holding their example value (production).
    demo = demo_settings(config) if config["PRODUCTION"] and current_user.is_admin else []
    return render("admin/index.html", counts=waiting_counts(current_user), demo_settings=demo)
