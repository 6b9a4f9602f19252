"""Back office: the audit log (administrators only) and its CSV export."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin import audit_log
from citoyens.admin.blueprint import bp
from citoyens.extensions import db
from citoyens.web import render


@bp.get("/journal", endpoint="audit_log")
@admin_required
def audit_log_page():
    filters = audit_log.Filters.parse(request.args)
    found = audit_log.page(filters, request.args.get("apres"))
    return render(
        "admin/audit/index.html",
        filters=filters,
        log=found,
        query=filters.query_args(),
        labels=audit_log.ACTION_LABELS,
        retention_months=current_app.config["RETENTION_AUDIT_MONTHS"],
    )


@bp.get("/journal.csv", endpoint="audit_log_csv")
@admin_required
def audit_log_csv():
    filters = audit_log.Filters.parse(request.args)
    body = audit_log.export_csv(filters)
    audit.record("audit.exported", actor=current_user, details=str(filters.query_args())[:500])
    db.session.commit()
    response = current_app.response_class(body, mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="journal.csv"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
