"""« Exports » (/admin/exports): attendance over a period, the families of a service, and
the files the worker builds for the large ones (`citoyens.export_jobs`).

An agent exports only the services they work for (a posted service or activity of
another one answers 404, and the denial is logged); administrators export every one.
Every export is audited (who, what, how many rows). A file built by the worker is shown
and downloaded only by the staff member who asked for it: anyone else gets 404.
"""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_login import current_user

from citoyens import audit, export_jobs
from citoyens.admin.blueprint import MAX_ID, bp, deny
from citoyens.admin.export_forms import (
    AttendanceExportForm,
    FamiliesExportForm,
    choices_for,
    current_year_id,
    parse_target,
    school_years,
)
from citoyens.core.models import EXPORT_FILE_STATUSES
from citoyens.documents.storage import get_storage
from citoyens.enrolments import service_exports
from citoyens.extensions import db
from citoyens.forms import parse_id, parse_query_day
from citoyens.reservations import period_exports, staff
from citoyens.tabular import send_stored, send_table
from citoyens.web import render


def respond(name: str, params: dict, fmt: str, *, target: str):
    """The export `name(params)` as the answer: audited, then streamed when it has at most
    EXPORT_WORKER_ROWS rows, else queued for the worker (303 to the file's page). The
    caller has checked the form and the scope."""
    entry = export_jobs.builder(name)
    rows = entry.count(params)
    large = rows > export_jobs.worker_threshold()
    user = current_user._get_current_object()
    audit.record(
        f"export.{name}",
        actor=user,
        target=target,
        details=f"{fmt}, {rows} ligne(s){', en tâche de fond' if large else ''} : "
        + entry.title(params),
    )
    db.session.commit()
    if not large:
        return send_table(fmt, entry.filename(params), entry.sheets(params))
    file_id = export_jobs.queue_file(name, params, fmt, user.id, rows=rows)
    return redirect(url_for("admin.export_file", file_id=file_id), 303)


def _page(*, attendance=None, families=None, status: int = 200):
    choices = choices_for(current_user)
    years = school_years()
    today = staff.today()
    if attendance is None:
        attendance = AttendanceExportForm(formdata=None, choices=choices, data=_prefill(today))
    if families is None:
        service = parse_id(request.args.get("service"))
        families = FamiliesExportForm(
            formdata=None,
            choices=choices,
            years=years,
            data={
                "service_id": str(service) if service in choices.service_ids else None,
                "school_year_id": str(current_year_id(years, today) or ""),
            },
        )
    return render(
        "admin/exports/index.html",
        status=status,
        choices=choices,
        attendance=attendance,
        families=families,
        files=export_jobs.recent_files(current_user.id),
        statuses=EXPORT_FILE_STATUSES,
        expires_at=export_jobs.expires_at,
    )


def _prefill(today) -> dict:
    """The attendance form as a link asks for it (?activite=, ?service=, ?du=, ?au=):
    this month up to today unless told otherwise."""
    target = None
    if parse_id(request.args.get("activite")):
        target = f"activite:{parse_id(request.args.get('activite'))}"
    elif parse_id(request.args.get("service")):
        target = f"service:{parse_id(request.args.get('service'))}"
    first = parse_query_day(request.args.get("du"), "Le premier jour") or today.replace(day=1)
    last = parse_query_day(request.args.get("au"), "Le dernier jour") or today
    return {"target": target, "starts_on": first, "ends_on": last, "fmt": "xlsx"}


@bp.get("/exports", endpoint="exports")
def exports_page():
    return _page()


@bp.post("/exports/presences", endpoint="exports_attendance")
def exports_attendance():
    choices = choices_for(current_user)
    form = AttendanceExportForm(choices=choices)
    target = parse_target(form.target.data)
    service_id = activity_id = None
    if target is not None:
        kind, target_id = target
        if kind == "activity":
            activity = choices.activity(target_id)
            if activity is None:
                deny(f"activity:{target_id}")
            service_id, activity_id = activity.service_id, activity.id
        else:
            if target_id not in choices.service_ids:
                deny(f"service:{target_id}")
            service_id = target_id
    if not form.validate():
        return _page(attendance=form, status=422)
    params = period_exports.Period(
        service_id, activity_id, form.starts_on.data, form.ends_on.data
    ).params()
    where = f"activity:{activity_id}" if activity_id else f"service:{service_id}"
    return respond(period_exports.NAME, params, form.fmt.data, target=where)


@bp.post("/exports/familles", endpoint="exports_families")
def exports_families():
    choices = choices_for(current_user)
    form = FamiliesExportForm(choices=choices, years=school_years())
    service_id = parse_id(form.service_id.data)
    if service_id is not None and service_id not in choices.service_ids:
        deny(f"service:{service_id}")
    if not form.validate():
        return _page(families=form, status=422)
    params = service_exports.Roster(
        service_id, int(form.school_year_id.data), bool(form.pending.data)
    ).params()
    return respond(service_exports.NAME, params, form.fmt.data, target=f"service:{service_id}")


# --- Files built by the worker ----------------------------------------------------------------


def _own_file(file_id: int):
    export = export_jobs.file_of(file_id, current_user.id) if file_id <= MAX_ID else None
    if export is None:
        abort(404)
    return export


@bp.get("/exports/fichiers/<int:file_id>", endpoint="export_file")
def export_file(file_id: int):
    export = _own_file(file_id)
    # htmx polls the fragment (the "status" block); opened directly, it is a page.
    return render(
        "admin/exports/file.html",
        block="status",
        export=export,
        progress=export_jobs.progress_of(export),
        downloadable=export_jobs.is_downloadable(export),
        expires_at=export_jobs.expires_at(export),
        statuses=EXPORT_FILE_STATUSES,
    )


@bp.get("/exports/fichiers/<int:file_id>/telecharger", endpoint="export_file_download")
def export_file_download(file_id: int):
    export = _own_file(file_id)
    if not export_jobs.is_downloadable(export):
        abort(404)
    try:
        stream = get_storage().open(export.storage_key)
    except FileNotFoundError:
        abort(404)
    audit.record(
        "export.downloaded",
        actor=current_user,
        target=f"export_file:{export.id}",
        details=f"{export.kind}, {export.format}",
    )
    db.session.commit()
    return send_stored(stream, export.format, export.filename)
