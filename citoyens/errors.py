"""Generic error pages in French: no traceback, no detail that helps an attacker."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, make_response, request, session
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from citoyens.extensions import db
from citoyens.web import render

log = logging.getLogger("citoyens.errors")

MESSAGES = {
    400: (
        "Requête incorrecte",
        "Votre demande n'a pas pu être comprise. Revenez en arrière et réessayez.",
    ),
    403: ("Accès refusé", "Vous n'avez pas accès à cette page."),
    404: ("Page introuvable", "Cette page n'existe pas ou n'est plus disponible."),
    405: ("Action impossible", "Cette action n'est pas possible à cette adresse."),
    413: (
        "Fichier trop volumineux",
        "Le fichier envoyé dépasse 10 Mo. Choisissez un fichier plus léger.",
    ),
    429: (
        "Trop de tentatives",
        "Vous avez fait trop de demandes. Patientez quelques minutes puis réessayez.",
    ),
    500: ("Erreur inattendue", "Un problème est survenu de notre côté. Réessayez dans un instant."),
    503: (
        "Service momentanément indisponible",
        "Le portail est en maintenance ou surchargé. Réessayez dans quelques minutes.",
    ),
}


def _page(code: int, message: str | None = None):
    title, text = MESSAGES.get(code) or MESSAGES[400 if code < 500 else 500]
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=title), code
    try:
        return render(
            "errors/error.html", code=code, title=title, text=message or text, status=code
        )
    except Exception:  # the template itself may need the database that just failed
        log.exception("error page could not be rendered")
        return f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{text}</p>", code


def render_allow(response, methods):
    response = make_response(response)
    response.headers["Allow"] = ", ".join(methods)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        return _page(
            400,
            "Le formulaire a expiré ou n'a pas été envoyé depuis ce site. "
            "Rechargez la page puis recommencez.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        # A refused input (citoyens.forms.RefusedInput) says why, in French.
        response = _page(error.code, getattr(error, "french_message", None))
        if error.code == 405 and error.valid_methods:
            response = render_allow(response, error.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(error):
        # The driver's first line says which ("database is locked", "connection refused");
        # the statement's values never reach it (engine option hide_parameters).
        reason = str(getattr(error, "orig", None) or "").splitlines()[:1]
        log.error("database error: %s %s", type(error).__name__, "".join(reason)[:200])
        db.session.rollback()
        _session_as_it_came()
        response = make_response(_page(ServiceUnavailable.code))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        _session_as_it_came()
        return _page(InternalServerError.code)


def _session_as_it_came() -> None:
    """A request that failed leaves the session as the browser sent it: its database work
    was rolled back, so a login must not stay logged in, nor a message announce a change."""
    app = current_app._get_current_object()
    sent = app.session_interface.open_session(app, request)
    session.clear()
    session.update(sent or {})
