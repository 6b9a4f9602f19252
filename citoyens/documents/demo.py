"""Demo data of the documents domain, called by citoyens.demo.seed (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.documents.models import DocumentType
from citoyens.documents.operations import QUOTIENT_TYPE
from citoyens.extensions import db

# code, label, scope, validity_months, until_school_year_end, health, description
DEMO_TYPES = [
    (
        "responsabilite-civile",
        "Attestation de responsabilité civile",
        "child",
        None,
        True,
        False,
        "L'attestation de votre assureur pour l'année scolaire en cours, au nom de l'enfant.",
    ),
    (
        "vaccinations",
        "Vaccinations",
        "child",
        None,
        False,
        True,
        "La page des vaccinations du carnet de santé, ou une attestation du médecin. "
        "N'envoyez pas le carnet de santé entier.",
    ),
    (
        "certificat-medical",
        "Certificat médical",
        "child",
        12,
        False,
        True,
        "Certificat de non contre-indication aux activités, de moins d'un an.",
    ),
    (
        "justificatif-domicile",
        "Justificatif de domicile",
        "household",
        3,
        False,
        False,
        "Facture d'énergie, de téléphone ou quittance de loyer de moins de 3 mois.",
    ),
    (
        QUOTIENT_TYPE["code"],
        QUOTIENT_TYPE["label"],
        QUOTIENT_TYPE["scope"],
        QUOTIENT_TYPE["validity_months"],
        QUOTIENT_TYPE["until_school_year_end"],
        QUOTIENT_TYPE["health"],
        QUOTIENT_TYPE["description"],
    ),
]


def seed_demo() -> int:
    """Create the demo document types that are missing; return how many were added."""
    existing = set(db.session.scalars(select(DocumentType.code)))
    created = 0
    for code, label, scope, months, school_year, health, description in DEMO_TYPES:
        if code in existing:
            continue
        db.session.add(
            DocumentType(
                code=code,
                label=label,
                scope=scope,
                validity_months=months,
                until_school_year_end=school_year,
                health=health,
                description=description,
                active=True,
            )
        )
        created += 1
    db.session.flush()
    return created
