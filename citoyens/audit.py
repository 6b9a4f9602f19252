"""The audit trail: one function for every event worth keeping."""

from __future__ import annotations

import logging

from flask import has_request_context, request

from citoyens.core.models import AuditEvent
from citoyens.extensions import db

log = logging.getLogger("citoyens.audit")


def record(action: str, *, actor=None, target: str | None = None, details: str | None = None):
    """Add an audit event to the session (the caller's commit keeps it) and log it.

    Callers never pass secrets (passwords, tokens, IBANs, document content).
    """
    ip = request.remote_addr if has_request_context() else None
    actor_id = getattr(actor, "id", None)
    event = AuditEvent(
        action=action,
        actor_id=actor_id,
        target=target,
        ip=ip,
        details=(details or "")[:500] or None,
    )
    db.session.add(event)
    log.info("%s actor=%s target=%s ip=%s", action, actor_id, target, ip)
    return event
