"""The staff form of a message to families, and its drafts (a closure, a day's page).

Services and activities are offered from the user's own services only: an id of another
service is not in the list and is refused like any unknown one. The day is an activity
and a date, resolved to that activity's opening day.
"""

from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)

from citoyens.extensions import db
from citoyens.formatting import day_fr
from citoyens.forms import max_length, no_control_characters, required, required_text, strip
from citoyens.messages.audience import Audience
from citoyens.messages.models import AUDIENCES, BODY_MAX_LENGTH, SUBJECT_MAX_LENGTH
from citoyens.reservations.models import ActivityDay
from citoyens.services.forms import choice_list, date_field

CHOOSE_SERVICE = "Choisissez un de vos services dans la liste."
CHOOSE_ACTIVITY = "Choisissez une activité de vos services dans la liste."


def clean_text(value):
    """Strip, and count a newline as one character (browsers send CRLF)."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}", re.ASCII)


def token_or_nothing(value):
    """A send token as `new_send_token` makes them, else "" (no token)."""
    return value if isinstance(value, str) and TOKEN.fullmatch(value) else ""


def optional_id(value):
    """A select's value: "" (nothing chosen) is None; anything but digits is refused."""
    if value in ("", None):
        return None
    if isinstance(value, int):
        return value
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise ValueError(value)
    return int(value)


class MessageForm(FlaskForm):
    audience = RadioField(
        "Destinataires",
        choices=choice_list(AUDIENCES),
        default="service",
        invalid_choice_message="Choisissez à qui envoyer le message.",
    )
    service_id = SelectField(
        "Service",
        coerce=optional_id,
        choices=[],
        invalid_choice_message=CHOOSE_SERVICE,
        invalid_value_message=CHOOSE_SERVICE,
    )
    activity_id = SelectField(
        "Activité",
        coerce=optional_id,
        choices=[],
        invalid_choice_message=CHOOSE_ACTIVITY,
        invalid_value_message=CHOOSE_ACTIVITY,
    )
    day = date_field(
        "Jour",
        "Le jour",
        is_required=False,
        description="Pour « un jour donné » : un jour d'ouverture de l'activité choisie.",
    )
    subject = StringField(
        "Objet",
        filters=[strip],
        validators=required_text("L'objet", SUBJECT_MAX_LENGTH),
        render_kw={"maxlength": SUBJECT_MAX_LENGTH},
        description="Par exemple : L'accueil est fermé le 12 mars.",
    )
    body = TextAreaField(
        "Message",
        filters=[clean_text],
        validators=[
            required("Le message"),
            no_control_characters("Le message", multiline=True),
            max_length(BODY_MAX_LENGTH, "Le message"),
        ],
        render_kw={"rows": 10, "maxlength": BODY_MAX_LENGTH},
        description="Texte simple, sans mise en forme : les retours à la ligne sont gardés.",
    )
    # Given by the preview: without it (or with anything else than a token) « Envoyer »
    # shows the preview again, with a fresh one.
    send_token = HiddenField(filters=[token_or_nothing])
    preview = SubmitField("Voir l'aperçu")
    send = SubmitField("Envoyer")
    edit = SubmitField("Modifier")

    def __init__(self, *args, services=(), activities=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.service_id.choices = [SelectChoice("", "Choisissez un service")] + [
            SelectChoice(s.id, s.name) for s in services
        ]
        self.activity_id.choices = [SelectChoice("", "Choisissez une activité")] + [
            SelectChoice(a.id, f"{a.service.name} — {a.name}") for a in activities
        ]
        self._services = {s.id: s for s in services}
        self._activities = {a.id: a for a in activities}
        self.chosen: Audience | None = None

    # The fields each audience leaves aside: whatever they hold is ignored.
    UNUSED = {
        "service": ("activity_id", "day"),
        "activity": ("service_id", "day"),
        "day": ("service_id",),
    }

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        kind = self.audience.data
        if self.audience.errors or kind not in self.UNUSED:
            return False
        for name in self.UNUSED[kind]:
            self[name].data, self[name].errors = None, []
        if kind == "service" and self.service_id.data is None and not self.service_id.errors:
            self.service_id.errors.append(CHOOSE_SERVICE)
        if kind != "service" and self.activity_id.data is None and not self.activity_id.errors:
            self.activity_id.errors.append(CHOOSE_ACTIVITY)
        if kind == "day" and self.day.data is None and not self.day.errors:
            self.day.errors.append("Indiquez le jour : les familles attendues ce jour-là.")
        if any(field.errors for field in self) or self.form_errors:
            return False
        self.chosen = self._audience(kind)
        return self.chosen is not None

    def _audience(self, kind: str) -> Audience | None:
        if kind == "service":
            return Audience("service", self._services[self.service_id.data])
        activity = self._activities[self.activity_id.data]
        if kind == "activity":
            return Audience("activity", activity.service, activity)
        day = db.session.scalar(
            select(ActivityDay).where(
                ActivityDay.activity_id == activity.id, ActivityDay.day == self.day.data
            )
        )
        if day is None:
            self.day.errors.append(
                f"« {activity.name} » n'a pas de jour d'ouverture le {day_fr(self.day.data)}."
            )
            return None
        return Audience("day", activity.service, activity, day)


# --- Drafts -----------------------------------------------------------------------------------


def _period(first: date, last: date) -> str:
    if first == last:
        return f"le {day_fr(first)}"
    return f"du {day_fr(first)} au {day_fr(last)}"


def closure_draft(closure) -> dict:
    """The form's data for telling families about a closure: the families of the closed
    activity (or of the whole service), a subject and a text they may edit."""
    what = closure.activity.name if closure.activity else closure.service.name
    period = _period(closure.starts_on, closure.ends_on)
    return {
        "audience": "activity" if closure.activity_id else "service",
        "service_id": closure.service_id,
        "activity_id": closure.activity_id,
        "subject": f"Fermeture {period} : {what}"[:SUBJECT_MAX_LENGTH],
        "body": (
            f"Bonjour,\n\nFermeture de « {what} » {period}. Motif : {closure.reason}.\n\n"
            "Les réservations de ces jours sont annulées et ne vous seront pas facturées.\n\n"
            f"{closure.service.name}"
        ),
    }


def day_draft(day: ActivityDay) -> dict:
    """The form's data for writing to the families expected on a day. A closed day has no
    booking left (the closure cancelled them): its draft goes to the activity's families."""
    activity = day.activity
    draft = {
        "audience": "day",
        "service_id": activity.service_id,
        "activity_id": activity.id,
        "day": day.day,
    }
    if day.closed:
        reason = day.closed_reason or "fermeture"
        draft.update(
            audience="activity",
            subject=f"Fermeture le {day_fr(day.day)} : {activity.name}"[:SUBJECT_MAX_LENGTH],
            body=(
                f"Bonjour,\n\nFermeture de « {activity.name} » le {day_fr(day.day)}. "
                f"Motif : {reason}.\n\n{activity.service.name}"
            ),
        )
    return draft
