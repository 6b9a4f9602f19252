"""Family pages of the documents domain."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("documents", __name__)
