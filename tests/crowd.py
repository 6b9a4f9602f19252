"""A crowd of browsers against a live server: each one logs in and opens its pages.

Shared by tests/test_crowd.py (a threaded werkzeug server, cheap hashing) and
bench/crowd.py (`flask run` or gunicorn as `make run` starts them, real argon2).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Browser:
    """One client: a connection per request, and the cookies the server set."""

    def __init__(self, port: int, timeout: float = 120):
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        """(status, body, seconds taken)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, text, elapsed


@dataclass
class CrowdResult:
    """Every request made: (step, status or error name, seconds)."""

    requests: list[tuple[str, int | str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def statuses(self) -> Counter:
        return Counter(status for _, status, _ in self.requests)

    @property
    def failed(self) -> list[tuple[str, int | str]]:
        """Requests answered with anything but 2xx/3xx, or not answered at all."""
        return [
            (step, status)
            for step, status, _ in self.requests
            if not (isinstance(status, int) and 200 <= status < 400)
        ]

    def latencies(self, step: str | None = None) -> list[float]:
        return [
            s
            for name, status, s in self.requests
            if isinstance(status, int) and name != "-" and (step is None or name == step)
        ]


def login_journey(
    port: int, email: str, password: str, last_page: str, result: CrowdResult, timeout: float = 120
) -> None:
    """GET the login page, POST the login with its CSRF token, GET the page the login
    leads to, then `last_page`. Follows no redirect by itself: each request counts."""
    browser = Browser(port, timeout)
    try:
        status, page, elapsed = browser.request("GET", "/connexion")
        result.requests.append(("GET /connexion", status, elapsed))
        match = CSRF.search(page)
        form = {"email": email, "password": password, "csrf_token": match.group(1) if match else ""}
        status, _, elapsed = browser.request("POST", "/connexion", form)
        result.requests.append(("POST /connexion", status, elapsed))
        status, _, elapsed = browser.request("GET", "/tableau-de-bord")
        result.requests.append(("GET /tableau-de-bord", status, elapsed))
        status, _, elapsed = browser.request("GET", last_page)
        result.requests.append((f"GET {last_page}", status, elapsed))
    except OSError as error:  # refused, reset, timed out: a failure too
        result.requests.append(("-", type(error).__name__, 0.0))


def crowd_logs_in(port: int, accounts: list[tuple[str, str]], timeout: float = 120) -> CrowdResult:
    """Every account's journey in a thread of its own, all started at the same moment."""
    result = CrowdResult()
    barrier = threading.Barrier(len(accounts))

    def run(number: int, email: str, password: str) -> None:
        barrier.wait()
        last_page = "/reservations/" if number % 2 else "/factures"
        login_journey(port, email, password, last_page, result, timeout)

    threads = [
        threading.Thread(target=run, args=(number, email, password), daemon=True)
        for number, (email, password) in enumerate(accounts)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 30)
    result.seconds = time.perf_counter() - started
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0
