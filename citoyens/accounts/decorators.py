"""Role guards, in one place: anonymous → login, wrong role → 403."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from citoyens import audit
from citoyens.extensions import db


def _role_required(check):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not check(current_user):
                audit.record("access.denied", actor=current_user, target=view.__name__)
                db.session.commit()
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


staff_required = _role_required(lambda user: user.is_staff)
admin_required = _role_required(lambda user: user.is_admin)
parent_required = _role_required(lambda user: user.role == "parent" and user.household_id)
