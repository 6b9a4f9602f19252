"""Back office: families (households), their members and the history of changes.

Routes sit on the admin blueprint, whose before_request already requires staff. An agent
sees the families of their services (`services.scope`), another one answers 404; only
administrators set a family's QF directly.
"""

from __future__ import annotations

import re

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp, get_or_404, visible_or_deny
from citoyens.extensions import db
from citoyens.households import directory, rules
from citoyens.households import operations as household_ops
from citoyens.households.forms import QuotientForm
from citoyens.households.models import Household
from citoyens.services.scope import may_see_household
from citoyens.web import render

PER_PAGE = 25
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@bp.get("/familles")
def households():
    # Control characters (NUL) never reach the database: PostgreSQL refuses them.
    query = CONTROL.sub("", request.args.get("q", "")).strip()[:100]
    page = request.args.get("page", 1, type=int) or 1
    result = directory.search_households(
        query, page=max(1, page), per_page=PER_PAGE, user=current_user
    )
    return render("admin/households/index.html", block="results", result=result, query=query)


def _show(household_id: int, form: QuotientForm, status: int = 200):
    record = directory.household_record(household_id)
    if record is None:
        abort(404)
    return render(
        "admin/households/show.html",
        record=record,
        form=form if current_user.is_admin else None,
        roles=rules.ROLE_LABELS,
        actions=rules.ACTION_LABELS,
        field_labels=rules.field_labels,
        is_open=rules.is_open,
        status=status,
    )


def visible_household(household_id: int) -> Household:
    """The household, or 404 (also, audited, when outside the agent's services)."""
    household = get_or_404(Household, household_id)
    allowed = may_see_household(current_user, household_id)
    return visible_or_deny(household, allowed, f"household:{household_id}")


@bp.get("/familles/<int:household_id>")
def household(household_id: int):
    household = visible_household(household_id)
    return _show(household_id, QuotientForm(obj=household))


@bp.post("/familles/<int:household_id>/quotient")
@admin_required
def household_quotient(household_id: int):
    household = get_or_404(Household, household_id)
    form = QuotientForm()
    if not form.validate():
        return _show(household_id, form, status=422)
    changed = household_ops.set_family_quotient(
        household, form.family_quotient.data, actor=current_user
    )
    db.session.commit()
    flash("Quotient familial enregistré." if changed else "Aucune modification.", "success")
    return redirect(url_for("admin.household", household_id=household_id), 303)
