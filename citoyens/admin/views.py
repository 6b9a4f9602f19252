"""Back office landing page: what waits for this agent, and the way to each section."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

from citoyens.admin import home
from citoyens.admin.blueprint import bp
from citoyens.config import demo_settings
from citoyens.core import settings
from citoyens.forms import parse_id
from citoyens.reservations.staff import today
from citoyens.web import render


@bp.get("/")
def index():
    config = current_app.config
    # Administrators see the settings still holding their example value (production), the
    # commune's own settings (/admin/reglages) counting over the environment's.
    production_admin = config["PRODUCTION"] and current_user.is_admin
    demo = demo_settings(settings.merged_config(config)) if production_admin else []
    chosen = parse_id(request.args.get("service", "")) if current_user.is_admin else None
    return render(
        "admin/index.html",
        home=home.staff_home(current_user, today(), chosen),
        demo_settings=demo,
    )
