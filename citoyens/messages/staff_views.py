"""Back office: messages to families. Write one (form, preview, « Envoyer »), the list of
those sent, one message with how many families received, were e-mailed and read it.

An agent writes to the families of the services they work for, and sees those services'
messages; another service's message, closure or day answers 404 (audited). An agent
with no service sees the form's explanation and cannot send (403).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.admin.blueprint import MAX_ID, bp, deny, visible_or_deny
from citoyens.extensions import db
from citoyens.forms import parse_id, today_in_paris
from citoyens.messages import audience, rules
from citoyens.messages import operations as ops
from citoyens.messages.forms import MessageForm, closure_draft, day_draft
from citoyens.messages.models import AUDIENCES, MESSAGE_STATUSES
from citoyens.reservations import staff as reservations_staff
from citoyens.reservations.models import Closure
from citoyens.services.scope import may_act_for_service
from citoyens.transactions import write_transaction
from citoyens.web import render


@bp.get("/messages", endpoint="messages")
def message_list():
    page = request.args.get("page", 1, type=int) or 1
    return render(
        "admin/messages/index.html",
        sent=rules.sent_messages(current_user, page),
        statuses=MESSAGE_STATUSES,
    )


@bp.get("/messages/<int:message_id>", endpoint="message")
def message_detail(message_id: int):
    message, allowed = (
        rules.message_for_staff(current_user, message_id) if message_id <= MAX_ID else (None, False)
    )
    visible_or_deny(message, allowed, f"message:{message_id}")
    return render(
        "admin/messages/show.html",
        message=message,
        read=rules.read_counts([message.id]).get(message.id, 0),
        audiences=AUDIENCES,
        statuses=MESSAGE_STATUSES,
    )


def _asked_id(name: str) -> int | None:
    """?fermeture=<id> / ?jour=<id>: the id, None when absent; anything else is a 404."""
    raw = request.args.get(name)
    if raw is None:
        return None
    wanted = parse_id(raw)
    if wanted is None:
        abort(404)
    return wanted


def _draft() -> dict:
    """The form's first values: from a closure (?fermeture=) or a day's page (?jour=)."""
    closure_id = _asked_id("fermeture")
    if closure_id is not None:
        closure = db.session.get(Closure, closure_id)
        if closure is None:
            abort(404)
        if not may_act_for_service(current_user, closure.service_id):
            deny(f"closure:{closure_id}")
        return closure_draft(closure)
    day_id = _asked_id("jour")
    if day_id is not None:
        day, allowed = reservations_staff.visible_day(current_user, day_id)
        return day_draft(visible_or_deny(day, allowed, f"activity_day:{day_id}"))
    return {}


def _form_page(form, services, *, status: int = 200, preview=None, error=None):
    return render(
        "admin/messages/new.html",
        status=status,
        form=form,
        services=services,
        preview=preview,
        error=error,
    )


@bp.route("/messages/nouveau", methods=["GET", "POST"], endpoint="message_new")
def message_new():
    services, activities = rules.sendable(current_user)
    if request.method == "GET":
        form = MessageForm(formdata=None, data=_draft(), services=services, activities=activities)
        return _form_page(form, services)
    if not services:
        abort(403)
    form = MessageForm(services=services, activities=activities)
    if form.edit.data:  # back from the preview: the form as it was, to change it
        return _form_page(form, services)
    if not form.validate():
        return _form_page(form, services, status=422)
    today = today_in_paris()
    if not (form.send.data and form.send_token.data):
        form.send_token.data = ops.new_send_token()
        return _form_page(form, services, preview=audience.preview(form.chosen, today))
    values = {
        "subject": form.subject.data,
        "body": form.body.data,
        "author": current_user._get_current_object(),
        "send_token": form.send_token.data,
        "today": today,
    }
    try:
        message, created = write_transaction(lambda: ops.send_message(form.chosen, **values))
    except ops.MessageError as error:
        preview = audience.preview(form.chosen, today)
        return _form_page(form, services, status=422, preview=preview, error=str(error))
    if created:
        count = message.recipient_count
        flash(
            f"Message envoyé à {count} famille{'s' if count > 1 else ''} : il est dans leur "
            "espace famille, et les e-mails partent dans quelques instants.",
            "success",
        )
    else:
        flash("Ce message était déjà envoyé : il ne l'a pas été une seconde fois.", "info")
    return redirect(url_for("admin.message", message_id=message.id), 303)
