"""« Télécharger mes données »: a household's archive (right of access, RGPD art. 15).

A parent asks (`request_export`): one row "pending" (at most one per household, by a
partial unique index), and the worker builds the ZIP (`build_export`): `donnees.json`,
`LISEZMOI.txt` and the current documents' files, stored in the upload storage under a
random key. Once ready the requester gets an e-mail pointing at the page (which needs a
login: no public link to the file). The archive is kept EXPORT_LIFETIME, then deleted by
the retention purge (`delete_expired`).
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import datetime, timedelta

from flask import render_template
from sqlalchemy import select, update

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.core import settings as commune_settings
from citoyens.database import immediate_writes, utcnow
from citoyens.documents.storage import get_storage, new_key
from citoyens.documents.uploads import clean_filename, extension_of
from citoyens.extensions import db
from citoyens.formatting import date_fr
from citoyens.privacy import collect
from citoyens.privacy.models import DataExport
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.privacy")

EXPORT_LIFETIME = timedelta(days=7)
# An archive still "pending" after this long died with its worker: it is marked failed and
# no longer blocks a new one.
STALE_AFTER = timedelta(hours=2)
JSON_NAME = "donnees.json"
README_NAME = "LISEZMOI.txt"


def latest_export(household_id: int) -> DataExport | None:
    """The household's most recent archive request, whatever its state."""
    return db.session.scalar(
        select(DataExport)
        .where(DataExport.household_id == household_id)
        .order_by(DataExport.created_at.desc(), DataExport.id.desc())
        .limit(1)
    )


def export_of_household(export_id: int, household_id: int) -> DataExport | None:
    """The archive if it is the household's (None otherwise: the caller answers 404)."""
    return db.session.scalar(
        select(DataExport).where(
            DataExport.id == export_id, DataExport.household_id == household_id
        )
    )


def is_downloadable(export: DataExport | None, now: datetime | None = None) -> bool:
    return (
        export is not None
        and export.status == "ready"
        and export.storage_key is not None
        and export.expires_at is not None
        and export.expires_at > (now or utcnow())
    )


def request_export(household_id: int, actor) -> tuple[int, bool]:
    """Ask for the household's archive: (its id, True), or (the archive already in
    preparation, False). Commits; the build is enqueued after the commit."""
    from citoyens import jobs
    from citoyens.privacy.tasks import build_export_task

    def work() -> tuple[int, bool]:
        now = utcnow()
        db.session.execute(
            update(DataExport)
            .where(
                DataExport.household_id == household_id,
                DataExport.status == "pending",
                DataExport.created_at < now - STALE_AFTER,
            )
            .values(status="failed", error="Interrompue (worker arrêté).")
            .execution_options(synchronize_session=False)
        )
        pending = db.session.scalar(
            select(DataExport.id).where(
                DataExport.household_id == household_id, DataExport.status == "pending"
            )
        )
        if pending is not None:
            return pending, False
        export = DataExport(
            household_id=household_id, requested_by_id=getattr(actor, "id", None), status="pending"
        )
        db.session.add(export)
        db.session.flush()  # a concurrent click's row: IntegrityError, retried, then seen above
        audit.record("privacy.export_requested", actor=actor, target=f"household:{household_id}")
        jobs.enqueue_after_commit(build_export_task, export.id)
        return export.id, True

    return write_transaction(work)


# --- Building the archive (the worker) --------------------------------------------------------


def archive_names(documents) -> dict[int, str]:
    """A readable, unique name in the archive for each document:
    "documents/<type> - <person> - <date>.<ext>"."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    for document in documents:
        parts = [document.type.label]
        if document.person is not None:
            parts.append(document.person.full_name)
        parts.append(document.uploaded_at.date().isoformat())
        stem = clean_filename(" - ".join(parts).replace("/", "-"))[:150]
        extension = extension_of(document.content_type)
        name, n = f"{stem}.{extension}", 1
        while name in taken:
            n += 1
            name = f"{stem} ({n}).{extension}"
        taken.add(name)
        names[document.id] = f"documents/{name}"
    return names


def household_data(household_id: int, documents, names: dict[int, str]) -> dict:
    """The content of donnees.json."""
    return {
        "genere_le": utcnow().isoformat(),
        "commune": commune_settings.current().name,
        "foyer": collect.household_section(household_id),
        "personnes": collect.people_section(household_id),
        "comptes": collect.accounts_section(household_id),
        "consentements": collect.consents_section(household_id),
        "documents": [collect.document_entry(d, names.get(d.id)) for d in documents],
        "inscriptions": collect.enrolments_section(household_id),
        "demandes": collect.requests_section(household_id),
        "reservations": collect.bookings_section(household_id),
        "factures": collect.invoices_section(household_id),
        "paiements": collect.payments_section(household_id),
        "mandats_de_prelevement": collect.mandates_section(household_id),
        "avoirs_et_credits": collect.credits_section(household_id),
        "courriels": collect.mails_section(household_id),
    }


def build_zip(household_id: int) -> bytes:
    """The archive's bytes. Documents are stored as they are (already compressed)."""
    storage = get_storage()
    documents = list(db.session.scalars(collect.documents_query(household_id)))
    current = [d for d in documents if d.replaced_at is None]
    names = archive_names(current)
    files: dict[int, bytes] = {}
    for document in current:
        try:
            with storage.open(document.storage_key) as stream:
                files[document.id] = stream.read()
        except FileNotFoundError:
            log.error("document:%s has no file in the store", document.id)
            names.pop(document.id, None)
    data = household_data(household_id, documents, names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(README_NAME, render_template("privacy/readme.txt", data=data))
        archive.writestr(JSON_NAME, json.dumps(data, ensure_ascii=False, indent=2))
        for document_id, content in files.items():
            archive.writestr(names[document_id], content, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def build_export(export_id: int) -> str:
    """Build a pending archive, store it, mark it ready and e-mail its requester: the final
    status ("skipped" when it is not pending any more, e.g. another worker did it)."""
    export = db.session.get(DataExport, export_id)
    if export is None or export.status != "pending":
        return "skipped"
    household_id, requested_by_id = export.household_id, export.requested_by_id
    try:
        content = build_zip(household_id)
        key = new_key("zip")
        get_storage().save(key, content)
    except Exception:
        log.exception("data export %s failed", export_id)
        db.session.rollback()
        with immediate_writes():
            db.session.execute(
                update(DataExport)
                .where(DataExport.id == export_id, DataExport.status == "pending")
                .values(status="failed", error="Erreur lors de la préparation de l'archive.")
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
        return "failed"
    db.session.rollback()  # end the read transaction: the next one writes
    now = utcnow()
    with immediate_writes():
        claimed = db.session.execute(
            update(DataExport)
            .where(DataExport.id == export_id, DataExport.status == "pending")
            .values(
                status="ready",
                storage_key=key,
                size=len(content),
                ready_at=now,
                expires_at=now + EXPORT_LIFETIME,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            db.session.rollback()
            get_storage().delete(key)
            return "skipped"
        _tell_requester(requested_by_id, now + EXPORT_LIFETIME)
        db.session.commit()
    return "ready"


def _tell_requester(user_id: int | None, expires_at: datetime) -> None:
    from citoyens.mail import absolute_url, send_mail

    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None or not user.active:
        return
    send_mail(
        "data-export-ready",
        user.email,
        "Votre archive de données est prête",
        "data_export_ready",
        user=user,
        link=absolute_url("privacy.index"),
        expires_on=date_fr(expires_at),
    )


def mark_downloaded(export: DataExport, actor) -> None:
    """Record the download (first time) and audit it. The caller commits."""
    if export.downloaded_at is None:
        export.downloaded_at = utcnow()
    audit.record("privacy.export_downloaded", actor=actor, target=f"data_export:{export.id}")


# --- Expiry -----------------------------------------------------------------------------------


def expired_exports_query(now: datetime):
    """Ready archives past their expiry: their file goes, the row says "expired"."""
    return select(DataExport.id).where(DataExport.status == "ready", DataExport.expires_at <= now)
