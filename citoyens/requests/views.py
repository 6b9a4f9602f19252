"""Family pages of the requests domain: "Mes demandes", one request's history, reply, cancel.

Another household's request answers 404, for GET and POST alike: its existence is
none of this family's business.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from citoyens.accounts.decorators import parent_required
from citoyens.extensions import db
from citoyens.requests import operations as ops
from citoyens.requests import rules
from citoyens.requests.forms import CancelForm, ReplyForm
from citoyens.requests.models import REQUEST_KINDS, REQUEST_STATUSES
from citoyens.web import is_htmx_fragment_request, render

bp = Blueprint("requests", __name__)

PARIS = ZoneInfo("Europe/Paris")


@bp.app_template_filter("request_status")
def request_status(status: str) -> str:
    """The French label of a request status: "Envoyée", "Acceptée"..."""
    return REQUEST_STATUSES.get(status, status)


@bp.app_template_filter("request_kind")
def request_kind(kind: str) -> str:
    """The French label of a kind of request (an unknown kind falls back to its code)."""
    return REQUEST_KINDS.get(kind, kind)


# --- Pages ------------------------------------------------------------------------------------


def _own_request_or_404(request_id: int):
    request = rules.request_of_household(request_id, current_user.household_id)
    if request is None:
        abort(404)
    return request


def _show(request, *, reply_form=None, announce=None, error=None, status=200):
    return render(
        "requests/show.html",
        block="history",
        status=status,
        req=request,
        lines=rules.history(request, current_user, for_staff=False),
        reply_form=reply_form or ReplyForm(formdata=None),
        cancel_form=CancelForm(formdata=None),
        announce=announce,
        error=error,
        fragment=is_htmx_fragment_request(),
    )


def _done(request, message: str):
    """After a successful POST: the fragment for htmx, a redirect (303) otherwise."""
    db.session.commit()
    if is_htmx_fragment_request():
        return _show(rules.request_of_household(request.id, request.household_id), announce=message)
    flash(message, "success")
    return redirect(url_for("requests.show", request_id=request.id), 303)


def _refused(request, error: ops.RequestError):
    db.session.rollback()
    request = _own_request_or_404(request.id)
    if is_htmx_fragment_request():
        return _show(request, error=str(error))
    flash(str(error), "error")
    return redirect(url_for("requests.show", request_id=request.id), 303)


@bp.get("/mes-demandes")
@parent_required
def index():
    requests = rules.household_requests(current_user.household_id)
    return render(
        "requests/index.html",
        open_requests=[r for r in requests if r.is_open],
        closed_requests=[r for r in requests if not r.is_open],
    )


@bp.get("/mes-demandes/<int:request_id>")
@parent_required
def show(request_id: int):
    return _show(_own_request_or_404(request_id))


@bp.post("/mes-demandes/<int:request_id>/message")
@parent_required
def reply(request_id: int):
    request = _own_request_or_404(request_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        return _show(
            request,
            reply_form=form,
            error="Votre message n'a pas été envoyé : corrigez-le puis réessayez.",
            status=200 if is_htmx_fragment_request() else 422,
        )
    try:
        ops.family_reply(request, form.body.data, actor=current_user._get_current_object())
    except ops.RequestError as error:
        return _refused(request, error)
    return _done(request, "Votre message a été envoyé au service.")


@bp.post("/mes-demandes/<int:request_id>/annuler")
@parent_required
def cancel(request_id: int):
    request = _own_request_or_404(request_id)
    if not CancelForm().validate_on_submit():
        abort(400)
    try:
        ops.family_cancel(request, actor=current_user._get_current_object())
    except ops.RequestError as error:
        return _refused(request, error)
    return _done(request, "Votre demande est annulée.")
