"""HTTP helpers shared by every blueprint: page-or-fragment rendering, headers."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, make_response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from jinja2_fragments.flask import render_block


def is_htmx_fragment_request() -> bool:
    """A targeted htmx request wants a fragment; a boosted one wants the whole page."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        # The back button, with htmx's history cache off, asks for the whole page again.
        and headers.get("HX-History-Restore-Request") != "true"
    )


def safe_next(target: str | None) -> str | None:
    """A same-site path to go back to after login, or None."""
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    target = target.replace("\\", "/")
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "//[" is an invalid IPv6 netloc
        return None
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def render(template: str, *, block: str | None = None, status: int = 200, **context):
    """Render the whole page, or only `block` of it for a targeted htmx request.

    Both come from the same template, so every URL also works as a full page.
    """
    if block and is_htmx_fragment_request():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# Responses that may sit in a cache: public assets only, never a personal page.
CACHEABLE_ENDPOINTS = {
    "static",
    "pwa.manifest",
    "pwa.service_worker",
    "pwa.offline",
    "pwa.logo",
    "pwa.commune_css",
}


def security_headers(response):
    """after_request: the headers of SECURITY.md on every response."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "geolocation=(), microphone=(), payment=()")
    if current_app.config.get("HSTS"):
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        headers["Cache-Control"] = "no-store"
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus the cookie on public cacheable responses.

    A cached manifest or offline page must never carry someone's session.
    """

    def should_set_cookie(self, app, session) -> bool:
        if request.endpoint in CACHEABLE_ENDPOINTS:
            return False
        return super().should_set_cookie(app, session)
