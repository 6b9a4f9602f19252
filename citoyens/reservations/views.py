"""Réservations: the family's calendars (being written)."""

from __future__ import annotations

from flask import Blueprint, abort

from citoyens.accounts.decorators import parent_required

bp = Blueprint("reservations", __name__, url_prefix="/reservations")


@bp.get("/")
@parent_required
def index():
    abort(404)


@bp.get("/enfant/<int:child_id>")
@parent_required
def month(child_id: int):
    abort(404)
