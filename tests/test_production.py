"""Safe by default: a WSGI server started without settings runs in production, refuses to
start without SECRET_KEY, names the settings left at their example value, and serves no
development-only page (issue 12)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citoyens import create_app
from citoyens.config import DEMO_VALUES, ConfigurationError, demo_settings
from citoyens.extensions import db
from tests.conftest import post

ROOT = Path(__file__).parent.parent


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    """No CITOYENS_ENV and no setting at all, as a WSGI server started by hand would see."""
    for name in ("CITOYENS_ENV", "SECRET_KEY", "PAYMENT_BACKEND", "MAIL_BACKEND", *DEMO_VALUES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/prod.sqlite3")


def dispose(app):
    with app.app_context():
        db.engine.dispose()


def test_the_wsgi_entry_point_without_settings_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k not in ("CITOYENS_ENV", "SECRET_KEY")}
    result = subprocess.run(  # noqa: S603 (our own interpreter, a fixed argument list)
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ConfigurationError: SECRET_KEY is not set" in result.stderr


def test_without_citoyens_env_the_app_runs_in_production(bare_environment):
    with pytest.raises(ConfigurationError, match="SECRET_KEY is not set"):
        create_app()


def test_production_is_the_default_and_names_the_example_settings(
    bare_environment, monkeypatch, caplog
):
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    # Alembic's fileConfig (migration tests) disables the loggers that exist before it.
    monkeypatch.setattr(logging.getLogger("citoyens"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="citoyens"):
        app = create_app()
    dispose(app)
    assert app.config["PRODUCTION"] and app.config["ENV_NAME"] == "production"
    assert app.config["SECRET_KEY"] == "k" * 64
    assert app.config["PAYMENT_BACKEND"] == "payfip_ws" and app.config["SESSION_COOKIE_SECURE"]
    warned = caplog.text
    for name in ("PAYFIP_NUMCLI", "MAIL_SERVER", "SEPA_CREDITOR_ID", "PUBLIC_URL"):
        assert f"setting {name} still holds its example value" in warned


def test_development_is_chosen_explicitly_and_warns_of_nothing(
    bare_environment, monkeypatch, caplog
):
    monkeypatch.setenv("CITOYENS_ENV", "development")
    with caplog.at_level(logging.WARNING, logger="citoyens"):
        app = create_app()
    dispose(app)
    assert not app.config["PRODUCTION"]
    assert "example value" not in caplog.text


def test_an_unknown_mode_refuses_to_start(bare_environment, monkeypatch):
    monkeypatch.setenv("CITOYENS_ENV", "prod")
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    with pytest.raises(ConfigurationError, match="CITOYENS_ENV='prod' is unknown"):
        create_app()


def test_demo_settings_lists_exactly_the_example_values():
    config = {name: demo for name, (demo, _label) in DEMO_VALUES.items()}
    config.update(PAYMENT_BACKEND="payfip_ws", MAIL_BACKEND="smtp")
    assert [name for name, _ in demo_settings(config)] == list(DEMO_VALUES)
    config.update(
        SEPA_CREDITOR_ID="FR44ZZZ654321", PAYFIP_NUMCLI="012345", MAIL_SERVER="smtp.mairie.fr"
    )
    config.update(DATA_ENCRYPTION_KEYS="a-fernet-key")
    names = [name for name, _ in demo_settings(config)]
    assert "SEPA_CREDITOR_ID" not in names and "PAYFIP_NUMCLI" not in names
    assert "DATA_ENCRYPTION_KEYS" not in names
    assert "MAIL_SERVER" not in names and "SEPA_CREDITOR_IBAN" in names
    # Settings of a feature that is off are not asked for.
    config.update(PAYMENT_BACKEND="simulated", MAIL_BACKEND="console", PAYFIP_NUMCLI="")
    config.update(MAIL_SERVER="localhost")
    names = [name for name, _ in demo_settings(config)]
    assert "PAYFIP_NUMCLI" not in names and "MAIL_SERVER" not in names


def test_the_administrators_home_names_the_example_settings_in_production(
    app, monkeypatch, auth, client, admin, staff
):
    auth.login(admin)
    assert "Réglages à compléter" not in client.get("/admin/").get_data(as_text=True)
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", DEMO_VALUES["SEPA_CREDITOR_ID"][0])
    page = client.get("/admin/").get_data(as_text=True)
    assert "Réglages à compléter" in page and "SEPA_CREDITOR_ID" in page
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", "FR44ZZZ654321")
    assert "SEPA_CREDITOR_ID" not in client.get("/admin/").get_data(as_text=True)
    # Agents are not asked for the server's settings.
    monkeypatch.setitem(app.config, "SEPA_CREDITOR_ID", DEMO_VALUES["SEPA_CREDITOR_ID"][0])
    agent = app.test_client()
    post(agent, "/connexion", {"email": staff.email, "password": staff.password})
    assert "Réglages à compléter" not in agent.get("/admin/").get_data(as_text=True)


def test_the_simulated_bank_is_404_in_production_even_when_asked_for(bare_environment, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    monkeypatch.setenv("PAYMENT_BACKEND", "simulated")
    app = create_app()
    try:
        client = app.test_client()
        for path in ("/banque-simulee/paiement/" + "0" * 32, "/banque-simulee/"):
            assert client.get(path, base_url="https://localhost").status_code == 404
    finally:
        dispose(app)
