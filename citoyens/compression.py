"""Compressed responses: brotli where the client takes it, gzip otherwise (Flask-Compress).

Pages, fragments, JSON and the manifest are compressed as they leave, when they are worth
it (COMPRESS_MIN_SIZE). Static files come compressed already (citoyens/assets.py), so
Flask-Compress leaves them alone (they carry Content-Encoding). Never compressed:

- streamed responses (CSV exports, files): they go out as they are produced, and a
  streaming compressor would hold them back until its buffer fills;
- downloads (`Content-Disposition: attachment`), images, PDF, XLSX (not in the mimetypes);
- a page that may carry a secret (session-bound CSRF token, personal data) asked for by
  another site (`Sec-Fetch-Site: cross-site` or `same-site`): a compressed page's length
  would let that site guess the secret byte by byte with reflected input (BREACH).
  Navigations from the portal itself and typed or bookmarked addresses are compressed.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_compress import Compress

from citoyens.web import CACHEABLE_ENDPOINTS

MIMETYPES = [
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/manifest+json",
    "image/svg+xml",
    "text/plain",
]
SETTINGS = {
    "COMPRESS_MIMETYPES": MIMETYPES,
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_BR_LEVEL": 4,  # fast enough per request; static files get 11 (assets.py)
    "COMPRESS_LEVEL": 6,
    "COMPRESS_MIN_SIZE": 500,
    "COMPRESS_STREAMS": False,
    # Registered below behind `compress_response`, never on its own.
    "COMPRESS_REGISTER": False,
}
FOREIGN_SITES = {"cross-site", "same-site"}


def init_app(app: Flask) -> None:
    for name, value in SETTINGS.items():
        app.config.setdefault(name, value)
    app.extensions["compress"] = Compress(app)
    app.after_request(compress_response)


def compress_response(response):
    """after_request: hand the response to Flask-Compress unless it must go out as it is."""
    if request.endpoint == "static":  # compressed once, at start-up (assets.py)
        return response
    if response.is_streamed or "attachment" in response.headers.get("Content-Disposition", ""):
        return response
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        response.vary.add("Sec-Fetch-Site")
        if request.headers.get("Sec-Fetch-Site") in FOREIGN_SITES:
            response.vary.add("Accept-Encoding")
            return response
    return current_app.extensions["compress"].after_request(response)
