"""The PWA files, served from the root so the service worker controls the whole site."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, make_response, render_template, url_for

bp = Blueprint("pwa", __name__)

THEME_COLOR = "#1f4e8c"
CACHE_VERSION = "v1"


@bp.get("/manifest.webmanifest")
def manifest():
    commune = current_app.config["COMMUNE_NAME"]
    data = {
        "name": f"Citoyens — Espace famille de {commune}",
        "short_name": "Citoyens",
        "description": "Foyer, documents, inscriptions, réservations et factures de votre famille.",
        "lang": "fr",
        "dir": "ltr",
        "id": "/",
        "start_url": "/?source=pwa",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOR,
        "icons": [
            {
                "src": url_for("static", filename="icons/icon-192.png"),
                "sizes": "192x192",
                "type": "image/png",
                "purpose": "any",
            },
            {
                "src": url_for("static", filename="icons/icon-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "any",
            },
            {
                "src": url_for("static", filename="icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    response = jsonify(data)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def precache_urls() -> list[str]:
    """The static shell: what the service worker stores at install."""
    return [
        url_for("pwa.offline"),
        url_for("static", filename="css/app.css"),
        url_for("static", filename="js/app.js"),
        url_for("static", filename=current_app.config["HTMX_FILE"]),
        url_for("static", filename="icons/icon-192.png"),
    ]


@bp.get("/sw.js")
def service_worker():
    body = render_template(
        "pwa/sw.js", cache_name=f"citoyens-shell-{CACHE_VERSION}", precache=precache_urls()
    )
    response = make_response(body)
    response.mimetype = "text/javascript"
    # Browsers re-check the worker at most daily anyway; keep it fresh for deploys.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/hors-ligne")
def offline():
    response = make_response(
        render_template("pwa/offline.html", commune_name=current_app.config["COMMUNE_NAME"])
    )
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
