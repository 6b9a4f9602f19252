"""Mes factures: the family's invoices (blueprint `billing`); being written."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("billing", __name__)
