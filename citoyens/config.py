"""Settings read from environment variables.

`CITOYENS_ENV` selects the mode: `production` (the default: a WSGI server started
without settings never runs as a demo), `development` (chosen explicitly, `make run`)
or `testing` (the default when the app is built with `TESTING` in its config). In
production a missing `SECRET_KEY` stops start-up, and the settings still holding their
example value are named in a warning (see `demo_settings`).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from citoyens.billing import creditor_id


class ConfigurationError(RuntimeError):
    """Raised at start-up when a required setting is missing."""


ENVIRONMENTS = ("production", "development", "testing")

# Example values: fine for a demonstration, wrong for a commune. Each is named, with what
# it is, by `demo_settings` while it is still in use.
DEMO_VALUES = {
    "PUBLIC_URL": ("", "l'adresse publique du portail (liens des e-mails)"),
    "MAIL_SERVER": ("localhost", "le serveur d'envoi des e-mails"),
    "MAIL_DEFAULT_SENDER": (
        "Citoyens <ne-pas-repondre@example.org>",
        "l'expéditeur des e-mails",
    ),
    "PAYFIP_NUMCLI": ("", "le numéro client PayFiP (DGFiP) du paiement en ligne"),
    "SEPA_CREDITOR_NAME": ("TRESOR PUBLIC CHALONNES", "le nom du créancier SEPA"),
    "SEPA_CREDITOR_IBAN": ("FR7630001007941234567890185", "l'IBAN du créancier SEPA"),
    "SEPA_CREDITOR_BIC": ("BDFEFRPPCCT", "le BIC du créancier SEPA"),
    "SEPA_CREDITOR_ID": (creditor_id.DEMO_CREDITOR_ID, "l'identifiant créancier SEPA (ICS)"),
    # Unset, development uses a public key (citoyens/crypto.py); production signs no mandate.
    "DATA_ENCRYPTION_KEYS": ("", "la clé de chiffrement des IBAN (prélèvement automatique)"),
}


def _demo(name: str) -> str:
    return os.environ.get(name, DEMO_VALUES[name][0])


def demo_settings(config) -> list[tuple[str, str]]:
    """The settings still holding their example value, as (name, what it is in French).

    The PayFiP number counts only with PayFiP on, the mail server only with SMTP on.
    """
    found = []
    for name, (demo, label) in DEMO_VALUES.items():
        # Unset counts as the example value (production leaves the ICS empty).
        if (config.get(name) or "") not in (demo, ""):
            continue
        if name == "PAYFIP_NUMCLI" and config.get("PAYMENT_BACKEND") != "payfip_ws":
            continue
        if name == "MAIL_SERVER" and config.get("MAIL_BACKEND") != "smtp":
            continue
        found.append((name, label))
    return found


def environment(overrides: dict | None = None) -> str:
    """The mode: CITOYENS_ENV; else `testing` for an app built with TESTING; else production."""
    default = "testing" if (overrides or {}).get("TESTING") else "production"
    env = (os.environ.get("CITOYENS_ENV") or default).strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigurationError(
            f"CITOYENS_ENV={env!r} is unknown: use production, development or testing."
        )
    return env


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _database_url(instance_path: str) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "citoyens.sqlite3")
    return normalize_database_url(url)


def normalize_database_url(url: str) -> str:
    """Name the psycopg 3 driver: hosting platforms hand out postgres:// URLs."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load(instance_path: str, overrides: dict | None = None) -> dict:
    """Return the settings for the mode (see `environment`); `overrides` are the app's
    explicit config (tests), which may carry the SECRET_KEY."""
    env = environment(overrides)
    production = env == "production"
    secret = (overrides or {}).get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    if production and not secret:
        raise ConfigurationError(
            "SECRET_KEY is not set. Citoyens runs in production unless CITOYENS_ENV says "
            "otherwise, and refuses to start without it: generate one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` and export "
            "SECRET_KEY (for a development server, export CITOYENS_ENV=development)."
        )
    secure_cookies = _bool("SESSION_COOKIE_SECURE", production)
    settings = {
        "ENV_NAME": env,
        "PRODUCTION": production,
        "SECRET_KEY": secret or "dev-only-not-secret",
        "SQLALCHEMY_DATABASE_URI": _database_url(instance_path),
        # Forms and CSRF: the token lives as long as the session (DESIGN.md).
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        # Sessions and cookies (SECURITY.md "Accounts and sessions").
        "SESSION_COOKIE_NAME": "__Host-session" if secure_cookies else "session",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_NAME": "__Host-remember" if secure_cookies else "remember_token",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_int("SESSION_IDLE_HOURS", 2)),
        "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=_int("SESSION_ABSOLUTE_HOURS", 12)),
        "SESSION_PROTECTION": "basic",
        "HSTS": production,
        # Tokens sent by e-mail.
        "CONFIRM_TOKEN_MAX_AGE": timedelta(hours=48),
        "RESET_TOKEN_MAX_AGE": timedelta(hours=2),
        # Uploads: 10 MB per file, a little more for the multipart envelope. Stored under
        # UPLOAD_FOLDER (shared by every app process), never under static/.
        "MAX_CONTENT_LENGTH": 11 * 1024 * 1024,
        "UPLOAD_STORAGE": os.environ.get("UPLOAD_STORAGE", "filesystem"),
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or str(Path(instance_path) / "uploads"),
        # Rate limits: Redis when several processes run, memory otherwise.
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "citoyens",
        # Failed logins (and wrong current passwords) are counted per account and per client
        # address: the address's limit is high, since a town hall or a school network shares
        # one address; an account's failures lock that account only.
        "LOGIN_FAILURES_LIMIT": os.environ.get("LOGIN_FAILURES_LIMIT", "5 per 15 minutes"),
        "ADDRESS_FAILURES_LIMIT": os.environ.get("ADDRESS_FAILURES_LIMIT", "60 per 15 minutes"),
        # Reverse proxies in front of the app (0: none). With N, the client's address and
        # scheme are read from the last N X-Forwarded-For / X-Forwarded-Proto entries; with
        # none, these headers are ignored (a client could write them).
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # Mail: printed to the console in development, sent by SMTP in production.
        "MAIL_BACKEND": os.environ.get("MAIL_BACKEND", "smtp" if production else "console"),
        "MAIL_SERVER": _demo("MAIL_SERVER"),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": _demo("MAIL_DEFAULT_SENDER"),
        # Outgoing mail leaves from the job queue (citoyens/jobs.py), never from a request:
        # each SMTP connection and read gives up after MAIL_TIMEOUT seconds; a message is
        # tried MAIL_MAX_ATTEMPTS times, MAIL_RETRY_DELAY seconds apart, doubling each time.
        "MAIL_TIMEOUT": float(os.environ.get("MAIL_TIMEOUT") or 10),
        "MAIL_MAX_ATTEMPTS": _int("MAIL_MAX_ATTEMPTS", 6),
        "MAIL_RETRY_DELAY": float(os.environ.get("MAIL_RETRY_DELAY") or 120),
        # Staff decisions on a family's documents are told in one e-mail, this many seconds
        # after the household's last decision (citoyens/documents/notices.py).
        "DOCUMENT_NOTICE_DELAY": _int("DOCUMENT_NOTICE_DELAY", 180),
        # Message-ID domain (else PUBLIC_URL's host, else MAIL_DEFAULT_SENDER's domain) and
        # the Reply-To of messages that concern no service (else the commune's contact).
        "MAIL_MESSAGE_ID_DOMAIN": os.environ.get("MAIL_MESSAGE_ID_DOMAIN", ""),
        "MAIL_REPLY_TO": os.environ.get("MAIL_REPLY_TO", ""),
        # Job queue: JOBS_URL (redis://… or sqlite:///path), else REDIS_URL, else a SQLite
        # file under instance/. JOBS_IMMEDIATE runs tasks at once, in-process (unset: only
        # when TESTING).
        "JOBS_URL": os.environ.get("JOBS_URL") or os.environ.get("REDIS_URL") or "",
        "JOBS_IMMEDIATE": (
            _bool("JOBS_IMMEDIATE", False) if os.environ.get("JOBS_IMMEDIATE") else None
        ),
        # Public address used in e-mails and the PWA manifest.
        "PUBLIC_URL": _demo("PUBLIC_URL"),
        "COMMUNE_NAME": os.environ.get("COMMUNE_NAME", "Chalonnes-sur-Loire"),
        # Retention (CNIL NS-058; citoyens/retention.py, README « Données personnelles »).
        "RETENTION_INACTIVE_MONTHS": _int("RETENTION_INACTIVE_MONTHS", 36),
        "RETENTION_CLOSED_DAYS": _int("RETENTION_CLOSED_DAYS", 30),
        "RETENTION_DOCUMENT_GRACE_MONTHS": _int("RETENTION_DOCUMENT_GRACE_MONTHS", 12),
        "RETENTION_REPLACED_DOCUMENT_MONTHS": _int("RETENTION_REPLACED_DOCUMENT_MONTHS", 12),
        "RETENTION_AUDIT_MONTHS": _int("RETENTION_AUDIT_MONTHS", 12),
        "RETENTION_MAIL_MONTHS": _int("RETENTION_MAIL_MONTHS", 12),
        "RETENTION_JOB_RUN_DAYS": _int("RETENTION_JOB_RUN_DAYS", 30),
        # Staff exports above this many rows are built by the worker (citoyens/export_jobs.py);
        # the file is kept RETENTION_EXPORT_FILE_DAYS days, for its requester only.
        "EXPORT_WORKER_ROWS": _int("EXPORT_WORKER_ROWS", 20_000),
        "RETENTION_EXPORT_FILE_DAYS": _int("RETENTION_EXPORT_FILE_DAYS", 7),
        # Billing (issue 6). Invoices are due INVOICE_DUE_DAYS after issue; under direct
        # debit they are collected on DIRECT_DEBIT_DAY of the month after the month billed.
        "INVOICE_DUE_DAYS": _int("INVOICE_DUE_DAYS", 30),
        "DIRECT_DEBIT_DAY": _int("DIRECT_DEBIT_DAY", 15),
        # Reminders of invoices left to pay (not under direct debit): an e-mail this many days
        # before the due date, another this many days after it; 0 sends none. Administrators
        # may set them in /admin/reglages.
        "INVOICE_REMINDER_DAYS_BEFORE": _int("INVOICE_REMINDER_DAYS_BEFORE", 5),
        "INVOICE_REMINDER_DAYS_AFTER": _int("INVOICE_REMINDER_DAYS_AFTER", 10),
        # SEPA pre-notification: the family learns the amount and date of each debit at least
        # this many days before it (the SEPA rulebook's default; the mandate text states it).
        "SEPA_PRENOTIFICATION_DAYS": _int("SEPA_PRENOTIFICATION_DAYS", 14),
        # Online payment: "simulated" (a local bank, development and tests) or "payfip_ws"
        # (PayFiP through eopayment; never the "tipi" back end, which trusts the URL).
        "PAYMENT_BACKEND": os.environ.get(
            "PAYMENT_BACKEND", "payfip_ws" if production else "simulated"
        ),
        "PAYFIP_NUMCLI": _demo("PAYFIP_NUMCLI"),
        # T: test, X: production through the portal, W: production activated (DGFiP).
        "PAYFIP_SAISIE": os.environ.get("PAYFIP_SAISIE", "W" if production else "T"),
        # Minutes a trip to the bank stays open: « Payer » again within them goes back to it
        # (a PayFiP idOp is valid 15 minutes); after them the bank is asked, then a new one.
        "PAYMENT_ATTEMPT_MINUTES": _int("PAYMENT_ATTEMPT_MINUTES", 15),
        # The address PayFiP gets when the parent's is not one it takes (over 80 characters).
        "PAYFIP_CONTACT_EMAIL": os.environ.get("PAYFIP_CONTACT_EMAIL", ""),
        # SEPA creditor (the commune's Trésorerie account) for the pain.008 files.
        "SEPA_CREDITOR_NAME": _demo("SEPA_CREDITOR_NAME"),
        "SEPA_CREDITOR_IBAN": _demo("SEPA_CREDITOR_IBAN"),
        "SEPA_CREDITOR_BIC": _demo("SEPA_CREDITOR_BIC"),
        # Identifiant créancier SEPA (ICS), given by the Banque de France. The default is the
        # EPC rulebook's example: fine in development, refused in production.
        # Fernet keys encrypting IBANs at rest, newest first (README « Chiffrement des IBAN »).
        "DATA_ENCRYPTION_KEYS": os.environ.get("DATA_ENCRYPTION_KEYS", ""),
        "SEPA_CREDITOR_ID": os.environ.get(
            "SEPA_CREDITOR_ID", "" if production else creditor_id.DEMO_CREDITOR_ID
        ),
        # Vendored htmx, pinned: tests check the file against the published package.
        "HTMX_FILE": "js/htmx-2.0.8.min.js",
        "HTMX_SRI": "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz",
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }
    warn_about_settings(settings)
    return settings


def warn_about_settings(settings: dict) -> None:
    """Start-up warnings for settings that would stop a feature later (logged, not fatal:
    the rest of the portal works)."""
    log = logging.getLogger("citoyens.config")
    if creditor_id.problem(settings["SEPA_CREDITOR_ID"], production=settings["PRODUCTION"]):
        log.warning(
            "SEPA_CREDITOR_ID %r n'est pas un identifiant créancier SEPA (ICS) valide%s : "
            "l'export des prélèvements (pain.008) sera refusé tant qu'il n'est pas corrigé.",
            settings["SEPA_CREDITOR_ID"],
            " (valeur d'exemple)" if creditor_id.is_valid(settings["SEPA_CREDITOR_ID"]) else "",
        )


def engine_options(url: str) -> dict:
    # Database errors never carry the statement's values (an IBAN, a health note) into
    # the logs (SECURITY.md "Logs").
    if url.startswith("sqlite"):
        # One connection per thread; WAL (set on connect) lets readers run beside a writer.
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "hide_parameters": True}
