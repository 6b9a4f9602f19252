"""« Mes données » (/mon-compte/mes-donnees): download the household's archive, ask to
close the account. Family pages: parents only; another household's archive is a 404."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, send_file, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from citoyens.accounts.decorators import parent_required
from citoyens.accounts.views import TOO_MANY_ATTEMPTS, current_password_error
from citoyens.documents.storage import get_storage
from citoyens.extensions import db, limiter
from citoyens.privacy import closure, exports
from citoyens.privacy.forms import ClosureForm, ExportForm
from citoyens.transactions import write_transaction
from citoyens.web import render

bp = Blueprint("privacy", __name__)


def _per_account() -> str:
    return f"privacy:{getattr(current_user, 'id', None)}"


# Building an archive reads every row and file of the household: a few a day is plenty.
export_limit = limiter.limit("5 per day", methods=["POST"], key_func=_per_account)
closure_limit = limiter.limit("10 per hour", methods=["POST"], key_func=_per_account)


def _page(*, closure_form=None, status: int = 200):
    household_id = current_user.household_id
    export = exports.latest_export(household_id)
    return render(
        "privacy/index.html",
        status=status,
        export=export,
        downloadable=exports.is_downloadable(export),
        export_form=ExportForm(),
        closure_form=closure_form if closure_form is not None else ClosureForm(formdata=None),
        open_closure=closure.open_closure(household_id),
        dues=closure.dues_of(household_id),
    )


@bp.get("/mon-compte/mes-donnees")
@parent_required
def index():
    return _page()


@bp.post("/mon-compte/mes-donnees/archive")
@parent_required
@export_limit
def ask_export():
    if not ExportForm().validate_on_submit():
        abort(400)
    _id, created = exports.request_export(
        current_user.household_id, current_user._get_current_object()
    )
    if created:
        flash(
            "Votre archive est en préparation. Vous recevrez un e-mail dès qu'elle sera prête.",
            "success",
        )
    else:
        flash("Votre archive est déjà en préparation : vous serez prévenu par e-mail.", "info")
    return redirect(url_for("privacy.index"), 303)


@bp.get("/mon-compte/mes-donnees/archive/<int:export_id>")
@parent_required
def download(export_id: int):
    export = exports.export_of_household(export_id, current_user.household_id)
    if export is None or not exports.is_downloadable(export):
        abort(404)
    try:
        stream = get_storage().open(export.storage_key)
    except FileNotFoundError:
        abort(404)
    exports.mark_downloaded(export, current_user._get_current_object())
    db.session.commit()
    response = send_file(
        stream,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"mes-donnees-{export.ready_at:%Y-%m-%d}.zip",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/mon-compte/mes-donnees/fermeture")
@parent_required
@closure_limit
def ask_closure():
    form = ClosureForm()
    if not form.validate_on_submit():
        return _page(closure_form=form, status=422)
    error = current_password_error(form.current_password.data)
    if error:
        form.current_password.errors.append(error)
        return _page(closure_form=form, status=429 if error == TOO_MANY_ATTEMPTS else 422)
    user = current_user._get_current_object()
    try:
        request = write_transaction(lambda: closure.ask_closure(user, form.message.data))
    except closure.ClosureError as problem:
        flash(str(problem), "info")
        return redirect(url_for("privacy.index"), 303)
    except IntegrityError:  # a concurrent click opened it first
        db.session.rollback()
        flash("Votre demande de fermeture est déjà en cours de traitement.", "info")
        return redirect(url_for("privacy.index"), 303)
    flash(
        "Votre demande de fermeture est envoyée à la mairie. Vous pouvez la suivre ici.",
        "success",
    )
    return redirect(url_for("requests.show", request_id=request.id), 303)
