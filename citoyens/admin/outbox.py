"""Back office: the outbox. Messages the worker gave up on, and how many wait; staff put a
failed message back in the queue. Administrators only: the messages name every family.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from sqlalchemy import select

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.mail import resend, waiting_counts
from citoyens.web import render

SHOWN = 100


@bp.get("/courriels")
@admin_required
def outbox():
    waiting = waiting_counts()
    failed = db.session.scalars(
        select(MailMessage)
        .where(MailMessage.status == "failed")
        .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
        .limit(SHOWN)
    ).all()
    return render(
        "admin/outbox/index.html",
        waiting=waiting,
        failed=failed,
    )


@bp.post("/courriels/<int:message_id>/renvoyer")
@admin_required
def outbox_resend(message_id: int):
    """(CSRF is checked for every POST by CSRFProtect.)"""
    message = db.get_or_404(MailMessage, message_id)
    if resend(message):
        db.session.commit()  # enqueued once committed
        flash(f"Le message à {message.recipient} est remis dans la file d'envoi.", "success")
    elif message.status == "failed":
        flash(
            "Ce message contenait un lien secret, qui n'est pas conservé : la personne doit "
            "demander un nouveau lien.",
            "warning",
        )
    else:
        flash("Ce message n'est pas en échec : rien à renvoyer.", "info")
    return redirect(url_for("admin.outbox"), 303)
