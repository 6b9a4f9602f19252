"""Forms of the services domain: schools, services, activities, school years, windows."""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import InputRequired, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from citoyens.documents.models import DocumentType
from citoyens.extensions import db
from citoyens.forms import (
    DATE_FORMATS,
    INVALID_DATE,
    IntegerField,
    max_length,
    optional_email_validators,
    optional_text,
    required,
    required_text,
    strip,
)
from citoyens.services.models import (
    ACTIVITY_UNITS,
    CALENDAR_KINDS,
    CLASS_LEVELS,
    SERVICE_CATEGORIES,
    Activity,
    Service,
)
from citoyens.services.operations import ACTIVITY_FIELDS, SERVICE_FIELDS

# --- Services, activities, school years and enrolment windows (issue 4) ---------------------

WEEKDAYS = {
    1: "Lundi",
    2: "Mardi",
    3: "Mercredi",
    4: "Jeudi",
    5: "Vendredi",
    6: "Samedi",
    7: "Dimanche",
}
UNIT_CHOICES = {"": "Aucune", **ACTIVITY_UNITS}
TIME_FORMATS = ["%H:%M", "%H:%M:%S", "%Hh%M"]
INVALID_TIME = "Saisissez une heure valide, par exemple 08:30."
INVALID_NUMBER = "Saisissez un nombre entier, par exemple 12."
DUPLICATE_CODE = "Ce code est déjà utilisé par un autre service."
MAX_AGE_MONTHS = 240


def choice_list(mapping: dict) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in mapping.items()]


class CheckboxesField(SelectMultipleField):
    """A group of checkboxes; forged values get a French message instead of WTForms' English."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def within(low: int, high: int, message: str):
    """A number between low and high; says nothing when the value did not even parse."""

    def check(form, field):
        if field.data is not None and not low <= field.data <= high:
            raise ValidationError(message)

    return check


def in_order(first, second, message: str, *, strict: bool = False) -> bool:
    """Whether `second` comes after `first` (or equals it unless strict); when it does not,
    the message goes on `second`. Says nothing when either is missing or already wrong."""
    if first.data is None or second.data is None or first.errors or second.errors:
        return True
    wrong = second.data <= first.data if strict else second.data < first.data
    if wrong:
        second.errors.append(message)
    return not wrong


def whole_number(label: str, what: str, low: int, high: int, *, required_: bool, **kwargs):
    first = InputRequired(f"{what} est obligatoire.") if required_ else Optional()
    return IntegerField(
        label,
        validators=[first, within(low, high, f"{what} doit être entre {low} et {high}.")],
        invalid_value_message=INVALID_NUMBER,
        render_kw={"inputmode": "numeric"},
        **kwargs,
    )


def time_field(label: str, what: str, **kwargs) -> TimeField:
    return TimeField(
        label,
        format=TIME_FORMATS,
        validators=[InputRequired(f"{what} est obligatoire.")],
        invalid_value_message=INVALID_TIME,
        **kwargs,
    )


def date_field(label: str, what: str, *, is_required: bool = True, **kwargs) -> DateField:
    first = InputRequired(f"{what} est obligatoire.") if is_required else Optional()
    return DateField(
        label,
        format=DATE_FORMATS,
        validators=[first],
        invalid_value_message=INVALID_DATE,
        **kwargs,
    )


class ServiceForm(FlaskForm):
    """A service: what families see of it, who may enrol, and which documents it requires."""

    name = StringField("Nom du service", filters=[strip], validators=required_text("Le nom", 120))
    category = RadioField(
        "Catégorie",
        choices=choice_list(SERVICE_CATEGORIES),
        default="enfance",
        invalid_choice_message="Choisissez une des catégories proposées.",
    )
    description = TextAreaField(
        "Description",
        description="Affichée aux familles au moment de l'inscription.",
        filters=[strip],
        validators=optional_text("La description", 2000, multiline=True),
    )
    mailbox = StringField(
        "Adresse e-mail du service",
        description="Reçoit les demandes des familles pour ce service.",
        filters=[strip],
        validators=optional_email_validators("L'adresse e-mail du service"),
        render_kw={"type": "email", "autocomplete": "off"},
    )
    min_age_months = whole_number(
        "Âge minimum (en mois)",
        "L'âge minimum",
        0,
        MAX_AGE_MONTHS,
        required_=False,
        description="À la rentrée de l'année scolaire. Laissez vide s'il n'y a pas de minimum.",
    )
    max_age_months = whole_number(
        "Âge maximum (en mois)",
        "L'âge maximum",
        0,
        MAX_AGE_MONTHS,
        required_=False,
        description="Par exemple 48 pour 4 ans. Laissez vide s'il n'y a pas de maximum.",
    )
    school_levels = CheckboxesField(
        "Niveaux scolaires admis",
        description="Aucun niveau coché : tous les enfants peuvent s'inscrire.",
        choices=[SelectChoice(level, level) for level in CLASS_LEVELS],
        invalid_choice_message="Choisissez des niveaux scolaires de la liste.",
    )
    excludes_private_school = BooleanField(
        "Réservé aux élèves des écoles publiques (la cantine d'une école privée est gérée "
        "par l'OGEC)"
    )
    place_request = BooleanField("Sur demande de place examinée en commission (multi-accueil)")
    document_type_ids = CheckboxesField(
        "Documents exigés pour l'inscription",
        coerce=int,
        choices=[],
        invalid_choice_message="Choisissez des documents de la liste.",
        invalid_value_message="Choisissez des documents de la liste.",
    )
    active = BooleanField("Service proposé aux familles", default=True)

    def __init__(self, *args, linked_type_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Active types, plus the ones already required even if deactivated since:
        # saving the form must not drop them silently.
        linked = list(linked_type_ids)
        query = select(DocumentType.id, DocumentType.label).order_by(DocumentType.label)
        query = query.where(or_(DocumentType.active.is_(True), DocumentType.id.in_(linked)))
        self.document_type_ids.choices = [
            SelectChoice(type_id, label) for type_id, label in db.session.execute(query)
        ]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        message = "L'âge maximum ne peut pas être inférieur à l'âge minimum."
        return in_order(self.min_age_months, self.max_age_months, message) and valid

    def values(self) -> dict:
        """What the operations take: empty optional texts and lists become None."""
        values = {name: self[name].data for name in SERVICE_FIELDS}
        values["description"] = values["description"] or None
        values["mailbox"] = values["mailbox"] or None
        levels = [level for level in CLASS_LEVELS if level in (self.school_levels.data or [])]
        values["school_levels"] = ",".join(levels) or None
        return values

    @staticmethod
    def initial(service: Service) -> dict:
        """The form's data for an existing service (lists from the stored strings)."""
        data = {name: getattr(service, name) for name in SERVICE_FIELDS}
        data["school_levels"] = [lvl for lvl in (service.school_levels or "").split(",") if lvl]
        data["document_type_ids"] = [link.document_type_id for link in service.required_documents]
        return data


class NewServiceForm(ServiceForm):
    """Creating a service also sets its code, which never changes afterwards."""

    code = StringField(
        "Code",
        description="Identifiant interne, définitif : lettres minuscules sans accent, chiffres "
        "et tirets (par exemple aps).",
        filters=[strip, lambda v: v.lower() if isinstance(v, str) else v],
        validators=[
            required("Le code"),
            max_length(30, "Le code"),
            Regexp(
                r"^[a-z0-9][a-z0-9-]*\Z",
                message="Le code ne contient que des lettres minuscules sans accent, "
                "des chiffres et des tirets (par exemple restauration).",
            ),
        ],
    )

    def validate_code(self, field):
        if db.session.scalar(select(Service.id).where(func.lower(Service.code) == field.data)):
            raise ValidationError(DUPLICATE_CODE)


class ActivityForm(FlaskForm):
    """Something families book: its days, its hours, its places and its cut-off."""

    name = StringField(
        "Nom de l'activité", filters=[strip], validators=required_text("Le nom", 120)
    )
    weekdays = CheckboxesField(
        "Jours de la semaine",
        coerce=int,
        choices=[SelectChoice(day, label) for day, label in WEEKDAYS.items()],
        invalid_choice_message="Choisissez des jours de la semaine de la liste.",
        invalid_value_message="Choisissez des jours de la semaine de la liste.",
    )
    start_time = time_field("Heure de début", "L'heure de début", description="Par exemple 07:15.")
    end_time = time_field("Heure de fin", "L'heure de fin", description="Par exemple 08:45.")
    capacity = whole_number("Places par jour", "Le nombre de places", 0, 1000, required_=True)
    cutoff_hours = whole_number(
        "Délai de réservation (en heures)",
        "Le délai de réservation",
        0,
        720,
        required_=True,
        default=72,
        description="Réserver, modifier ou annuler n'est plus possible moins de ce nombre "
        "d'heures avant le début de l'activité (72 h par défaut).",
    )
    calendar = RadioField(
        "Périodes",
        choices=choice_list(CALENDAR_KINDS),
        default="term",
        description="Les jours fériés et les fermetures sont toujours retirés.",
        invalid_choice_message="Choisissez une des périodes proposées.",
    )
    exclusion_set_id = SelectField(
        "Activités incompatibles",
        coerce=lambda value: None if value in ("", None) else int(value),
        choices=[],
        description="Un enfant ne peut avoir qu'une activité du groupe par jour "
        "(journée, matin ou après-midi).",
        invalid_choice_message="Choisissez un groupe de ce service dans la liste.",
        invalid_value_message="Choisissez un groupe de ce service dans la liste.",
    )
    unit = RadioField(
        "Unité",
        choices=choice_list(UNIT_CHOICES),
        default="",
        invalid_choice_message="Choisissez « Aucune », « Journée » ou « Demi-journée ».",
    )
    accounting_code = StringField(
        "Code comptable",
        description="Le compte de recettes de ses lignes de factures dans l'export comptable, "
        "par exemple 7067-APS : lettres, chiffres, points et tirets, 20 caractères au plus.",
        filters=[strip],
        validators=[
            *optional_text("Le code comptable", 20),
            Regexp(
                r"[A-Za-z0-9.\-]+\Z",
                message="Le code comptable ne peut contenir que des lettres sans accent, des "
                "chiffres, des points et des tirets.",
            ),
        ],
    )

    def __init__(self, *args, exclusion_sets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.exclusion_set_id.choices = [SelectChoice("", "Aucun")] + [
            SelectChoice(group.id, group.name) for group in exclusion_sets
        ]

    def validate_weekdays(self, field):
        if not field.data:
            raise ValidationError("Choisissez au moins un jour de la semaine.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        message = "L'heure de fin doit être après l'heure de début."
        return in_order(self.start_time, self.end_time, message, strict=True) and valid

    def values(self) -> dict:
        values = {name: self[name].data for name in ACTIVITY_FIELDS}
        values["weekdays"] = ",".join(str(day) for day in sorted(set(self.weekdays.data)))
        values["unit"] = self.unit.data or None
        values["accounting_code"] = self.accounting_code.data or None
        return values

    @staticmethod
    def initial(activity: Activity) -> dict:
        data = {name: getattr(activity, name) for name in ACTIVITY_FIELDS}
        data["weekdays"] = activity.weekday_numbers
        data["unit"] = activity.unit or ""
        data["accounting_code"] = activity.accounting_code or ""
        data["exclusion_set_id"] = activity.exclusion_set_id
        return data
