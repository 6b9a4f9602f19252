"""Back office, administrators only: import the families' CSV file and welcome them (issue 13).

Upload → report (what each line would do, nothing written) → « Importer ». The uploaded
file is kept server-side (upload storage, random key remembered in the admin's session):
the confirmation re-reads that file and plans again against the database of the moment,
it never trusts anything the browser sends back but the button.
"""

from __future__ import annotations

import contextlib

from flask import abort, flash, redirect, session, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import MAX_ID, bp
from citoyens.billing.tasks import progress_of
from citoyens.core.models import JOB_RUN_STATUSES, JobRun
from citoyens.documents.storage import StorageError, get_storage, new_key
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households import welcome
from citoyens.households.import_apply import apply_import
from citoyens.households.import_csv import ImportFileError, max_bytes, read_csv, too_big_message
from citoyens.households.import_plan import ACTION_LABELS, plan_import
from citoyens.web import render

SESSION_KEY = "family_import_file"


class UploadForm(FlaskForm):
    fichier = FileField(
        "Fichier CSV des familles",
        description="UTF-8 ou Windows-1252, séparateur point-virgule ou virgule, 5 Mo au plus. "
        "Rien n'est enregistré avant votre confirmation.",
        validators=[FileRequired("Choisissez le fichier CSV à importer.")],
        render_kw={"accept": ".csv,text/csv"},
    )


class ConfirmForm(FlaskForm):
    cle = HiddenField()


class WelcomeForm(FlaskForm):
    pass


def _index(form: UploadForm, status: int = 200):
    run = welcome.latest_run()
    return render(
        "admin/households/import.html",
        form=form,
        waiting=welcome.waiting_count(),
        run=run,
        **_status_context(),
        status=status,
    )


def _status_context() -> dict:
    return {"run_progress": progress_of, "run_statuses": JOB_RUN_STATUSES}


def _forget_stored_file() -> None:
    key = session.pop(SESSION_KEY, None)
    if key:
        with contextlib.suppress(StorageError):
            get_storage().delete(key)


@bp.get("/familles/import")
@admin_required
def families_import():
    return _index(UploadForm())


@bp.post("/familles/import")
@admin_required
def families_import_upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return _index(form, 422)
    data = form.fichier.data.stream.read(max_bytes() + 1)
    try:
        if len(data) > max_bytes():
            raise ImportFileError(too_big_message())
        plan = plan_import(read_csv(data), today_in_paris())
    except ImportFileError as error:
        form.fichier.errors.append(str(error))
        return _index(form, 422)
    _forget_stored_file()
    key = None
    if plan.writable:
        key = new_key("csv")
        get_storage().save(key, data)
        session[SESSION_KEY] = key
    return render(
        "admin/households/import_report.html",
        plan=plan,
        labels=ACTION_LABELS,
        confirm=ConfirmForm(formdata=None, data={"cle": key}) if key else None,
    )


@bp.post("/familles/import/confirmer")
@admin_required
def families_import_confirm():
    form = ConfirmForm()
    key = session.get(SESSION_KEY)
    if not form.validate_on_submit() or not key or form.cle.data != key:
        flash("Ce rapport n'est plus valable : envoyez le fichier à nouveau.", "error")
        return redirect(url_for("admin.families_import"), 303)
    try:
        with get_storage().open(key) as handle:
            data = handle.read()
        plan = plan_import(read_csv(data), today_in_paris())
    except (OSError, StorageError, ImportFileError):
        _forget_stored_file()
        flash("Le fichier n'est plus disponible : envoyez-le à nouveau.", "error")
        return redirect(url_for("admin.families_import"), 303)
    db.session.rollback()  # the plan's reads end here; each family is its own transaction
    result = apply_import(plan, current_user._get_current_object())
    _forget_stored_file()
    return render(
        "admin/households/import_done.html", plan=plan, result=result, labels=ACTION_LABELS
    )


@bp.post("/familles/bienvenue")
@admin_required
def families_welcome():
    if not WelcomeForm().validate_on_submit():
        abort(400)
    run_id, started = welcome.queue_welcome(current_user.id)
    run = db.session.get(JobRun, run_id)
    if not started:
        flash("Un envoi est déjà en cours : le voici.", "info")
    elif run.status == "done":
        flash(run.summary, "success")
    elif run.status == "failed":
        flash(run.error, "error")
    else:
        flash("Envoi lancé : suivez son avancement ci-dessous.", "success")
    return redirect(url_for("admin.families_import"), 303)


@bp.get("/familles/bienvenue/<int:run_id>")
@admin_required
def families_welcome_status(run_id: int):
    run = db.session.get(JobRun, run_id) if run_id <= MAX_ID else None
    if run is None or run.kind != welcome.WELCOME_RUN:
        abort(404)
    return render(
        "admin/households/welcome_status.html", block="status", run=run, **_status_context()
    )
