"""Forms of the services domain: schools, services, activities, school years, windows."""

from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import AnyOf, InputRequired, Optional, Regexp, ValidationError
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
    SCHOOL_KINDS,
    SERVICE_CATEGORIES,
    Activity,
    School,
    SchoolYear,
    Service,
)
from citoyens.services.operations import ACTIVITY_FIELDS, SERVICE_FIELDS

SCHOOL_FIELDS = ("name", "kind", "address", "canteen_contact")
CANTEEN_CONTACT_MISSING = "Indiquez qui gère la cantine (OGEC) pour une école privée."
DUPLICATE_NAME = "Ce nom d'école existe déjà."


class SchoolForm(FlaskForm):
    """A school: its name, public or private, and for a private one who runs the canteen."""

    name = StringField("Nom de l'école", filters=[strip], validators=required_text("Le nom", 120))
    kind = RadioField(
        "Type d'école",
        choices=[SelectChoice(value, label) for value, label in SCHOOL_KINDS.items()],
        default="public",
        invalid_choice_message="Choisissez « Publique » ou « Privée ».",
    )
    address = StringField("Adresse", filters=[strip], validators=optional_text("L'adresse", 255))
    canteen_contact = StringField(
        "Gestion de la cantine",
        description="Obligatoire pour une école privée : l'OGEC ou la personne qui gère "
        "la restauration scolaire, avec un moyen de la joindre. Affiché aux familles.",
        filters=[strip],
        validators=optional_text("La gestion de la cantine", 255),
    )

    def __init__(self, *args, school_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._school_id = school_id

    def validate(self, extra_validators=None) -> bool:
        # Not a validate_<field> method: Optional() on an empty contact would skip it.
        valid = super().validate(extra_validators)
        contact = self.canteen_contact
        if self.kind.data == "private" and not contact.data and not contact.errors:
            contact.errors.append(CANTEEN_CONTACT_MISSING)
            valid = False
        return valid

    def validate_name(self, field):
        # Compared in Python: SQLite's lower() ignores accents' case ("École" / "école"),
        # and the list of schools is a few dozen rows.
        wanted = field.data.casefold()
        query = select(School.id, School.name)
        if self._school_id is not None:
            query = query.where(School.id != self._school_id)
        if any(name.casefold() == wanted for _id, name in db.session.execute(query)):
            raise ValidationError(DUPLICATE_NAME)

    def values(self) -> dict:
        """What the operations take: empty optional texts become None."""
        return {name: self[name].data or None for name in SCHOOL_FIELDS}


class ActivationForm(FlaskForm):
    """Offer a school again (1) or no more (0): explicit, so a double click is harmless."""

    active = HiddenField(validators=[InputRequired(), AnyOf(["0", "1"])])


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
DUPLICATE_YEAR = "Cette année scolaire existe déjà."
BAD_YEAR_NAME = "Le nom s'écrit avec deux années qui se suivent, par exemple « 2026-2027 »."
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
        return values

    @staticmethod
    def initial(activity: Activity) -> dict:
        data = {name: getattr(activity, name) for name in ACTIVITY_FIELDS}
        data["weekdays"] = activity.weekday_numbers
        data["unit"] = activity.unit or ""
        data["exclusion_set_id"] = activity.exclusion_set_id
        return data


SCHOOL_YEAR_NAME = re.compile(r"^([0-9]{4})-([0-9]{4})\Z")


def school_year_bounds(first_year: int) -> tuple[date, date]:
    """The default dates of a school year: 1 September to 31 August (DOMAIN.md)."""
    return date(first_year, 9, 1), date(first_year + 1, 8, 31)


class SchoolYearForm(FlaskForm):
    """A school year: "2026-2027", from 1 September to 31 August unless staff say otherwise."""

    name = StringField(
        "Année scolaire",
        description="Par exemple 2026-2027.",
        filters=[strip],
        validators=[required("Le nom de l'année scolaire"), max_length(9, "Le nom")],
        render_kw={"inputmode": "numeric", "maxlength": 9},
    )
    starts_on = date_field(
        "Premier jour",
        "Le premier jour",
        is_required=False,
        description="Laissez vide pour le 1er septembre.",
    )
    ends_on = date_field(
        "Dernier jour",
        "Le dernier jour",
        is_required=False,
        description="Laissez vide pour le 31 août.",
    )

    def __init__(self, *args, school_year_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._school_year_id = school_year_id

    def validate_name(self, field):
        match = SCHOOL_YEAR_NAME.match(field.data or "")
        if not match or int(match.group(2)) != int(match.group(1)) + 1:
            raise ValidationError(BAD_YEAR_NAME)
        if not 2000 <= int(match.group(1)) <= 2098:
            raise ValidationError(BAD_YEAR_NAME)
        query = select(SchoolYear.id).where(SchoolYear.name == field.data)
        if self._school_year_id is not None:
            query = query.where(SchoolYear.id != self._school_year_id)
        if db.session.scalar(query) is not None:
            raise ValidationError(DUPLICATE_YEAR)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid:
            return False
        first = int(self.name.data[:4])
        default_start, default_end = school_year_bounds(first)
        self.starts_on.data = self.starts_on.data or default_start
        self.ends_on.data = self.ends_on.data or default_end
        starts, ends = self.starts_on.data, self.ends_on.data
        if ends <= starts:
            self.ends_on.errors.append("Le dernier jour doit être après le premier jour.")
            return False
        if starts.year != first:
            self.starts_on.errors.append(f"Le premier jour doit être en {first}.")
            valid = False
        if ends.year != first + 1:
            self.ends_on.errors.append(f"Le dernier jour doit être en {first + 1}.")
            valid = False
        return valid

    def values(self) -> dict:
        return {
            "name": self.name.data,
            "starts_on": self.starts_on.data,
            "ends_on": self.ends_on.data,
        }


class EnrolmentWindowForm(FlaskForm):
    """When families may send enrolments to one service for one school year."""

    school_year_id = SelectField(
        "Année scolaire",
        coerce=int,
        choices=[],
        validate_choice=True,
        invalid_choice_message="Choisissez une année scolaire de la liste.",
        invalid_value_message="Choisissez une année scolaire de la liste.",
    )
    opens_on = date_field("Ouverture des inscriptions", "La date d'ouverture")
    closes_on = date_field("Clôture des inscriptions", "La date de clôture")

    def __init__(self, *args, school_years=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.school_year_id.choices = [SelectChoice(y.id, y.name) for y in school_years]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        message = "La date de clôture ne peut pas précéder la date d'ouverture."
        return in_order(self.opens_on, self.closes_on, message) and valid
