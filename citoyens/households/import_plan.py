"""Planning a families import (issue 13): what each line of the file would do. Reads only.

`plan_import(parsed, today)` checks every line with the portal's own forms (names, e-mails,
phones via `normalize_phone`, birth dates, postcodes), resolves schools, classes, services
and activities, and compares with what the database holds for the same family reference
(`Household.external_ref`): each family is "create", "update", "unchanged" or "refused"
(one refused line refuses its whole family). `import_apply.apply_import` writes the plan.
A fixed number of queries whatever the size of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from werkzeug.datastructures import MultiDict

from citoyens.forms import DATE_FORMATS, normalize_phone
from citoyens.households.forms import AdultForm, ChildForm, ContactForm, HouseholdForm
from citoyens.households.import_csv import ParsedFile, Row, normalise_header
from citoyens.households.import_lookup import EnrolmentPlan, Lookup, enrolments_of, lookup_rows
from citoyens.households.models import HouseholdMember
from citoyens.services.models import CLASS_LEVELS
from citoyens.tabular import FORMULA_STARTS

ROLES = {
    "responsable": "adult",
    "adulte": "adult",
    "parent": "adult",
    "enfant": "child",
    "contact": "contact",
    "autre_contact": "contact",
}
CIVILITIES = {"m": "M.", "monsieur": "M.", "mr": "M.", "mme": "Mme", "madame": "Mme"}
CIVILITIES.update({"mlle": "Mme", "mademoiselle": "Mme"})
# Spreadsheet formulas: a cell starting with one of these runs when the file is opened.
# Columns checked for formulas (phones may start with "+").
TEXT_COLUMNS = {
    "reference_famille": "La référence famille",
    "nom": "Le nom",
    "prenom": "Le prénom",
    "adresse": "L'adresse",
    "ville": "La commune",
    "ecole": "L'école",
    "lien": "Le lien avec la famille",
    "email": "L'adresse e-mail",
}
HOUSEHOLD_COLUMNS = {"adresse": "address_line", "code_postal": "postcode", "ville": "city"}
ACTION_LABELS = {
    "create": "Création",
    "update": "Mise à jour",
    "unchanged": "Inchangé",
    "refused": "Refusé",
}


@dataclass
class LinePlan:
    line: int
    role: str
    name: str
    action: str = "unchanged"
    changes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    person_id: int | None = None
    fields: dict = field(default_factory=dict)  # person's model fields to set
    relationship_label: str | None = None
    account_email: str | None = None  # a parent account to create
    enrolments: list[EnrolmentPlan] = field(default_factory=list)


@dataclass
class FamilyPlan:
    reference: str
    lines: list[LinePlan] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    household_id: int | None = None
    household_fields: dict = field(default_factory=dict)
    household_changes: list[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        if self.reasons or any(line.reasons for line in self.lines):
            return "refused"
        if self.household_id is None:
            return "create"
        if self.household_changes or any(line.action != "unchanged" for line in self.lines):
            return "update"
        return "unchanged"

    @property
    def first_line(self) -> int:
        return self.lines[0].line if self.lines else 0


@dataclass
class ImportPlan:
    families: list[FamilyPlan]
    encoding: str = ""
    delimiter: str = ";"
    ignored_columns: list[str] = field(default_factory=list)
    school_year_id: int | None = None

    def count(self, action: str) -> int:
        return sum(1 for family in self.families if family.action == action)

    @property
    def counts(self) -> dict[str, int]:
        return {action: self.count(action) for action in ACTION_LABELS}

    @property
    def writable(self) -> list[FamilyPlan]:
        return [f for f in self.families if f.action in ("create", "update")]


def _key(first_name: str, last_name: str) -> tuple[str, str]:
    return (first_name.strip().casefold(), last_name.strip().casefold())


def _form_errors(form, names) -> list[str]:
    """The form's French errors on the fields the import filled (others are not ours)."""
    form.validate()
    return [error for name in names for error in form[name].errors]


def _parse_date(value: str) -> date | None:
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


def _phone_fields(value: str) -> tuple[dict, list[str]]:
    if not value:
        return {}, []
    try:
        phone = normalize_phone(value)
    except ValueError as error:
        return {}, [f"Téléphone « {value[:40]} » : {error}"]
    mobile = phone.startswith(("+336", "+337")) or not phone.startswith("+33")
    return {"mobile_phone" if mobile else "home_phone": phone}, []


def _person_fields(row: Row, role: str, lookup: Lookup) -> tuple[dict, list[str], str | None]:
    """(model fields, reasons, relationship label) of one line, checked by the portal's forms."""
    data = {"first_name": row.get("prenom"), "last_name": row.get("nom")}
    fields, reasons = {}, []
    phone, phone_reasons = _phone_fields(row.get("telephone"))
    reasons += phone_reasons
    if role == "adult":
        raw_civility = normalise_header(row.get("civilite"))
        if raw_civility and raw_civility not in CIVILITIES:
            reasons.append(f"Civilité « {row.get('civilite')[:20]} » : M. ou Mme attendu.")
        elif raw_civility:
            data["civility"] = CIVILITIES[raw_civility]
        data.update(birth_date=row.get("date_naissance"), email=row.get("email"))
        form_class, names = AdultForm, list(data)
    elif role == "child":
        level = row.get("classe").upper()
        if level:
            if level in CLASS_LEVELS:
                fields["class_level"] = level
            else:
                reasons.append(
                    f"Classe « {row.get('classe')[:20]} » inconnue : {', '.join(CLASS_LEVELS)}."
                )
        school_name = row.get("ecole")
        if school_name:
            school = lookup.schools.get(school_name.casefold())
            if school is None:
                reasons.append(f"École « {school_name[:60]} » inconnue : créez-la d'abord.")
            else:
                fields["school_id"] = school.id
        data["birth_date"] = row.get("date_naissance")
        form_class, names = ChildForm, list(data)
    else:
        data["relationship_label"] = row.get("lien")
        for name, value in phone.items():
            data[name] = value
        form_class, names = ContactForm, list(data) + ["mobile_phone"]
    if data.get("birth_date") and _parse_date(data["birth_date"]) is None:
        reasons.append(
            f"Date de naissance « {data['birth_date'][:20]} » invalide : JJ/MM/AAAA attendu, "
            "par exemple 03/09/2017."
        )
        names.remove("birth_date")
    form = form_class(formdata=MultiDict(data), meta={"csrf": False})
    if role == "child":
        form.set_schools([])  # the school is matched by name above
    reasons += _form_errors(form, names)
    for name in ("first_name", "last_name", "birth_date", "civility", "email"):
        if name in data and name in form and form[name].data:
            fields[name] = form[name].data
    if "email" in fields:
        fields["email"] = fields["email"].lower()
    if role != "child":
        fields.update(phone)
    label = form.relationship_label.data or None if role == "contact" else None
    return fields, reasons, label


def _line_plan(row: Row, lookup: Lookup) -> LinePlan:
    role = ROLES.get(normalise_header(row.get("role")))
    plan = LinePlan(
        line=row.line, role=role or "", name=f"{row.get('prenom')} {row.get('nom')}".strip()
    )
    if role is None:
        plan.reasons.append(
            f"Rôle « {row.get('role')[:20]} » inconnu : responsable, enfant ou contact."
        )
        return plan
    for column, what in TEXT_COLUMNS.items():
        if row.get(column).startswith(FORMULA_STARTS):
            plan.reasons.append(
                f"{what} commence par « {row.get(column)[0]} » (formule de tableur) : refusé."
            )
    if plan.reasons:
        return plan
    plan.fields, reasons, plan.relationship_label = _person_fields(row, role, lookup)
    plan.reasons += reasons
    if role == "child":
        plan.enrolments, reasons = enrolments_of(row.get("inscriptions"), lookup)
        plan.reasons += reasons
    elif row.get("inscriptions"):
        plan.reasons.append("Inscriptions : seulement sur la ligne d'un enfant.")
    return plan


def _household_fields(family: FamilyPlan, rows: list[Row]) -> None:
    seen: dict[str, tuple[str, int]] = {}
    for row in rows:
        for column in HOUSEHOLD_COLUMNS:
            value = row.get(column)
            if not value:
                continue
            if column in seen and seen[column][0] != value:
                family.reasons.append(
                    f"Ligne {row.line} : {column} « {value[:60]} » différent de la ligne "
                    f"{seen[column][1]} (« {seen[column][0][:60]} ») pour la même famille."
                )
            seen.setdefault(column, (value, row.line))
    data = {HOUSEHOLD_COLUMNS[column]: value for column, (value, _) in seen.items()}
    form = HouseholdForm(formdata=MultiDict(data), meta={"csrf": False})
    family.reasons += _form_errors(form, list(data))
    family.household_fields = {name: form[name].data for name in data}


def _compare(family: FamilyPlan, lookup: Lookup, emails_seen: dict[str, int]) -> None:
    """Match each line to the family's current members and list what would change."""
    from citoyens.households.rules import FIELD_LABELS

    household = lookup.households.get(family.reference)
    members: dict[tuple[str, tuple[str, str]], HouseholdMember] = {}
    if household is not None:
        family.household_id = household.id
        family.household_changes = [
            FIELD_LABELS[name]
            for name, value in family.household_fields.items()
            if getattr(household, name) != value
        ]
        for m in household.memberships:
            if m.left_at is None:
                members[(m.role, _key(m.person.first_name, m.person.last_name))] = m
    in_file: dict[tuple, int] = {}
    for line in family.lines:
        if not line.role or not line.fields.get("first_name"):
            continue
        key = (line.role, _key(line.fields["first_name"], line.fields.get("last_name", "")))
        if key in in_file:
            line.reasons.append(f"Même personne que la ligne {in_file[key]} de cette famille.")
            continue
        in_file[key] = line.line
        member = members.get(key)
        email = line.fields.get("email")
        if member is None:
            line.action = "create"
        else:
            line.person_id = member.person_id
            line.changes = [
                FIELD_LABELS[name]
                for name, value in line.fields.items()
                if getattr(member.person, name) != value
            ]
            if line.relationship_label and member.relationship_label != line.relationship_label:
                line.changes.append(FIELD_LABELS["relationship_label"])
            line.action = "update" if line.changes else "unchanged"
        if line.role == "adult" and email:
            _plan_account(line, email, lookup, emails_seen)
        for enrolment in line.enrolments:
            if line.person_id is None or (
                (line.person_id, enrolment.service_id) not in lookup.live_enrolments
            ):
                line.changes.append(f"inscription {enrolment.label}")
                line.action = "update" if line.action == "unchanged" else line.action
    if not any(line.role == "adult" for line in family.lines) and household is None:
        family.reasons.append(
            "Aucun responsable dans cette famille : au moins une ligne « responsable »."
        )


def _plan_account(line: LinePlan, email: str, lookup: Lookup, emails_seen: dict) -> None:
    if email in emails_seen:
        line.reasons.append(f"Adresse e-mail {email} déjà sur la ligne {emails_seen[email]}.")
        return
    emails_seen[email] = line.line
    user = lookup.users_by_email.get(email)
    if user is not None:
        if line.person_id is None or user.person_id != line.person_id:
            line.reasons.append(f"L'adresse e-mail {email} est déjà celle d'un autre compte.")
        return
    if line.person_id is not None and line.person_id in lookup.account_person_ids:
        return  # this adult has an account already (under another address): untouched
    line.account_email = email
    line.changes.append("compte famille")
    if line.action == "unchanged":
        line.action = "update"


def plan_import(parsed: ParsedFile, today: date) -> ImportPlan:
    """What importing the file would do, family by family. Writes nothing."""
    groups: dict[str, list[Row]] = {}
    for row in parsed.rows:
        groups.setdefault(row.get("reference_famille"), []).append(row)
    references = {ref for ref in groups if ref}
    emails = {row.get("email").lower() for row in parsed.rows if row.get("email")}
    lookup = lookup_rows(references, emails, today)
    plan = ImportPlan(
        families=[],
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        ignored_columns=parsed.ignored_columns,
        school_year_id=lookup.school_year_id,
    )
    emails_seen: dict[str, int] = {}
    for reference, rows in groups.items():
        family = FamilyPlan(reference=reference)
        family.lines = [_line_plan(row, lookup) for row in rows]
        if not reference:
            family.reasons.append("Référence famille manquante.")
        elif len(reference) > 40:
            family.reasons.append("Référence famille trop longue (40 caractères au plus).")
        _household_fields(family, rows)
        if not family.reasons:
            _compare(family, lookup, emails_seen)
        plan.families.append(family)
    return plan
