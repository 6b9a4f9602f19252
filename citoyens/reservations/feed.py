"""The household's iCalendar feed of booked days and the reservation settings."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("calendar_feed", __name__)
