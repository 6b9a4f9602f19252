"""Back office: the finance office's pages (issue 14).

- /admin/factures/impayes: the invoices left to pay by age since their due date, with the
  reminders sent; totals per age; CSV or XLSX. Staff: an agent sees the families of their
  services only (services.scope), as on the invoice list.
- /admin/paiements/export: the payments received over a period, as a file (same scope).
- /admin/comptabilite: a month's accounting export (billing/accounting.py). Administrators
  only: it names every family.

Bad input (a month like "2026-13", a format or a sheet unknown, dates the wrong way round)
gets a French message, never a 500. Each export is recorded in the audit trail.
"""

from __future__ import annotations

from datetime import date

from flask import request
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.billing import accounting, exports, months, outstanding, rules
from citoyens.extensions import db
from citoyens.forms import RefusedInput, parse_query_day, today_in_paris
from citoyens.pagination import QueuePage
from citoyens.tabular import FORMATS, send_table
from citoyens.web import render

PAGE_SIZE = 50


def export_format() -> str:
    """The file asked for (?format=csv, the default, or xlsx); anything else → a French 400."""
    fmt = (request.args.get("format") or "csv").strip().lower()
    if fmt not in FORMATS:
        raise RefusedInput("Format d'export inconnu : choisissez CSV ou XLSX.")
    return fmt


# --- Unpaid invoices by age -----------------------------------------------------------------------


def _unpaid_filters() -> tuple[outstanding.Bucket | None, str]:
    bucket = outstanding.BUCKETS_BY_KEY.get(request.args.get("anciennete", ""))
    return bucket, request.args.get("q", "").strip()[:100]


@bp.get("/factures/impayes", endpoint="unpaid")
def unpaid():
    today = rules.today()
    bucket, q = _unpaid_filters()
    totals = outstanding.bucket_totals(today, user=current_user, q=q)
    count = sum(t.count for t in totals if bucket is None or t.bucket == bucket)
    last_page = max(1, -(-count // PAGE_SIZE))
    number = min(max(1, request.args.get("page", 1, type=int) or 1), last_page)
    rows = outstanding.unpaid_page(
        today,
        user=current_user,
        q=q,
        bucket=bucket,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    filters = {"anciennete": bucket.key if bucket else "", "q": q}
    return render(
        "admin/invoices/unpaid.html",
        today=today,
        totals=totals,
        total_count=sum(t.count for t in totals),
        total_cents=sum(t.left_cents for t in totals),
        page=QueuePage(rows, count, number, PAGE_SIZE),
        bucket=bucket,
        buckets=outstanding.BUCKETS,
        bucket_of=outstanding.bucket_of,
        q=q,
        filters={key: value for key, value in filters.items() if value},
    )


@bp.get("/factures/impayes/export", endpoint="unpaid_export")
def unpaid_export():
    fmt = export_format()
    today = rules.today()
    bucket, q = _unpaid_filters()
    audit.record(
        "invoices.unpaid_exported",
        actor=current_user,
        details=f"format:{fmt} anciennete:{bucket.key if bucket else 'toutes'}",
    )
    db.session.commit()
    sheets = exports.build_unpaid(today, user=current_user, q=q, bucket=bucket)
    return send_table(fmt, f"impayes-{today:%Y-%m-%d}", sheets)


# --- Payments received over a period --------------------------------------------------------------


def _period() -> tuple[date, date]:
    """?du=2026-09-01&au=2026-09-30; neither: last month; one alone or the wrong way round
    → a French 400."""
    first = parse_query_day(request.args.get("du"), "La date de début")
    last = parse_query_day(request.args.get("au"), "La date de fin")
    if first is None and last is None:
        return months.month_bounds(months.previous_month(today_in_paris()))
    if first is None or last is None:
        raise RefusedInput("Indiquez la date de début et la date de fin de la période.")
    if first > last:
        raise RefusedInput("La date de début de la période doit précéder sa date de fin.")
    return first, last


@bp.get("/paiements/export", endpoint="payments_export")
def payments_export():
    fmt = export_format()
    first, last = _period()
    audit.record(
        "payments.exported",
        actor=current_user,
        target=f"period:{first:%Y-%m-%d}/{last:%Y-%m-%d}",
        details=f"format:{fmt}",
    )
    db.session.commit()
    sheets = exports.build_payments(first, last, user=current_user)
    return send_table(fmt, f"paiements-{first:%Y-%m-%d}-au-{last:%Y-%m-%d}", sheets)


# --- The month's accounting export ----------------------------------------------------------------


def _accounting_month() -> tuple[date, str | None]:
    """The month asked for (?mois=2026-09; none: last month), or last month and why not."""
    default = months.previous_month(today_in_paris())
    value = request.args.get("mois")
    if value is None:
        return default, None
    if not value.strip():
        return default, "Indiquez le mois à exporter, par exemple 2026-09."
    try:
        return months.parse_month(value), None
    except months.BillingError as error:
        return default, str(error)


def _accounting_page(month: date, error: str | None):
    return render(
        "admin/billing/accounting.html",
        month=month,
        error=error,
        totals=None if error else accounting.accounting_totals(month),
        sheets=accounting.SHEETS,
        status=422 if error else 200,
    )


@bp.get("/comptabilite", endpoint="accounting")
@admin_required
def accounting_page():
    return _accounting_page(*_accounting_month())


@bp.get("/comptabilite/export", endpoint="accounting_export")
@admin_required
def accounting_export():
    month, error = _accounting_month()
    if error:
        return _accounting_page(month, error)
    fmt = export_format()
    key = request.args.get("feuille") or "lignes"
    if key not in accounting.SHEETS:
        raise RefusedInput("Feuille inconnue : lignes, avoirs, paiements ou totaux.")
    audit.record(
        "accounting.exported",
        actor=current_user,
        target=f"month:{month:%Y-%m}",
        details=f"format:{fmt}" + ("" if fmt == "xlsx" else f" feuille:{key}"),
    )
    db.session.commit()
    sheets = accounting.build_accounting(month)
    if fmt == "xlsx":
        return send_table(fmt, f"comptabilite-{month:%Y-%m}", sheets)
    chosen = sheets[list(accounting.SHEETS).index(key)]
    return send_table(fmt, f"comptabilite-{month:%Y-%m}-{key}", [chosen])
