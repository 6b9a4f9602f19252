"""A local simulated bank for development and tests (PAYMENT_BACKEND=simulated)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bank_sim", __name__, url_prefix="/banque-simulee")
