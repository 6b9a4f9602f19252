"""Household forms. French messages; nothing posted beyond these fields is read.

Field names are the model's attribute names, so `model_data()` hands the
operations a dict they can diff against the rows.
"""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional, Regexp
from wtforms.widgets import TextInput

from citoyens.documents.uploads import ACCEPT_ATTRIBUTE
from citoyens.forms import (
    DATE_FORMATS,
    INVALID_DATE,
    IntegerField,
    PhoneField,
    blank_to_none,
    optional_email_validators,
    optional_text,
    past_date,
    required,
    required_text,
    strip,
)
from citoyens.households import rules
from citoyens.services.models import CLASS_LEVELS

INLINE_SKIPPED_TYPES = {"CSRFTokenField", "HiddenField", "BooleanField", "RadioField"}


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def int_or_none(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class HouseholdFormBase(FlaskForm):
    """A form whose fields can validate inline (htmx) and give their data to an operation."""

    def enable_inline_validation(self, url_for_field) -> None:
        """Each text or select field posts the form on change and swaps its own block.

        `url_for_field(name)` gives the validation URL; a new dict per field, as
        `render_kw` from the class declaration is shared by every instance.
        """
        for f in self:
            if f.type in INLINE_SKIPPED_TYPES:
                continue
            f.render_kw = {
                **(f.render_kw or {}),
                "data-hx-post": url_for_field(f.name),
                "data-hx-trigger": "change",
                "data-hx-target": "closest .field",
                "data-hx-swap": "outerHTML",
                "data-hx-include": "closest form",
            }

    def model_data(self, names) -> dict:
        """Field name → model value for the given names ("" becomes None)."""
        return {name: blank_to_none(self[name].data) for name in names if name in self}


def first_name_field():
    return StringField(
        "Prénom",
        filters=[strip],
        validators=required_text("Le prénom", 100),
        render_kw={"autocomplete": "off"},
    )


def last_name_field():
    return StringField(
        "Nom",
        filters=[strip],
        validators=required_text("Le nom", 100),
        render_kw={"autocomplete": "off"},
    )


def birth_date_field(
    label="Date de naissance",
    *,
    is_required=False,
    max_years=120,
    too_old=None,
    example="12/04/1988",
):
    what = "La date de naissance"
    validators = [required(what)] if is_required else [Optional()]
    validators.append(past_date(what, max_years=max_years, too_old=too_old))
    return DateField(
        label,
        description=f"Par exemple {example}.",
        format=DATE_FORMATS,
        validators=validators,
        invalid_value_message=INVALID_DATE,
    )


def postcode_field():
    return StringField(
        "Code postal",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(
                r"^[0-9]{5}\Z",
                message="Le code postal doit comporter 5 chiffres, par exemple 49290.",
            ),
        ],
        render_kw={"inputmode": "numeric", "autocomplete": "postal-code", "maxlength": 5},
    )


QUOTIENT_RANGE = "Le quotient familial doit être entre 0 et 99 999."
QUOTIENT_DIGITS = "Saisissez le quotient familial en chiffres, par exemple 850."
_QUOTIENT_SPACES = re.compile(r"[\s\u00a0\u202f]+")


class QuotientField(IntegerField):
    """Whole euros ("850", "1 200", "850 €"). The text is bounded before it is parsed, and
    only ASCII digits count: a 4,000-digit value or "٨٥٠" gets a French message. A text
    input (with a numeric keyboard): "1 200 €" is not a number, and `maxlength` needs text."""

    widget = TextInput()

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist or not valuelist[0]:
            return
        raw = str(valuelist[0])
        if len(raw) > 20:
            raise ValueError(QUOTIENT_RANGE)
        text = _QUOTIENT_SPACES.sub("", raw).removesuffix("€")
        if not text.isascii() or not text.isdigit():
            raise ValueError(QUOTIENT_DIGITS)
        if len(text) > 5:
            raise ValueError(QUOTIENT_RANGE)
        self.data = int(text)


def family_quotient_field(label="Quotient familial (QF)", *, is_required=False, description=None):
    return QuotientField(
        label,
        description=description
        or "Le montant figurant sur l'attestation CAF ou MSA, en euros. "
        "Sans QF, le tarif le plus élevé s'applique.",
        validators=[InputRequired("Indiquez votre quotient familial.")]
        if is_required
        else [Optional()],
        render_kw={"inputmode": "numeric", "maxlength": 8, "autocomplete": "off"},
    )


class HouseholdForm(HouseholdFormBase):
    address_line = StringField(
        "Adresse",
        filters=[strip],
        validators=optional_text("L'adresse", 200),
        render_kw={"autocomplete": "address-line1"},
    )
    address_extra = StringField(
        "Complément d'adresse",
        description="Bâtiment, appartement, lieu-dit… (facultatif)",
        filters=[strip],
        validators=optional_text("Le complément d'adresse", 200),
        render_kw={"autocomplete": "address-line2"},
    )
    postcode = postcode_field()
    city = StringField(
        "Commune",
        filters=[strip],
        validators=optional_text("La commune", 100),
        render_kw={"autocomplete": "address-level2"},
    )
    paperless_invoices = BooleanField(
        "Facture en ligne : je consulte mes factures dans mon espace, sans envoi papier",
    )


class AdultForm(HouseholdFormBase):
    civility = RadioField(
        "Civilité",
        choices=choices(rules.CIVILITIES.items()),
        invalid_choice_message="Choisissez la civilité.",
    )
    first_name = first_name_field()
    last_name = last_name_field()
    birth_date = birth_date_field()
    email = EmailField(
        "Adresse e-mail",
        filters=[strip],
        validators=optional_email_validators(),
        render_kw={"autocomplete": "off", "inputmode": "email", "autocapitalize": "none"},
    )
    mobile_phone = PhoneField(
        "Téléphone portable",
        what="Le téléphone portable",
        description="Par exemple 06 12 34 56 78.",
    )
    home_phone = PhoneField("Téléphone fixe", what="Le téléphone fixe")
    work_phone = PhoneField(
        "Téléphone professionnel (employeur)",
        what="Le téléphone professionnel",
        description="Facultatif : pour vous joindre au travail en cas de besoin.",
    )
    address_line = StringField(
        "Adresse",
        description="À remplir seulement si elle diffère de celle du foyer.",
        filters=[strip],
        validators=optional_text("L'adresse", 200),
    )
    postcode = postcode_field()
    city = StringField("Commune", filters=[strip], validators=optional_text("La commune", 100))


class ChildForm(HouseholdFormBase):
    first_name = first_name_field()
    last_name = last_name_field()
    birth_date = birth_date_field(
        is_required=True,
        max_years=25,
        example="03/09/2017",
        too_old="Un enfant doit être né il y a moins de 25 ans : ajoutez plutôt un adulte.",
    )
    sex = RadioField(
        "Sexe",
        choices=choices(rules.SEXES.items()),
        invalid_choice_message="Choisissez « Fille » ou « Garçon ».",
    )
    school_id = SelectField(
        "École",
        description="Écoles privées : la restauration scolaire est gérée par l'OGEC.",
        coerce=int_or_none,
        invalid_choice_message="Choisissez une école de la liste.",
        invalid_value_message="Choisissez une école de la liste.",
    )
    class_level = SelectField(
        "Classe",
        choices=choices(
            [("", "Non scolarisé ou autre")] + [(level, level) for level in CLASS_LEVELS]
        ),
        invalid_choice_message="Choisissez une classe de la liste.",
    )
    allergies = TextAreaField(
        "Allergies et précisions",
        description="Allergies, intolérances, précisions sur le régime. Transmis aux seuls "
        "services qui accueillent votre enfant.",
        filters=[strip],
        validators=optional_text("Le champ allergies", 1000, multiline=True),
        render_kw={"rows": 3},
    )
    diet = SelectField(
        "Régime alimentaire",
        choices=choices(rules.DIETS.items()),
        invalid_choice_message="Choisissez un régime de la liste.",
    )
    pai = BooleanField("Mon enfant a un PAI (projet d'accueil individualisé)")
    doctor_name = StringField(
        "Médecin traitant", filters=[strip], validators=optional_text("Le nom du médecin", 120)
    )
    doctor_phone = PhoneField("Téléphone du médecin", what="Le téléphone du médecin")
    image_rights = BooleanField("J'autorise la prise et la diffusion de photos de mon enfant")
    outing_consent = BooleanField("J'autorise mon enfant à participer aux sorties")

    def set_schools(self, schools) -> None:
        self.school_id.choices = choices(
            [("", "Pas d'école ou autre école")] + [(school.id, school.name) for school in schools]
        )


class ContactForm(HouseholdFormBase):
    first_name = first_name_field()
    last_name = last_name_field()
    relationship_label = StringField(
        "Lien avec la famille",
        description="Par exemple : grand-mère, voisin, assistante maternelle.",
        filters=[strip],
        validators=optional_text("Le lien avec la famille", 60),
    )
    mobile_phone = PhoneField(
        "Téléphone portable",
        what="Le téléphone portable",
        description="Par exemple 06 12 34 56 78.",
    )
    home_phone = PhoneField("Téléphone fixe", what="Le téléphone fixe")
    can_pick_up = BooleanField("Autorisé à venir chercher les enfants")
    emergency_contact = BooleanField("À prévenir en cas d'urgence")

    def validate(self, extra_validators=None) -> bool:
        # Not a validate_<field> method: Optional() on an empty phone would skip it.
        valid = super().validate(extra_validators)
        phones = (self.mobile_phone, self.home_phone)
        if not any(f.data for f in phones) and not any(f.errors for f in phones):
            self.mobile_phone.errors.append(
                "Indiquez au moins un numéro de téléphone pour ce contact."
            )
            return False
        return valid


MEMBER_FORMS = {"adult": AdultForm, "child": ChildForm, "contact": ContactForm}


class RemovalForm(FlaskForm):
    reason = TextAreaField(
        "Motif (facultatif)",
        description="Par exemple : « déménagement », « n'est plus notre assistante maternelle ».",
        filters=[strip],
        validators=optional_text("Le motif", 1000, multiline=True),
        render_kw={"rows": 3},
    )


class QuotientForm(FlaskForm):
    """Staff correct the accepted QF (empty: unknown, top band)."""

    family_quotient = family_quotient_field()


class QuotientDeclarationForm(FlaskForm):
    """A family declares its QF with the attestation; staff verify both before it prices."""

    family_quotient = family_quotient_field(
        "Votre quotient familial (en euros)",
        is_required=True,
        description="Le montant indiqué sur votre attestation CAF ou MSA, par exemple 650.",
    )
    attestation = FileField(
        "Attestation CAF ou MSA",
        description="PDF, JPEG, PNG ou HEIC, 10 Mo au plus : l'attestation où figure ce "
        "quotient familial.",
        validators=[FileRequired("Joignez votre attestation CAF ou MSA.")],
        render_kw={"accept": ACCEPT_ATTRIBUTE},
    )
