"""Back office: documents to review, their files, and the document types.

Every route sits on the admin blueprint, whose guard lets only staff in. A document is
shown only to staff of a service concerned by its household (administrators: every one).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from citoyens.accounts.models import User
from citoyens.admin.blueprint import MAX_ID, bp, visible_or_deny
from citoyens.documents.forms import ActivationForm, DocumentTypeForm, ReviewForm
from citoyens.documents.models import Document, DocumentType
from citoyens.documents.operations import (
    DocumentError,
    create_type,
    open_file,
    review_document,
    review_request,
    set_type_active,
    update_type,
)
from citoyens.documents.rules import (
    LINE_STATUSES,
    household_history,
    pending_queue,
    today_in_paris,
)
from citoyens.documents.uploads import file_response
from citoyens.extensions import db
from citoyens.households.directory import household_names
from citoyens.requests.operations import RequestError
from citoyens.services.scope import document_filter, may_see_document
from citoyens.web import render, safe_next

PREVIEWABLE = {"image/jpeg", "image/png"}


def page(template: str, *, status: int = 200, **context):
    return render(
        template, status=status, labels=LINE_STATUSES, paris_date=today_in_paris, **context
    )


def _document_or_404(document_id: int) -> Document:
    """The document, or 404 (audited when outside the agent's scope: services.scope)."""
    if document_id > MAX_ID:
        abort(404)
    document = db.session.scalar(
        select(Document)
        .options(joinedload(Document.type), joinedload(Document.person))
        .where(Document.id == document_id)
    )
    allowed = document is not None and may_see_document(current_user, document)
    return visible_or_deny(document, allowed, f"document:{document_id}")


def _open_or_404(document: Document):
    try:
        return open_file(document, actor=current_user)
    except FileNotFoundError:
        abort(404)


@bp.get("/documents")
def documents():
    """The queue: current documents waiting for a decision, oldest first (only those the
    user may see)."""
    queue = pending_queue(where=document_filter(current_user))
    names = household_names(d.household_id for d in queue)
    return page("admin/documents/queue.html", queue=queue, names=names)


@bp.get("/documents/<int:document_id>")
def documents_show(document_id: int):
    document = _document_or_404(document_id)
    return _show(document, ReviewForm())


def _show(document: Document, form: ReviewForm, status: int = 200):
    history = household_history(document.household_id, where=document_filter(current_user))
    people_ids = {i for d in history for i in (d.uploaded_by_id, d.reviewed_by_id) if i is not None}
    users = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(people_ids)))}
        if people_ids
        else {}
    )
    request = review_request(document)
    return page(
        "admin/documents/show.html",
        status=status,
        document=document,
        form=form,
        history=history,
        users=users,
        household_name=household_names([document.household_id])[document.household_id],
        review=request,
        request_endpoint="admin.request" in current_app.view_functions,
        previewable=document.content_type in PREVIEWABLE,
        today=today_in_paris(),
    )


@bp.post("/documents/<int:document_id>/decision")
def documents_review(document_id: int):
    document = _document_or_404(document_id)
    form = ReviewForm()
    if not form.validate():
        return _show(document, form, status=422)
    accepted = form.decision.data == "accepted"
    # Decided from its review request's page: back there, to decide the next one.
    back_to = safe_next(request.form.get("next"))
    try:
        review = review_document(
            document, accepted=accepted, actor=current_user, reason=form.reason.data
        )
    except (DocumentError, RequestError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back_to or url_for("admin.documents_show", document_id=document_id), 303)
    grouped = review.kind == "document_review"
    db.session.commit()
    flash(
        ("Document accepté." if accepted else "Document refusé.")
        + (
            " La famille en sera prévenue par un seul e-mail avec vos autres décisions "
            "de ces minutes."
            if grouped
            else " La famille a été prévenue par e-mail."
        ),
        "success",
    )
    return redirect(back_to or url_for("admin.documents"), 303)


@bp.get("/documents/<int:document_id>/fichier")
def documents_file(document_id: int):
    """Download a document of a household the agent may see; opening a health one is logged."""
    document = _document_or_404(document_id)
    stream = _open_or_404(document)
    db.session.commit()
    return file_response(document, stream, attachment=True)


@bp.get("/documents/<int:document_id>/apercu")
def documents_preview(document_id: int):
    """The image shown inline on the document page (re-encoded images only, never a PDF)."""
    document = _document_or_404(document_id)
    if document.content_type not in PREVIEWABLE:
        abort(404)
    stream = _open_or_404(document)
    db.session.commit()
    return file_response(document, stream, attachment=False)


# --- Document types -------------------------------------------------------------------------


@bp.get("/documents/types")
def documents_types():
    types = db.session.scalars(
        select(DocumentType).order_by(DocumentType.active.desc(), DocumentType.label)
    ).all()
    return page("admin/documents/types.html", types=types)


@bp.route("/documents/types/nouveau", methods=["GET", "POST"])
def documents_type_new():
    form = DocumentTypeForm()
    if form.validate_on_submit():
        doc_type = create_type(actor=current_user, **form.values())
        db.session.commit()
        flash(f"Type de document « {doc_type.label} » créé.", "success")
        return redirect(url_for("admin.documents_types"), 303)
    status = 422 if form.is_submitted() else 200
    return page("admin/documents/type_form.html", form=form, doc_type=None, status=status)


@bp.route("/documents/types/<int:type_id>", methods=["GET", "POST"])
def documents_type_edit(type_id: int):
    doc_type = db.session.get(DocumentType, type_id) or abort(404)
    form = DocumentTypeForm(obj=doc_type, type_id=doc_type.id)
    if not form.is_submitted():
        form.process_validity(doc_type)
    if form.validate_on_submit():
        update_type(doc_type, actor=current_user, **form.values())
        db.session.commit()
        flash(f"Type de document « {doc_type.label} » enregistré.", "success")
        return redirect(url_for("admin.documents_types"), 303)
    status = 422 if form.is_submitted() else 200
    return page("admin/documents/type_form.html", form=form, doc_type=doc_type, status=status)


@bp.post("/documents/types/<int:type_id>/activation")
def documents_type_active(type_id: int):
    """Deactivate (no longer asked of families) or reactivate a type; nothing is deleted."""
    doc_type = db.session.get(DocumentType, type_id) or abort(404)
    form = ActivationForm()
    if not form.validate():
        abort(400)
    set_type_active(doc_type, form.active.data == "1", actor=current_user)
    db.session.commit()
    flash(
        f"« {doc_type.label} » "
        + ("est de nouveau demandé aux familles." if doc_type.active else "n'est plus demandé."),
        "success",
    )
    return redirect(url_for("admin.documents_types"), 303)
