"""Forms of the documents domain: the family's upload, staff's review and document types."""

from __future__ import annotations

import unicodedata

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import (
    BooleanField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from citoyens.documents.models import DocumentType
from citoyens.extensions import db
from citoyens.forms import IntegerField, required, strip

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
ID_RANGE = NumberRange(min=1, max=2**31 - 1)


def no_control_characters(multiline: bool = False):
    """Refuse NUL and other control characters (PostgreSQL refuses NUL; none belongs here)."""
    allowed = {"\n", "\r", "\t"} if multiline else set()

    def check(_form, field):
        value = field.data or ""
        if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
            raise ValidationError("Ce texte contient des caractères non autorisés.")

    return check


class WholeNumberField(IntegerField):
    """An integer field whose parsing error is French."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Saisissez un nombre entier, par exemple 12.") from exc


def choices(*pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class ChoiceField(RadioField):
    """Radio buttons whose "not one of the choices" message is French."""

    def pre_validate(self, form):
        if self.data not in {choice.value for choice in self.choices}:
            raise ValidationError("Choisissez une des options proposées.")


class UploadForm(FlaskForm):
    """One line of "Mes documents": which type, for whom, and the file.

    The ids are checked against the household by the view (forged ones → 404).
    """

    type_id = IntegerField(validators=[InputRequired(), ID_RANGE])
    person_id = IntegerField(validators=[Optional(), ID_RANGE])
    file = FileField("Fichier", validators=[FileRequired("Choisissez un fichier à envoyer.")])


class ReviewForm(FlaskForm):
    """Staff accept or refuse a document; a refusal says why."""

    decision = ChoiceField(
        "Décision",
        choices=choices(("accepted", "Accepter"), ("refused", "Refuser")),
        validators=[InputRequired("Choisissez d'accepter ou de refuser le document.")],
    )
    reason = TextAreaField(
        "Motif du refus ou message à la famille",
        description="Obligatoire pour un refus : il est envoyé à la famille par e-mail.",
        filters=[strip],
        validators=[
            Length(max=500, message="Le motif ne peut pas dépasser 500 caractères."),
            no_control_characters(multiline=True),
        ],
    )

    def validate_reason(self, field):
        if self.decision.data == "refused" and not field.data:
            raise ValidationError("Indiquez le motif du refus : il sera envoyé à la famille.")


class ActivationForm(FlaskForm):
    """Ask families for a type again (1) or no more (0): explicit, so a double click is harmless."""

    active = ChoiceField(choices=choices(("1", "Oui"), ("0", "Non")), validators=[InputRequired()])


VALIDITY_CHOICES = choices(
    ("none", "Sans date de fin"),
    ("months", "Un nombre de mois après l'envoi"),
    ("school_year", "Jusqu'à la fin de l'année scolaire (31 août)"),
)


class DocumentTypeForm(FlaskForm):
    code = StringField(
        "Code",
        description="Identifiant interne : lettres minuscules, chiffres et tirets.",
        filters=[strip, lambda v: v.lower() if isinstance(v, str) else v],
        validators=[
            required("Le code"),
            Length(max=40, message="Le code ne peut pas dépasser 40 caractères."),
            Regexp(
                r"^[a-z0-9][a-z0-9-]*\Z",
                message="Le code ne contient que des lettres minuscules sans accent, "
                "des chiffres et des tirets (par exemple responsabilite-civile).",
            ),
        ],
    )
    label = StringField(
        "Libellé",
        description="Le nom du document tel que les familles le voient.",
        filters=[strip],
        validators=[
            required("Le libellé"),
            Length(max=120, message="Le libellé ne peut pas dépasser 120 caractères."),
            no_control_characters(),
        ],
    )
    description = TextAreaField(
        "Description",
        description="Facultatif : ce qui est attendu, affiché aux familles.",
        filters=[strip],
        validators=[
            Optional(),
            Length(max=1000, message="La description ne peut pas dépasser 1000 caractères."),
            no_control_characters(multiline=True),
        ],
    )
    scope = ChoiceField(
        "Ce document concerne",
        choices=choices(("household", "Le foyer"), ("child", "Chaque enfant")),
        default="household",
        validators=[InputRequired("Indiquez à qui ce document se rapporte.")],
    )
    validity = ChoiceField(
        "Validité",
        choices=VALIDITY_CHOICES,
        default="none",
        validators=[InputRequired("Choisissez la durée de validité.")],
    )
    validity_months = WholeNumberField(
        "Nombre de mois",
        description="Entre 1 et 120, à compter du jour de l'envoi.",
        validators=[
            Optional(),
            NumberRange(min=1, max=120, message="Indiquez un nombre de mois entre 1 et 120."),
        ],
    )
    health = BooleanField("Document de santé (chaque consultation par un agent est enregistrée)")

    def __init__(self, *args, type_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._type_id = type_id

    def validate(self, extra_validators=None) -> bool:
        if self.validity.data != "months":  # the number only matters for that choice
            self.validity_months.data = None
            self.validity_months.raw_data = []
            self.validity_months.process_errors = []
        valid = super().validate(extra_validators)
        months = self.validity_months
        if self.validity.data == "months" and months.data is None and not months.errors:
            months.errors.append("Indiquez le nombre de mois de validité.")
            valid = False
        return valid

    def validate_code(self, field):
        query = select(DocumentType.id).where(DocumentType.code == field.data)
        if self._type_id is not None:
            query = query.where(DocumentType.id != self._type_id)
        if db.session.scalar(query) is not None:
            raise ValidationError("Ce code est déjà utilisé par un autre type de document.")

    def process_validity(self, doc_type: DocumentType) -> None:
        """Fill the radio from a type being edited."""
        if doc_type.until_school_year_end:
            self.validity.data = "school_year"
        elif doc_type.validity_months:
            self.validity.data = "months"
        else:
            self.validity.data = "none"

    def values(self) -> dict:
        """What the operations take: one validity rule, the others cleared."""
        return {
            "code": self.code.data,
            "label": self.label.data,
            "description": self.description.data or None,
            "scope": self.scope.data,
            "validity_months": self.validity_months.data
            if self.validity.data == "months"
            else None,
            "until_school_year_end": self.validity.data == "school_year",
            "health": bool(self.health.data),
        }
