"""Request forms: a family's reply, staff messages and decisions, the queue's filters.

Nothing posted beyond these fields is read: the request, its household and the
status to reach come from the URL and the button pressed, never from hidden fields.
"""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional, ValidationError

from citoyens.forms import required
from citoyens.requests.models import REQUEST_KINDS, REQUEST_STATUSES
from citoyens.requests.operations import MESSAGE_MAX_LENGTH
from citoyens.requests.rules import GENERAL_QUEUE

# Control characters other than tab and newlines: PostgreSQL refuses NUL, nobody types them.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value):
    """Strip, and count a newline as one character (browsers send CRLF)."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def plain_text(_form, field):
    if field.data and CONTROL_CHARACTERS.search(field.data):
        raise ValidationError("Le message contient des caractères non autorisés.")


def message_length():
    return Length(
        max=MESSAGE_MAX_LENGTH,
        message=f"Le message ne peut pas dépasser {MESSAGE_MAX_LENGTH:_} caractères.".replace(
            "_", "\u202f"
        ),
    )


def message_field(label: str, *, optional: bool = False, description: str | None = None):
    validators = [Optional()] if optional else [required("Le message")]
    return TextAreaField(
        label,
        description=description,
        filters=[clean_text],
        validators=[*validators, message_length(), plain_text],
        render_kw={"rows": 4, "maxlength": MESSAGE_MAX_LENGTH},
    )


class ReplyForm(FlaskForm):
    """The family writes to the service about its open request."""

    body = message_field("Votre message")


class CancelForm(FlaskForm):
    """Only a button: the CSRF token and nothing else."""


class StaffMessageForm(FlaskForm):
    """An agent writes to the family, or keeps a note for colleagues."""

    body = message_field("Message")
    send = SubmitField("Envoyer à la famille")
    note = SubmitField("Enregistrer en note interne")

    @property
    def internal(self) -> bool:
        return bool(self.note.data) and not self.send.data


class StatusButtonsForm(FlaskForm):
    """A message and one submit button per status; a refusal needs its message.

    Subclasses declare their buttons and list them in BUTTONS as (status, field name).
    """

    BUTTONS: tuple[tuple[str, str], ...] = ()
    CHOOSE = "Choisissez une action."
    REFUSAL_REASON = "Indiquez le motif du refus : il sera envoyé à la famille."

    def chosen_status(self) -> str | None:
        chosen = [status for status, name in self.BUTTONS if self[name].data]
        return chosen[0] if len(chosen) == 1 else None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        status = self.chosen_status()
        if status is None:
            self.form_errors.append(self.CHOOSE)
            return False
        if status == "refused" and not self.message.data and not self.message.errors:
            self.message.errors = [*self.message.errors, self.REFUSAL_REASON]
            return False
        return valid


class DecisionForm(StatusButtonsForm):
    """An agent takes the request in hand, accepts or refuses it."""

    message = message_field(
        "Message à la famille",
        optional=True,
        description="Facultatif pour prendre en charge ou accepter ; "
        "obligatoire pour refuser (le motif est envoyé à la famille).",
    )
    take = SubmitField("Prendre en charge")
    accept = SubmitField("Accepter")
    refuse = SubmitField("Refuser")

    BUTTONS = (("in_review", "take"), ("accepted", "accept"), ("refused", "refuse"))
    CHOOSE = "Choisissez une action : prendre en charge, accepter ou refuser."


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


STATUS_FILTERS = choices([("open", "En cours"), *REQUEST_STATUSES.items(), ("all", "Toutes")])


class FilterForm(FlaskForm):
    """A staff queue's filters, read from the query string: `FILTERS` names the fields."""

    FILTERS: tuple[str, ...] = ()

    def cleaned(self) -> dict[str, str]:
        """Each filter's value, or its default when the query string holds something else."""
        self.validate()
        values = {}
        for name in self.FILTERS:
            field = self[name]
            if field.errors or field.data is None:
                field.data = field.default
                field.errors = []
            values[name] = field.data
        return values


class QueueFilterForm(FilterForm):
    """The queue's filters, read from the query string (a GET form: no CSRF)."""

    FILTERS = ("service", "status", "kind")

    class Meta:
        csrf = False

    service = SelectField("Service", choices=[], default="")
    status = SelectField("Statut", choices=STATUS_FILTERS, default="open")
    kind = SelectField(
        "Type de demande",
        # Read at each use: later domains (enrolments) add their kinds.
        choices=lambda: choices([("", "Tous les types"), *REQUEST_KINDS.items()]),
        default="",
    )

    def set_services(self, services, general: bool = True) -> None:
        """`general`: offer the queue of requests tied to no service (administrators)."""
        self.service.choices = choices(
            [
                ("", "Tous mes services"),
                *((str(s.id), s.name) for s in services),
                *([(GENERAL_QUEUE, "Général (sans service)")] if general else []),
            ]
        )
