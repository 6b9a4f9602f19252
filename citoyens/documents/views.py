"""Family pages of the documents domain: "Mes documents", upload, download."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from citoyens.accounts.decorators import parent_required
from citoyens.documents import operations  # noqa: F401 (registers the review decision handler)
from citoyens.documents.forms import UploadForm
from citoyens.documents.models import Document, DocumentType
from citoyens.documents.operations import (
    QUOTIENT_TYPE,
    discard_file,
    open_file,
    upload_document,
)
from citoyens.documents.rules import (
    LINE_STATUSES,
    active_child,
    checklist,
    current_documents,
    line_for,
    summarize,
    today_in_paris,
)
from citoyens.documents.uploads import (
    ACCEPT_ATTRIBUTE,
    UploadError,
    check_upload,
    file_response,
    read_limited,
)
from citoyens.extensions import db
from citoyens.web import is_htmx_fragment_request, render, safe_next

bp = Blueprint("documents", __name__)

QUOTIENT_ELSEWHERE = (
    "L'attestation de quotient familial s'envoie avec le montant de votre quotient : "
    "« Mon foyer », « Déclarer mon quotient familial »."
)


def page_context(**extra) -> dict:
    return {
        "accept": ACCEPT_ATTRIBUTE,
        "labels": LINE_STATUSES,
        "errors": {},
        "paris_date": today_in_paris,
        **extra,
    }


@bp.get("/mes-documents")
@parent_required
def index():
    sections = checklist(current_user.household_id, today_in_paris())
    return render(
        "documents/index.html", **page_context(sections=sections, counts=summarize(sections))
    )


@bp.post("/mes-documents/envoyer")
@parent_required
def upload():
    """One line's form: the file for one type and one child (or the household).

    htmx swaps the line with its new status; without JavaScript, 303 back to the list.
    """
    household_id = current_user.household_id
    form = UploadForm()
    form.validate()
    if form.type_id.errors or form.person_id.errors:
        abort(404)
    doc_type = db.session.scalar(
        select(DocumentType).where(
            DocumentType.id == form.type_id.data, DocumentType.active.is_(True)
        )
    )
    if doc_type is None:
        abort(404)
    person = None
    if doc_type.scope == "child":
        if form.person_id.data is None:
            abort(404)
        person = active_child(household_id, form.person_id.data)
        if person is None:
            abort(404)
    elif form.person_id.data is not None:
        abort(404)

    today = today_in_paris()
    error = form.file.errors[0] if form.file.errors else None
    if doc_type.code == QUOTIENT_TYPE["code"]:
        # Alone, the attestation would price nothing: it goes with the declared figure.
        error = QUOTIENT_ELSEWHERE
    if error is None:
        try:
            checked = check_upload(read_limited(form.file.data.stream), form.file.data.filename)
        except UploadError as exc:
            error = str(exc)
    if error is not None:
        return _refused(doc_type, person, error, today)

    document = upload_document(
        household_id=household_id,
        doc_type=doc_type,
        person=person,
        checked=checked,
        actor=current_user,
        today=today,
    )
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        discard_file(document)
        raise
    announce = f"Document envoyé : {doc_type.label}" + (
        f" de {person.first_name}." if person else "."
    )
    # Uploaded from another page (the enrolment form): go back there.
    back_to = safe_next(request.form.get("next"))
    if is_htmx_fragment_request():
        line = line_for(doc_type, person, document, today)
        if back_to:
            response = _fragment(line=line, announce=announce, upload_next=back_to)
        else:
            counts = summarize(checklist(household_id, today))
            response = _fragment(line=line, announce=announce, counts=counts)
        # Pages that show what is missing refresh themselves on this event.
        response.headers["HX-Trigger-After-Settle"] = "documents-changed"
        return response
    flash(f"{announce} Il sera vérifié par le service ; suivez-le dans « Demandes ».", "success")
    anchor = f"doc-{doc_type.id}-{_person_key(person)}"
    return redirect(back_to or url_for("documents.index", _anchor=anchor), 303)


def _person_key(person) -> str:
    return str(person.id) if person else "foyer"


def _refused(doc_type, person, error: str, today):
    """Nothing saved: the line again with its error (htmx), or the whole page (422)."""
    current = current_documents(current_user.household_id)
    line = line_for(
        doc_type, person, current.get((doc_type.id, person.id if person else None)), today
    )
    if is_htmx_fragment_request():
        # 200: htmx swaps only successful responses, and this one carries the message.
        return _fragment(line=line, error=error, announce=error)
    sections = checklist(current_user.household_id, today)
    return render(
        "documents/index.html",
        status=422,
        **page_context(sections=sections, counts=summarize(sections), errors={line.key: error}),
    )


def _fragment(**context):
    response = make_response(
        render_template("documents/_upload_result.html", **page_context(**context))
    )
    response.vary.add("HX-Request")
    return response


@bp.get("/mes-documents/<int:document_id>/telecharger")
@parent_required
def download(document_id: int):
    """The family's own file, as an attachment; another household's id is a 404."""
    document = db.session.scalar(
        select(Document).where(
            Document.id == document_id, Document.household_id == current_user.household_id
        )
    )
    if document is None:
        abort(404)
    try:
        stream = open_file(document, actor=current_user)
    except FileNotFoundError:
        abort(404)
    db.session.commit()  # keeps the audit event of a health document
    return file_response(document, stream, attachment=True)
