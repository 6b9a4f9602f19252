"""Back office: changing an accepted enrolment during the year (end it at a date, add or
remove an activity, change school or class), from the enrolment's page.

Routes sit on the admin blueprint; the enrolment is reached as on its page (another
service's answers 403). Each change runs in `write_transaction`; a refused one answers
the page again with the French reason (422) and writes nothing.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user

from citoyens.admin.blueprint import bp
from citoyens.enrolments import changes
from citoyens.enrolments.change_forms import change_forms
from citoyens.enrolments.staff_views import _page, _visible_enrolment
from citoyens.transactions import write_transaction


def _apply(enrolment_id: int, which: str, work, done: str):
    enrolment = _visible_enrolment(enrolment_id)
    forms = change_forms(enrolment, posted=which)
    form = forms[which]
    error = None
    if enrolment.status != "accepted":
        error = "Seule une inscription acceptée et en cours peut être modifiée."
    elif form.validate_on_submit():
        actor = current_user._get_current_object()
        try:
            outcome = write_transaction(
                lambda: work(changes.enrolment_for_change(enrolment_id), form, actor)
            )
        except changes.EnrolmentChangeError as exc:
            error = str(exc)
        else:
            count = len(outcome.cancelled)
            extra = (
                f" {count} réservation(s) annulée(s) ; la famille est prévenue." if count else ""
            )
            flash(done + extra, "success")
            return redirect(url_for("admin.enrolment", enrolment_id=enrolment_id), 303)
    enrolment = _visible_enrolment(enrolment_id)
    return _page(
        enrolment,
        changes=forms,
        change_error=error or "Rien n'a été enregistré : corrigez le formulaire.",
        change_posted=which,
        status=422,
    )


@bp.post("/inscriptions/<int:enrolment_id>/fin", endpoint="enrolment_end")
def enrolment_end(enrolment_id: int):
    return _apply(
        enrolment_id,
        "end",
        lambda e, form, actor: changes.end_enrolment(
            e, form.ends_on.data, actor=actor, reason=form.reason.data
        ),
        "Inscription terminée.",
    )


@bp.post("/inscriptions/<int:enrolment_id>/activites", endpoint="enrolment_activities")
def enrolment_activities(enrolment_id: int):
    return _apply(
        enrolment_id,
        "activities",
        lambda e, form, actor: changes.change_activities(
            e,
            form.add.data,
            form.remove.data,
            actor=actor,
            on_date=form.on_date.data,
            reason=form.reason.data,
        ),
        "Activités de l'inscription modifiées.",
    )


@bp.post("/inscriptions/<int:enrolment_id>/scolarite", endpoint="enrolment_school")
def enrolment_school(enrolment_id: int):
    return _apply(
        enrolment_id,
        "school",
        lambda e, form, actor: changes.change_school_class(
            e, form.school_id.data, form.class_level.data, actor=actor, reason=form.reason.data
        ),
        "École et classe enregistrées.",
    )
