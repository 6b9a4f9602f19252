"""Static files under content-hashed names, minified and compressed once, at start-up.

`url_for("static", filename="css/app.css")` gives `/static/css/app.<hash>.css`, the hash
being that of the bytes served: such a URL never changes meaning, so it is cached for a
year (`immutable`), and a deploy that changes a file changes its URL. An unhashed or
stale-hash URL still gets the current file, with a cache that asks again each time.

CSS and JavaScript are minified into the served bytes (the sources stay readable), except
files already minified (`*.min.js`: vendored htmx, whose SRI covers the bytes as
published). Text files are compressed with brotli and gzip once, here, never per request.

The files are few: the manifest is built when the app starts (shared by the apps of a
process over the same files). With ASSETS_WATCH (development), a changed file is picked up
within a second, without a restart.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import rcssmin
import rjsmin
from flask import Flask, current_app, request

HASH_LENGTH = 10
HASHED_NAME = re.compile(rf"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<ext>\.\w+)$")
IMMUTABLE = "public, max-age=31536000, immutable"
# An unhashed or stale-hash URL: the current file, checked again on every use (ETag: 304).
REVALIDATE = "public, no-cache"
COMPRESSIBLE = {".css", ".js", ".mjs", ".json", ".svg", ".txt", ".webmanifest", ".map"}
MIN_COMPRESS_SIZE = 500
ENCODINGS = ("br", "gzip")  # preferred first
WATCH_INTERVAL = 1.0


@dataclass(frozen=True)
class Asset:
    name: str  # as the templates ask for it: css/app.css
    hashed: str  # as it is linked: css/app.3f2a9c1b7e.css
    digest: str
    mimetype: str
    body: bytes  # the bytes served (minified when that applies)
    encoded: dict[str, bytes] = field(default_factory=dict)  # "br"/"gzip" → compressed


@dataclass(frozen=True)
class Manifest:
    folder: str
    signature: tuple
    assets: dict[str, Asset]
    by_hashed: dict[str, Asset]
    version: str  # one hash of every file's hash: the service worker's cache name


def minify(name: str, data: bytes) -> bytes:
    if name.endswith(".min.js") or name.endswith(".min.css"):
        return data
    if name.endswith(".css"):
        return rcssmin.cssmin(data)
    if name.endswith((".js", ".mjs")):
        return rjsmin.jsmin(data)
    return data


def compress(name: str, body: bytes) -> dict[str, bytes]:
    """Brotli and gzip at their best levels (paid once); kept only when they save bytes."""
    if Path(name).suffix not in COMPRESSIBLE or len(body) < MIN_COMPRESS_SIZE:
        return {}
    encoded = {
        "br": brotli.compress(body, quality=11),
        "gzip": gzip.compress(body, compresslevel=9, mtime=0),
    }
    return {coding: data for coding, data in encoded.items() if len(data) < len(body)}


def hashed_name(name: str, digest: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        return f"{name}.{digest}"
    return f"{stem}.{digest}.{ext}"


def scan(folder: str) -> tuple:
    """(name, size, mtime) of every file under `folder`: what the manifest depends on."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if file.startswith("."):
                continue
            path = os.path.join(root, file)
            stat = os.stat(path)
            name = os.path.relpath(path, folder).replace(os.sep, "/")
            found.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def build(folder: str, signature: tuple) -> Manifest:
    assets = {}
    for name, _size, _mtime in signature:
        body = minify(name, (Path(folder) / name).read_bytes())
        digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        assets[name] = Asset(
            name, hashed_name(name, digest), digest, mimetype, body, compress(name, body)
        )
    listing = "\n".join(f"{name} {assets[name].digest}" for name in sorted(assets))
    version = hashlib.sha256(listing.encode()).hexdigest()[:HASH_LENGTH]
    by_hashed = {asset.hashed: asset for asset in assets.values()}
    return Manifest(folder, signature, assets, by_hashed, version)


_built: dict[tuple[str, tuple], Manifest] = {}
_lock = threading.Lock()


def load(folder: str) -> Manifest:
    """The manifest of `folder` as it is now; built once per process for the same files."""
    signature = scan(folder)
    key = (folder, signature)
    with _lock:
        manifest = _built.get(key)
        if manifest is None:
            manifest = _built[key] = build(folder, signature)
        return manifest


class Assets:
    """The app's manifest, refreshed when a file changes if `watch` (development)."""

    def __init__(self, folder: str, watch: bool):
        self.folder = folder
        self.watch = watch
        self.manifest = load(folder)
        self._checked = time.monotonic()

    def current(self) -> Manifest:
        if self.watch and time.monotonic() - self._checked > WATCH_INTERVAL:
            self._checked = time.monotonic()
            self.manifest = load(self.folder)
        return self.manifest


def init_app(app: Flask) -> None:
    """Hashed URLs for `url_for("static", …)` and the static view serving them.

    STATIC_FOLDER (app config, optional) serves another folder: tests use it to play a
    deploy with other files.
    """
    if app.config.get("STATIC_FOLDER"):
        app.static_folder = app.config["STATIC_FOLDER"]
    watch = app.config.get("ASSETS_WATCH", app.config.get("ENV_NAME") == "development")
    app.extensions["citoyens_assets"] = Assets(str(app.static_folder), bool(watch))
    app.url_defaults(hashed_static_url)
    app.view_functions["static"] = serve_static


def manifest(app: Flask | None = None) -> Manifest:
    return (app or current_app).extensions["citoyens_assets"].current()


def hashed_static_url(endpoint: str, values: dict) -> None:
    """url_defaults: `static` URLs name the file by its content hash."""
    if endpoint != "static":
        return
    asset = manifest().assets.get(values.get("filename"))
    if asset is not None:
        values["filename"] = asset.hashed


def find(filename: str) -> tuple[Asset | None, bool]:
    """The asset a static URL names, and whether it is this very content (hashed URL)."""
    current = manifest()
    if asset := current.by_hashed.get(filename):
        return asset, True
    if asset := current.assets.get(filename):
        return asset, False
    if match := HASHED_NAME.match(filename):  # a stale hash: the file as it is now
        return current.assets.get(match["stem"] + match["ext"]), False
    return None, False


def negotiate(asset: Asset) -> str | None:
    """Brotli where the client takes it, else gzip, else none (Accept-Encoding, q-values)."""
    accepted = request.accept_encodings
    best, best_quality = None, 0.0
    for coding in ENCODINGS:
        quality = accepted.quality(coding)
        if coding in asset.encoded and quality > best_quality:
            best, best_quality = coding, quality
    return best


def serve_static(filename: str):
    asset, exact = find(filename)
    if asset is None:
        # A file added since start-up (without ASSETS_WATCH), or a 404: Flask's own view.
        return current_app.send_static_file(filename)
    coding = negotiate(asset)
    response = current_app.response_class(
        asset.encoded[coding] if coding else asset.body, mimetype=asset.mimetype
    )
    if coding:
        response.headers["Content-Encoding"] = coding
    if asset.encoded:
        response.vary.add("Accept-Encoding")
    response.set_etag(f"{asset.digest}-{coding}" if coding else asset.digest)
    response.headers["Cache-Control"] = IMMUTABLE if exact else REVALIDATE
    return response.make_conditional(request)
