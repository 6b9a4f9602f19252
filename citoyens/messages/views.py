"""Family pages of the messages: the list (« Messages »), one message, marking read.

Opening a message is a GET and changes nothing; the page then marks it read with a small
POST (htmx, as soon as it is shown; without JavaScript, the « Marquer comme lu » button).
A message the household did not receive answers 404, for GET and POST alike.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import parent_required
from citoyens.extensions import db
from citoyens.messages import operations as ops
from citoyens.messages import rules
from citoyens.web import is_htmx_fragment_request, render

bp = Blueprint("messages", __name__)

MAX_ID = 2**31 - 1


def unread_messages() -> int:
    """The logged-in family's unread messages (the navigation, the dashboard): one query per
    page at most, none for staff or visitors."""
    if not (current_user.is_authenticated and current_user.role == "parent"):
        return 0
    if current_user.household_id is None:
        return 0
    if "unread_messages" not in g:
        g.unread_messages = rules.unread_count(current_user.household_id)
    return g.unread_messages


@bp.app_context_processor
def unread_messages_in_templates():
    return {"unread_messages": unread_messages}


def _received_or_404(message_id: int) -> rules.Received:
    found = rules.received(message_id, current_user.household_id) if message_id <= MAX_ID else None
    if found is None:
        abort(404)
    return found


@bp.get("/mes-messages")
@parent_required
def index():
    page = request.args.get("page", 1, type=int) or 1
    return render("messages/index.html", inbox=rules.inbox(current_user.household_id, page))


@bp.get("/mes-messages/<int:message_id>")
@parent_required
def show(message_id: int):
    return render("messages/show.html", item=_received_or_404(message_id), fragment=False)


@bp.post("/mes-messages/<int:message_id>/lu")
@parent_required
def read(message_id: int):
    _received_or_404(message_id)
    ops.mark_read(message_id, current_user.household_id)
    db.session.commit()
    g.pop("unread_messages", None)
    if is_htmx_fragment_request():
        item = _received_or_404(message_id)
        return render("messages/show.html", block="read_state", item=item, fragment=True)
    return redirect(url_for("messages.show", message_id=message_id), 303)


@bp.post("/mes-messages/lu")
@parent_required
def read_all():
    count = ops.mark_all_read(current_user.household_id)
    db.session.commit()
    if count:
        plural = "s" if count > 1 else ""
        flash(f"{count} message{plural} marqué{plural} comme lu{plural}.", "success")
    return redirect(url_for("messages.index"), 303)
