"""Family pages of the requests domain."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("requests", __name__)
