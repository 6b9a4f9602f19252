"""Back office: the commune's settings (administrators only)."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp, form_status
from citoyens.core import settings
from citoyens.core.settings_forms import SettingsForm
from citoyens.documents.storage import get_storage
from citoyens.documents.uploads import UploadError, read_limited
from citoyens.extensions import db
from citoyens.web import render


@bp.route("/reglages", methods=["GET", "POST"], endpoint="settings")
@admin_required
def settings_page():
    row = settings.commune()
    form = SettingsForm(obj=row) if row else SettingsForm(data={"name": settings.current().name})
    if form.validate_on_submit():
        values = form.values()
        old_logo = row.logo_key if row else None
        if form.remove_logo.data:
            values["logo_key"] = settings.REMOVE_LOGO
        elif form.logo.data:
            try:
                upload = form.logo.data
                values["logo_key"] = settings.store_logo(
                    read_limited(upload.stream), upload.filename
                )
            except UploadError as exc:
                form.logo.errors.append(str(exc))
        if not form.logo.errors:
            changed = settings.save(values, current_user)
            db.session.commit()
            if old_logo and "logo_key" in changed:
                get_storage().delete(old_logo)
            flash(
                "Réglages enregistrés." if changed else "Aucun changement.",
                "success" if changed else "info",
            )
            return redirect(url_for("admin.settings"), 303)
    return render(
        "admin/settings/index.html",
        form=form,
        current=settings.current(),
        iban_masked=settings.masked_iban(row.sepa_creditor_iban if row else None),
        status=form_status(form),
    )
