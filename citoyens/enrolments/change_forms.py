"""Forms to change an accepted enrolment during the year (staff, and families asking).

The enrolment comes from the URL; the activities offered are the only ids accepted.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectMultipleField
from wtforms.validators import InputRequired, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from citoyens.forms import DATE_FORMATS, INVALID_DATE
from citoyens.households.forms import ChildForm
from citoyens.requests.forms import message_field


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _date(label: str, *, required: bool, description: str):
    validators = [InputRequired("Indiquez la date.")] if required else [Optional()]
    return DateField(
        label,
        format=DATE_FORMATS,
        validators=validators,
        description=description,
        invalid_value_message=INVALID_DATE,
    )


class EndForm(FlaskForm):
    ends_on = _date(
        "Dernier jour",
        required=True,
        description="Les réservations après ce jour sont annulées, sans être facturées.",
    )
    reason = message_field("Motif (facultatif)", optional=True)


class ActivitiesForm(FlaskForm):
    add = _Checkboxes("Ajouter", coerce=int, choices=[])
    remove = _Checkboxes("Retirer", coerce=int, choices=[])
    on_date = _date(
        "À partir du lendemain du",
        required=False,
        description="Pour un retrait : les réservations de l'activité après ce jour sont "
        "annulées. Vide : à partir de demain.",
    )
    reason = message_field("Motif (facultatif)", optional=True)

    def set_activities(self, current, others) -> None:
        """`current`: the enrolment's activities; `others`: the service's other ones."""
        self.remove.choices = [SelectChoice(a.id, a.name) for a in current]
        self.add.choices = [SelectChoice(a.id, a.name) for a in others]
        for f in (self.add, self.remove):
            f.pre_validate = _checked_choices(f)


def _checked_choices(f):
    def pre_validate(_form):
        allowed = {choice.value for choice in f.choices}
        if any(value not in allowed for value in f.data or []):
            raise ValidationError("Choisissez des activités de la liste.")

    return pre_validate


class SchoolForm(FlaskForm):
    school_id = ChildForm.school_id
    class_level = ChildForm.class_level
    reason = message_field("Motif (facultatif)", optional=True)

    set_schools = ChildForm.set_schools


PREFIXES = {"end": "fin", "activities": "activites", "school": "scolarite"}


def change_forms(enrolment, *, posted: str | None = None) -> dict:
    """The three forms for an accepted enrolment; `posted` names the one read from the
    request, the others start from the enrolment as it is."""
    from citoyens.enrolments.changes import other_activities
    from citoyens.households.rules import active_schools

    current = sorted((link.activity for link in enrolment.activities), key=lambda a: a.name)

    # Prefixed: the three forms share one page, and field ids must stay unique.
    def build(name, cls):
        prefix = PREFIXES[name]
        return cls(prefix=prefix) if posted == name else cls(formdata=None, prefix=prefix)

    forms = {"end": build("end", EndForm), "activities": build("activities", ActivitiesForm)}
    forms["activities"].set_activities(current, other_activities(enrolment))
    school = build("school", SchoolForm)
    school.set_schools(active_schools(keep_id=enrolment.child.school_id))
    if posted != "school":
        school.school_id.data = enrolment.child.school_id
        school.class_level.data = enrolment.child.class_level or ""
    forms["school"] = school
    return forms
