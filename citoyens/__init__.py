"""Citoyens: a free family portal for French communes."""

from __future__ import annotations

import logging
import os

from flask import Flask, session
from werkzeug.middleware.proxy_fix import ProxyFix

from citoyens import config as config_module

log = logging.getLogger("citoyens")


def create_app(config: dict | None = None) -> Flask:
    """Build the application: defaults ← environment ← `config` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(config_module.load(app.instance_path, config))
    if config:
        app.config.update(config)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # The proxy passes the Host header through (nginx: proxy_set_header Host $host).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    url = config_module.normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", config_module.engine_options(url))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    warn_about_demo_settings(app)

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_hooks(app)
    register_cli(app)
    return app


def warn_about_demo_settings(app: Flask) -> None:
    """In production, name at start-up every setting still holding its example value."""
    if not app.config["PRODUCTION"]:
        return
    for name, label in config_module.demo_settings(app.config):
        log.warning("setting %s still holds its example value (%s): set it", name, label)


def register_extensions(app: Flask) -> None:
    import citoyens.models  # noqa: F401  (every table known to the metadata)
    from citoyens.database import configure_sqlite
    from citoyens.extensions import csrf, db, limiter, login_manager, mail, migrate

    db.init_app(app)
    from citoyens.forms import refuse_nul_in_statements

    with app.app_context():
        configure_sqlite(db.engine)
        refuse_nul_in_statements(db.engine)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    from citoyens import assets, compression, jobs

    jobs.init_app(app)
    # Hashed, minified, precompressed static files; compressed responses (after the
    # security headers, registered later: after_request hooks run last-registered first).
    assets.init_app(app)
    compression.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = app.config["SESSION_PROTECTION"]

    from citoyens.accounts.sessions import load_user

    login_manager.user_loader(load_user)


def register_blueprints(app: Flask) -> None:
    from citoyens.accounts import staff_views as accounts_staff  # noqa: F401 (admin bp)
    from citoyens.accounts.views import bp as accounts_bp
    from citoyens.admin import audit_views, outbox, settings_views, views  # noqa: F401 (admin bp)
    from citoyens.admin import exports as staff_exports  # noqa: F401 (admin bp)
    from citoyens.admin.blueprint import bp as admin_bp
    from citoyens.billing import (  # noqa: F401 (routes on the billing and admin blueprints)
        mandate_views,
        pay_views,
        staff_cash_up,
        staff_counter,
        staff_credits,
        staff_direct_debits,
        staff_finance,
        staff_invoices,
        staff_run,
        staff_tariffs,
    )
    from citoyens.billing.bank_sim import bp as bank_sim_bp
    from citoyens.billing.views import bp as billing_bp
    from citoyens.core.views import bp as core_bp
    from citoyens.documents import staff_views as documents_staff  # noqa: F401
    from citoyens.documents.views import bp as documents_bp
    from citoyens.enrolments import change_views, staff_changes  # noqa: F401 (routes)
    from citoyens.enrolments import staff_views as enrolments_staff  # noqa: F401
    from citoyens.enrolments.views import bp as enrolments_bp
    from citoyens.households import (
        staff_family,  # noqa: F401 (admin bp)
        staff_import,  # noqa: F401
    )
    from citoyens.households import staff_views as households_staff  # noqa: F401
    from citoyens.households.views import bp as households_bp
    from citoyens.messages import staff_views as messages_staff  # noqa: F401 (admin bp)
    from citoyens.messages.views import bp as messages_bp
    from citoyens.privacy.views import bp as privacy_bp
    from citoyens.pwa.views import bp as pwa_bp
    from citoyens.requests import staff_views as requests_staff  # noqa: F401
    from citoyens.requests.views import bp as requests_bp
    from citoyens.reservations import (  # noqa: F401 (routes on the reservations and admin bps)
        day_views,
        plan_views,
        staff_calendar,
        staff_days,
        staff_households,
    )
    from citoyens.reservations.feed import bp as feed_bp
    from citoyens.reservations.views import bp as reservations_bp
    from citoyens.services import staff_schools, staff_services  # noqa: F401 (admin bp)

    for blueprint in (
        core_bp,
        accounts_bp,
        households_bp,
        documents_bp,
        enrolments_bp,
        reservations_bp,
        feed_bp,
        billing_bp,
        bank_sim_bp,
        requests_bp,
        messages_bp,
        privacy_bp,
        admin_bp,
        pwa_bp,
    ):
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from citoyens.errors import register

    register(app)


def register_hooks(app: Flask) -> None:
    from citoyens import formatting

    formatting.register(app)
    from flask_login import user_loaded_from_cookie

    from citoyens.accounts.sessions import CLEAR_CACHES, enforce_lifetime, restored_from_cookie
    from citoyens.core import settings as commune_settings
    from citoyens.forms import refuse_control_characters_in_query
    from citoyens.web import SessionInterface, security_headers

    app.session_interface = SessionInterface()
    app.before_request(refuse_control_characters_in_query)
    app.before_request(enforce_lifetime)
    user_loaded_from_cookie.connect(restored_from_cookie, app)
    app.after_request(security_headers)

    @app.context_processor
    def shell_context():
        return {
            "commune_name": commune_settings.current().name,
            "commune": commune_settings.current(),
            "commune_default_color": commune_settings.DEFAULT_PRIMARY_COLOR,
            "clear_caches": session.pop(CLEAR_CACHES, False),
            "nav_items": nav_items(app),
            "nav_section": nav_section,
            "tab_items": tab_items(app),
            "more_items": more_items(app),
            "tab_current": tab_current,
        }


PARENT_NAV = [
    ("core.dashboard", "Accueil"),
    ("households.index", "Mon foyer"),
    ("documents.index", "Documents"),
    ("enrolments.index", "Inscriptions"),
    ("reservations.index", "Réservations"),
    ("billing.index", "Factures"),
    ("requests.index", "Demandes"),
    ("messages.index", "Messages"),
    ("accounts.account", "Mon compte"),
]
STAFF_NAV = [
    ("admin.index", "Back-office"),
    ("admin.requests", "Demandes"),
    ("admin.enrolments", "Inscriptions"),
    ("admin.reservations", "Réservations"),
    ("admin.invoices", "Factures"),
    ("admin.households", "Familles"),
    ("admin.documents", "Documents"),
    ("accounts.account", "Mon compte"),
]


def nav_items(app: Flask) -> list[tuple[str, str]]:
    """The navigation of the logged-in user: only the sections this build has."""
    from flask_login import current_user

    if not current_user.is_authenticated:
        return []
    items = STAFF_NAV if current_user.is_staff else PARENT_NAV
    return [(endpoint, label) for endpoint, label in items if endpoint in app.view_functions]


# On a phone, a parent's bottom bar: (endpoint, label, icon); the rest is under "Plus".
TAB_ITEMS = [
    ("core.dashboard", "Accueil", "home"),
    ("reservations.index", "Réservations", "calendar"),
    ("billing.index", "Factures", "invoice"),
    ("households.index", "Foyer", "family"),
]
# The "Plus" page: (endpoint, label, hint).
MORE_ITEMS = [
    ("documents.index", "Documents", "Pièces justificatives à envoyer ou à remplacer"),
    ("requests.index", "Demandes", "Vos demandes au service et leurs réponses"),
    ("enrolments.index", "Inscriptions", "Inscrire un enfant, suivre une inscription"),
    ("messages.index", "Messages", "Les messages du service"),
    ("billing.mandate", "Prélèvement automatique", "Payer les factures par prélèvement SEPA"),
    ("accounts.account", "Mon compte", "Adresse e-mail, mot de passe, vos données"),
    ("core.accessibility", "Aide et accessibilité", "L'accessibilité de l'espace famille"),
]
# Pages of the "Plus" places that belong to a blueprint of the bottom bar.
MORE_ENDPOINT_PREFIXES = ("billing.mandate", "accounts.", "privacy.", "core.more", "core.access")


def tab_items(app: Flask) -> list[tuple[str, str, str]]:
    from flask_login import current_user

    if not current_user.is_authenticated or current_user.is_staff:
        return []
    return [item for item in TAB_ITEMS if item[0] in app.view_functions]


def more_items(app: Flask) -> list[tuple[str, str, str]]:
    from flask_login import current_user

    if not current_user.is_authenticated or current_user.is_staff:
        return []
    return [item for item in MORE_ITEMS if item[0] in app.view_functions]


def tab_current(endpoint: str) -> bool:
    """True when the current page belongs to the bottom bar's place `endpoint` ("core.more":
    the "Plus" button, for every page of the places it lists)."""
    from flask import request

    current = request.endpoint or ""
    if current.startswith(MORE_ENDPOINT_PREFIXES):
        return endpoint == "core.more"
    if endpoint == "core.more":
        return any(
            current.startswith(item.partition(".")[0] + ".")
            for item, _label, _hint in MORE_ITEMS
            if not item.startswith(("billing.", "core."))
        )
    if endpoint == "core.dashboard":
        return current == endpoint
    if current.startswith("calendar_feed."):  # "Agenda et e-mails", under Réservations
        return endpoint == "reservations.index"
    return current.startswith(endpoint.partition(".")[0] + ".")


def nav_section(endpoint: str) -> bool:
    """True when the current page belongs to the section `endpoint` opens.

    A parent section is its blueprint (households.*); a back-office section is
    its index and the pages named after it (admin.requests → admin.request).
    """
    from flask import request

    current = request.endpoint or ""
    blueprint, _, name = endpoint.partition(".")
    if blueprint == "admin":
        return name != "index" and current.startswith(f"admin.{name.rstrip('s')}")
    if endpoint == "core.dashboard" or endpoint.startswith("accounts."):
        return current == endpoint
    return current.startswith(f"{blueprint}.")


def register_cli(app: Flask) -> None:
    from citoyens.cli import register

    register(app)
