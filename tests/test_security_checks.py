"""`make security`'s pip-audit step: a vulnerability fails, an unreachable service skips."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_dependencies.py"


@pytest.fixture
def audit(monkeypatch):
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks itself up
    spec.loader.exec_module(module)
    return module


def answers(monkeypatch, audit, **by_service):
    """pip-audit answers per service: a report (dict), or an exception raised by the run."""

    def run(command, **_kwargs):
        answer = by_service[command[command.index("--vulnerability-service") + 1]]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, str):  # no report: what pip-audit printed on stderr
            return SimpleNamespace(stdout="", stderr=answer, returncode=1)
        return SimpleNamespace(stdout=json.dumps(answer), stderr="", returncode=0)

    monkeypatch.setattr(audit.subprocess, "run", run)


NOT_FOUND = {"name": "flask", "skip_reason": "Dependency not found on PyPI: flask (3.1.1)"}
CLEAN = {"name": "flask", "version": "3.1.1", "vulns": []}
VULNERABLE = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
}


@pytest.mark.parametrize(
    ("pypi", "osv", "service"),
    [
        ({"dependencies": [CLEAN, VULNERABLE]}, "unused", "pypi"),
        # A service without data for any package gives way to the next.
        ({"dependencies": [NOT_FOUND]}, {"dependencies": [VULNERABLE]}, "osv"),
    ],
)
def test_a_known_vulnerability_fails_and_names_the_fix(
    monkeypatch, capsys, audit, pypi, osv, service
):
    answers(monkeypatch, audit, pypi=pypi, osv=osv)
    assert audit.main() == 1
    out = capsys.readouterr().out
    assert f"pip-audit ({service})" in out and "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (3.1.3)" in out


def test_no_vulnerability_passes(monkeypatch, capsys, audit):
    answers(monkeypatch, audit, pypi={"dependencies": [CLEAN, NOT_FOUND]}, osv="unused")
    assert audit.main() == 0
    assert "1 distributions, no known vulnerability, 1 unknown" in capsys.readouterr().out


def test_unreachable_services_or_a_timeout_skip_without_failing(monkeypatch, capsys, audit):
    answers(
        monkeypatch,
        audit,
        pypi=subprocess.TimeoutExpired("pip-audit", 90),
        osv="requests.exceptions.ConnectionError: Failed to resolve",
    )
    assert audit.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("pip-audit skipped: vulnerability data unreachable")
    assert "no answer within 90 s" in out and "ConnectionError" in out
