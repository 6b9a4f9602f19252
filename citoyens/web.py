"""HTTP helpers shared by every blueprint: page-or-fragment rendering, headers."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, make_response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
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


def render_fragment(template: str, *, status: int = 200, **context):
    """An htmx fragment that uses nothing of the page shell (commune, navigation, user):
    rendered without the context processors, which would read the commune settings and,
    after a commit, the user again. Filters and `url_for` are the environment's."""
    body = current_app.jinja_env.get_template(template).render(context)
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


# Public pages: nothing personal for an anonymous visitor. The browser alone may keep them
# (`private`: never a shared cache, they carry a session-bound CSRF token), checked again on
# every visit (`no-cache`); without `no-store` the back/forward cache keeps them. For a
# logged-in visitor, and for every other page, `no-store`.
PUBLIC_PAGES = {
    "core.home",
    "core.accessibility",
    "core.privacy",
    "accounts.login",
    "accounts.signup",
}
PUBLIC_PAGE_CACHE = "private, no-cache"


def is_public_page(response) -> bool:
    return (
        request.endpoint in PUBLIC_PAGES
        and request.method in ("GET", "HEAD")
        and response.status_code == 200
        and not current_user.is_authenticated
    )


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
    if request.endpoint in CACHEABLE_ENDPOINTS:
        pass  # their views say for how long
    elif is_public_page(response):
        headers["Cache-Control"] = PUBLIC_PAGE_CACHE
    else:
        headers["Cache-Control"] = "no-store"
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus the cookie on public cacheable responses.

    A cached manifest or offline page must never carry someone's session; nor `Vary:
    Cookie` (Flask-Login's after_request reads the session on every response), which would
    split a file cached for a year by cookie value.
    """

    def save_session(self, app, session, response) -> None:
        if request.endpoint in CACHEABLE_ENDPOINTS:
            return
        super().save_session(app, session, response)
