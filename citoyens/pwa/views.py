"""The PWA files, served from the root so the service worker controls the whole site."""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    send_file,
    url_for,
)
from PIL import Image

from citoyens import assets
from citoyens.core import settings
from citoyens.documents.storage import StorageError, check_key, get_storage

bp = Blueprint("pwa", __name__)

THEME_COLOR = settings.DEFAULT_PRIMARY_COLOR


@bp.get("/manifest.webmanifest")
def manifest():
    commune = settings.current().name
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
        "background_color": "#ffffff",
        "theme_color": settings.current().primary_color,
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
    key = settings.current().logo_key
    if key and (icon := logo_icon(key)):
        data["icons"].insert(0, icon)
    response = jsonify(data)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/logo/<key>")
def logo(key: str):
    """The commune's logo. Its key is random and changes with the file: cached for a year."""
    return _logo_response(key)


def _logo_response(key: str):
    current = settings.current().logo_key
    if not current or key != current:
        abort(404)
    try:
        stream = get_storage().open(check_key(key))
    except (FileNotFoundError, StorageError):
        abort(404)
    response = send_file(stream, mimetype=settings.logo_content_type(key), max_age=31536000)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def logo_icon(key: str) -> dict | None:
    """The logo as a manifest icon (its real size, read from the file), or None."""
    try:
        with get_storage().open(check_key(key)) as stream, Image.open(stream) as image:
            width, height = image.size
    except (OSError, StorageError, Image.DecompressionBombError):
        return None
    return {
        "src": url_for("pwa.logo", key=key),
        "sizes": f"{width}x{height}",
        "type": settings.logo_content_type(key),
        "purpose": "any",
    }


@bp.get("/commune.css")
def commune_css():
    """The commune's colour over the stylesheet's (the CSP allows no inline style). The
    colour is in the URL (?c=1f4e8c), so a new one is a new address: cached for a day."""
    color = settings.current().primary_color
    if request.args.get("c", "") != color[1:]:
        abort(404)
    response = make_response(settings.stylesheet(color))
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "public, max-age=86400"
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


def cache_name(offline_page: str) -> str:
    """Named from the static files' hashes and the offline page it stores: a deploy that
    changes either gives a new name, hence a new worker script, which the browser installs
    (it compares the script's bytes) and which deletes the old caches on activation."""
    page = hashlib.sha256(offline_page.encode()).hexdigest()
    version = hashlib.sha256(f"{assets.manifest().version} {page}".encode()).hexdigest()
    return f"citoyens-{version[:12]}"


@bp.get("/sw.js")
def service_worker():
    body = render_template(
        "pwa/sw.js", cache_name=cache_name(offline_page()), precache=precache_urls()
    )
    response = make_response(body)
    response.mimetype = "text/javascript"
    # Never immutable: the browser asks for it again (ETag-less, so whole) on each check.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


def offline_page() -> str:
    return render_template("pwa/offline.html", commune_name=settings.current().name)


@bp.get("/hors-ligne")
def offline():
    response = make_response(offline_page())
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
