"""Back office: the counter's receipts of a day (or of a span of days) for the cash-up,
filterable by mode, with what was received by mode. An agent sees the receipts of the
families they see (`services.scope`); administrators see them all."""

from __future__ import annotations

from datetime import timedelta

from flask import request
from flask_login import current_user
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import ValidationError

from citoyens.admin.blueprint import bp
from citoyens.billing import counter_list, rules
from citoyens.billing.counter_forms import METHOD_CHOICES
from citoyens.billing.models import PAYMENT_METHODS
from citoyens.forms import DATE_FORMATS, QUERY_YEARS
from citoyens.households.directory import household_names
from citoyens.requests.forms import FilterForm
from citoyens.web import render

# A span longer than this is cut to it: the list is for counting a till, not a year.
MAX_SPAN_DAYS = 366


def _sane(form, field) -> None:
    low, high = QUERY_YEARS
    if field.data is not None and not low <= field.data.year <= high:
        raise ValidationError("Date hors des années possibles.")


class CashUpFilterForm(FilterForm):
    """The list's filters, read from the query string (a GET form: no CSRF). A value
    that does not parse falls back to its default: today, every mode."""

    FILTERS = ("mode", "du", "au")

    class Meta:
        csrf = False

    mode = SelectField(
        "Mode de paiement",
        choices=[SelectChoice("", "Tous les modes"), *METHOD_CHOICES[1:]],
        default="",
    )
    du = DateField(
        "Reçus du", format=DATE_FORMATS, default=lambda: rules.today(), validators=[_sane]
    )
    au = DateField("au", format=DATE_FORMATS, default=lambda: rules.today(), validators=[_sane])


@bp.get("/factures/encaissements", endpoint="counter_receipts")
def counter_receipts():
    form = CashUpFilterForm(formdata=request.args)
    filters = form.cleaned()
    start, end = sorted((filters["du"], filters["au"]))
    if (end - start).days > MAX_SPAN_DAYS:
        start = end - timedelta(days=MAX_SPAN_DAYS)
    form.du.data, form.au.data = start, end
    page_number = request.args.get("page", 1, type=int) or 1
    result = counter_list.cash_up(
        start, end, method=filters["mode"], page=page_number, user=current_user
    )
    query = {"mode": filters["mode"], "du": start.isoformat(), "au": end.isoformat()}
    return render(
        "admin/counter/index.html",
        form=form,
        result=result,
        start=start,
        end=end,
        names=household_names({receipt.household_id for receipt in result.page.items}),
        methods=PAYMENT_METHODS,
        receipt_label=rules.receipt_label,
        query={key: value for key, value in query.items() if value},
    )
