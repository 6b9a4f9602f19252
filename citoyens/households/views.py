"""Family pages of the households domain."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("households", __name__)
