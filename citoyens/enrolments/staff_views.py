"""Back office: the enrolment queue per service, one enrolment's file, decisions on it,
and staff enrolling a child themselves.

Every route sits on the admin blueprint (staff only). An agent sees the enrolments of the
services they work for, of families they may see (`services.scope`); any other answers 404
and is logged. Staff enrol only a family they already see: enrolling is never a way in.
"""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user

from citoyens import audit
from citoyens.admin.blueprint import MAX_ID, bp, get_or_404, visible_or_deny
from citoyens.enrolments import decisions, staff
from citoyens.enrolments.change_forms import change_forms
from citoyens.enrolments.staff_forms import DecisionForm, EnrolForm, QueueFilterForm
from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names, search_households
from citoyens.households.models import Household
from citoyens.requests.operations import RequestError
from citoyens.requests.rules import history
from citoyens.services import scope
from citoyens.web import is_htmx_fragment_request, render


@bp.get("/inscriptions", endpoint="enrolments")
def enrolment_queue():
    form = QueueFilterForm(formdata=request.args)
    form.set_choices(staff.queue_services(current_user), staff.school_years())
    filters = form.cleaned()
    page = request.args.get("page", 1, type=int) or 1
    queue = staff.staff_queue(current_user, staff.QueueFilters(**filters, page=page))
    return render(
        "admin/enrolments/index.html",
        form=form,
        queue=queue,
        filters=filters,
        today=staff.today_in_paris(),
        age_label=staff.age_label,
    )


def _visible_enrolment(enrolment_id: int):
    """The enrolment, or 404 (audited when outside the agent's services or families)."""
    enrolment = staff.enrolment_for_staff(enrolment_id) if enrolment_id <= MAX_ID else None
    allowed = (
        enrolment is not None
        and scope.may_act_for_service(current_user, enrolment.service_id)
        and scope.may_see_household(current_user, enrolment.household_id)
    )
    return visible_or_deny(enrolment, allowed, f"enrolment:{enrolment_id}")


def _page(enrolment, *, form=None, announce=None, error=None, status=200, **change):
    file = staff.enrolment_file(enrolment)
    req = enrolment.request
    if enrolment.status == "accepted" and "changes" not in change:
        change["changes"] = change_forms(enrolment)
    return render(
        "admin/enrolments/show.html",
        block="decision",
        status=status,
        file=file,
        enrolment=enrolment,
        req=req,
        lines=history(req, current_user, for_staff=True) if req is not None else [],
        form=form or DecisionForm(formdata=None),
        announce=announce,
        error=error,
        fragment=is_htmx_fragment_request(),
        age_label=staff.age_label,
        **change,
    )


@bp.get("/inscriptions/<int:enrolment_id>", endpoint="enrolment")
def enrolment_detail(enrolment_id: int):
    enrolment = _visible_enrolment(enrolment_id)
    # The file shows the child's health flags (allergies, PAI): who opened it is kept.
    audit.record("enrolment.viewed", actor=current_user, target=f"enrolment:{enrolment_id}")
    db.session.commit()
    return _page(enrolment)


DECISION_DONE = {
    "accepted": "Inscription acceptée. La famille est prévenue par e-mail.",
    "refused": "Inscription refusée. La famille est prévenue par e-mail, avec le motif.",
    "waiting_list": "Demande mise en liste d'attente. La famille est prévenue par e-mail.",
}


@bp.post("/inscriptions/<int:enrolment_id>/decision", endpoint="enrolment_decision")
def enrolment_decision(enrolment_id: int):
    enrolment = _visible_enrolment(enrolment_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _page(
            enrolment,
            form=form,
            error="Rien n'a été enregistré : corrigez le formulaire.",
            status=200 if is_htmx_fragment_request() else 422,
        )
    decision = form.chosen_status()
    try:
        decisions.decide(
            enrolment, decision, actor=current_user._get_current_object(), message=form.message.data
        )
    except RequestError as exc:
        db.session.rollback()
        if is_htmx_fragment_request():
            return _page(staff.enrolment_for_staff(enrolment_id), error=str(exc))
        flash(str(exc), "error")
        return redirect(url_for("admin.enrolment", enrolment_id=enrolment_id), 303)
    db.session.commit()
    if is_htmx_fragment_request():
        db.session.expire_all()
        return _page(staff.enrolment_for_staff(enrolment_id), announce=DECISION_DONE[decision])
    flash(DECISION_DONE[decision], "success")
    return redirect(url_for("admin.enrolment", enrolment_id=enrolment_id), 303)


# --- Staff enrolling a child ----------------------------------------------------------------


@bp.route("/inscriptions/nouvelle", methods=["GET", "POST"], endpoint="enrolment_new")
def enrolment_new():
    household_id = parse_id(request.args.get("foyer"))
    if household_id is None:
        # First pick the family; the form then belongs to that household.
        query = request.args.get("q", "").strip()[:100]
        query = "".join(ch for ch in query if ch.isprintable())
        result = search_households(query, page=1, per_page=20, user=current_user) if query else None
        return render("admin/enrolments/pick_household.html", query=query, result=result)
    # Only a family the agent already sees (administrators: any): never a way in.
    household = get_or_404(Household, household_id)
    allowed = scope.may_see_household(current_user, household_id)
    visible_or_deny(household, allowed, f"household:{household_id}")
    children, services, activities, years = decisions.enrol_choices(current_user, household_id)
    form = EnrolForm()
    form.set_choices(children, services, activities, years)
    problems: list[str] = []
    available = decisions.staff_enrol_available()
    if available and form.validate_on_submit():
        try:
            enrolment = decisions.staff_enrol(
                household_id,
                form.child.data,
                form.service.data,
                form.school_year.data,
                form.activity_ids(),
                actor=current_user._get_current_object(),
                place=form.place(),
            )
        except decisions.enrol_errors() as exc:
            # EnrolmentError lists what is missing; RequestError says why.
            db.session.rollback()
            problems = list(getattr(exc, "problems", None) or [str(exc)])
        else:
            enrolment_id = enrolment.id
            db.session.commit()
            flash(
                "Inscription enregistrée et acceptée. La famille est prévenue par e-mail.",
                "success",
            )
            return redirect(url_for("admin.enrolment", enrolment_id=enrolment_id), 303)
    return render(
        "admin/enrolments/new.html",
        status=422 if form.is_submitted() else 200,
        form=form,
        problems=problems,
        household_id=household_id,
        household_name=household_names({household_id})[household_id],
        available=available,
        has_children=bool(children),
        has_services=bool(services),
        activities_by_service=form.activities_by_service,
    )
