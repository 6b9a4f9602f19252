"""Back office: the queue of requests, one request's history, and staff actions on it.

Every route sits under /admin (staff only). An agent sees the services they work for;
requests tied to no service are for administrators; any other answers 404 (audited).
"""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from citoyens.admin.blueprint import MAX_ID, bp, visible_or_deny
from citoyens.extensions import db
from citoyens.requests import operations as ops
from citoyens.requests import rules
from citoyens.requests.forms import DecisionForm, QueueFilterForm, StaffMessageForm
from citoyens.web import is_htmx_fragment_request, render


@bp.get("/demandes", endpoint="requests")
def request_queue():
    form = QueueFilterForm(formdata=request.args)
    form.set_services(rules.queue_services(current_user), general=current_user.is_admin)
    filters = form.cleaned()
    page = request.args.get("page", 1, type=int) or 1
    queue = rules.staff_queue(current_user, rules.QueueFilters(**filters, page=page))
    return render("admin/requests/index.html", form=form, queue=queue, filters=filters)


def _optional_url(endpoint: str, **values) -> str | None:
    """A link to another domain's back-office page, when this build has it."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _visible_request(request_id: int):
    """The request, or 404 (audited when it is not the agent's: `services.scope`)."""
    req = rules.request_for_staff(request_id) if request_id <= MAX_ID else None
    allowed = req is not None and rules.staff_may_see(current_user, req)
    return visible_or_deny(req, allowed, f"request:{request_id}")


def _page(req, *, message_form=None, decision_form=None, announce=None, error=None, status=200):
    return render(
        "admin/requests/show.html",
        block="history",
        status=status,
        req=req,
        lines=rules.history(req, current_user, for_staff=True),
        household_name=rules.household_names({req.household_id})[req.household_id],
        household_url=_optional_url("admin.household", household_id=req.household_id),
        document_url=req.document_id
        and _optional_url("admin.documents_show", document_id=req.document_id),
        # A QF declaration: the figure accepting it replaces (the declared one is the title).
        accepted_quotient=req.household.family_quotient if req.kind == "family_quotient" else None,
        documents=_documents(req),
        message_form=message_form or StaffMessageForm(formdata=None),
        decision_form=decision_form or DecisionForm(formdata=None),
        announce=announce,
        error=error,
        fragment=is_htmx_fragment_request(),
    )


def _documents(req) -> list:
    """The documents a "documents to check" request holds (none for other kinds)."""
    if req.kind != "document_review":
        return []
    from citoyens.documents.operations import request_documents

    return request_documents(req.id)


def _done(req, message: str):
    """After a successful action: the fragment for htmx, a redirect (303) otherwise."""
    request_id = req.id
    db.session.commit()
    if is_htmx_fragment_request():
        return _page(rules.request_for_staff(request_id), announce=message)
    flash(message, "success")
    return redirect(url_for("admin.request", request_id=request_id), 303)


def _invalid(req, error: str, **forms):
    """A form with errors: nothing saved, the form shown again with its messages."""
    return _page(req, error=error, status=200 if is_htmx_fragment_request() else 422, **forms)


def _refused(req, error: ops.RequestError):
    """The domain said no (closed request, someone was faster): nothing saved."""
    request_id = req.id
    db.session.rollback()
    if is_htmx_fragment_request():
        return _page(rules.request_for_staff(request_id), error=str(error))
    flash(str(error), "error")
    return redirect(url_for("admin.request", request_id=request_id), 303)


@bp.get("/demandes/<int:request_id>", endpoint="request")
def request_detail(request_id: int):
    return _page(_visible_request(request_id))


@bp.post("/demandes/<int:request_id>/message", endpoint="request_message")
def request_message(request_id: int):
    req = _visible_request(request_id)
    form = StaffMessageForm()
    if not form.validate_on_submit():
        return _invalid(req, "Le message n'a pas été enregistré : corrigez-le.", message_form=form)
    try:
        ops.staff_message(
            req, form.body.data, actor=current_user._get_current_object(), internal=form.internal
        )
    except ops.RequestError as error:
        return _refused(req, error)
    if form.internal:
        return _done(req, "Note interne enregistrée. La famille ne la voit pas.")
    return _done(req, "Message envoyé à la famille, par e-mail et dans son suivi.")


DECISION_DONE = {
    "in_review": "Demande prise en charge. La famille est prévenue.",
    "accepted": "Demande acceptée. La famille est prévenue.",
    "refused": "Demande refusée. La famille est prévenue, avec le motif.",
}


@bp.post("/demandes/<int:request_id>/statut", endpoint="request_status")
def request_status(request_id: int):
    req = _visible_request(request_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _invalid(
            req, "Rien n'a été enregistré : corrigez le formulaire.", decision_form=form
        )
    to_status = form.chosen_status()
    try:
        ops.staff_change_status(
            req, to_status, actor=current_user._get_current_object(), message=form.message.data
        )
    except ops.RequestError as error:
        return _refused(req, error)
    return _done(req, DECISION_DONE[to_status])
