"""Family page « Demander une modification » of an accepted enrolment: each form sends a
request that the service accepts (the change is then applied) or refuses with a reason.

The enrolment is the household's own (else 404); the activities offered are the only
ids accepted. Nothing changes on the enrolment until staff accept.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from citoyens.accounts.decorators import parent_required
from citoyens.enrolments import change_requests, rules
from citoyens.enrolments.change_forms import PREFIXES, change_forms
from citoyens.enrolments.changes import EnrolmentChangeError
from citoyens.enrolments.views import bp
from citoyens.extensions import db
from citoyens.web import render

ACTIONS = {slug: name for name, slug in PREFIXES.items()}  # "fin" -> "end"


def _own_enrolment(enrolment_id: int):
    enrolment = rules.enrolment_of_household(enrolment_id, current_user.household_id)
    if enrolment is None:
        abort(404)
    return enrolment


def _page(enrolment, forms, *, error=None, status=200):
    return render(
        "enrolments/change.html",
        enrolment=enrolment,
        changes=forms,
        change_error=error,
        pending=change_requests.open_change_request(enrolment.id),
        status=status,
    )


@bp.get("/inscriptions/<int:enrolment_id>/modification")
@parent_required
def change(enrolment_id: int):
    enrolment = _own_enrolment(enrolment_id)
    forms = change_forms(enrolment) if enrolment.status == "accepted" else None
    return _page(enrolment, forms)


@bp.post("/inscriptions/<int:enrolment_id>/modification/<slug>")
@parent_required
def ask_change(enrolment_id: int, slug: str):
    action = ACTIONS.get(slug)
    if action is None:
        abort(404)
    enrolment = _own_enrolment(enrolment_id)
    if enrolment.status != "accepted":
        return _page(
            enrolment, None, error="Seule une inscription acceptée peut être modifiée.", status=422
        )
    forms = change_forms(enrolment, posted=action)
    form = forms[action]
    error = "Rien n'a été envoyé : corrigez le formulaire."
    if form.validate_on_submit():
        values = {
            "end": lambda: {"ends_on": form.ends_on.data},
            "activities": lambda: {
                "add_ids": form.add.data,
                "remove_ids": form.remove.data,
                "ends_on": form.on_date.data,
            },
            "school": lambda: {
                "school_id": form.school_id.data,
                "class_level": form.class_level.data,
            },
        }[action]()
        try:
            change_requests.request_change(
                enrolment, action, actor=current_user, message=form.reason.data, **values
            )
        except EnrolmentChangeError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            flash(
                "Votre demande de modification est envoyée au service. Elle s'appliquera "
                "une fois acceptée ; suivez-la dans « Demandes ».",
                "success",
            )
            return redirect(url_for("enrolments.show", enrolment_id=enrolment_id), 303)
    return _page(enrolment, forms, error=error, status=422)
