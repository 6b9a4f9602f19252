"""`make security`: pip-audit on the installed environment, when its data can be reached.

    .venv/bin/python scripts/audit_dependencies.py

Asks pip-audit's vulnerability services in turn (PyPI's, then OSV) about every installed
distribution but the project itself. A known vulnerability fails (exit 1) with the
package, its version, the advisory and the versions that fix it: bump the pin in
pyproject.toml. When no service can be reached (offline, a registry mirror without the
per-release data, a timeout), it prints "pip-audit skipped: ..." and exits 0, so that
the network never makes `make test` fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

SERVICES = ("pypi", "osv")
REQUEST_TIMEOUT = 10  # seconds, each request pip-audit makes
RUN_TIMEOUT = 90  # seconds, one whole pip-audit run


@dataclass
class Audit:
    service: str
    audited: int  # distributions whose vulnerabilities the service answered for
    not_found: int  # distributions the service had no data on
    vulnerable: list[dict]  # {"name", "version", "vulns": [{"id", "fix_versions", ...}]}


def run_pip_audit(service: str) -> Audit | str:
    """The audit by `service`, or why it could not be had (a string)."""
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--skip-editable"]
    command += ["--progress-spinner", "off", "--timeout", str(REQUEST_TIMEOUT)]
    command += ["--vulnerability-service", service]
    try:
        done = subprocess.run(  # noqa: S603 (fixed arguments)
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {RUN_TIMEOUT} s"
    try:
        report = json.loads(done.stdout)
    except ValueError:
        # No report: the service could not be reached (DNS, connection, timeout...).
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"pip-audit exited {done.returncode}")[:120]
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if "skip_reason" in d]
    not_found = [d for d in skipped if "not found" in d["skip_reason"]]
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    return Audit(service, len(audited), len(not_found), vulnerable)


def main() -> int:
    try:
        import pip_audit  # noqa: F401
    except ImportError:
        print("pip-audit skipped: pip-audit is not installed (pip install -e '.[dev]')")
        return 0
    reasons = []
    for service in SERVICES:
        outcome = run_pip_audit(service)
        if isinstance(outcome, str):
            reasons.append(f"{service}: {outcome}")
            continue
        if outcome.audited == 0:
            # Every distribution "not found": the service's data is not where we can reach
            # it (e.g. a mirror that serves packages but not the per-release metadata).
            reasons.append(f"{service}: no data for any of {outcome.not_found} distributions")
            continue
        if outcome.vulnerable:
            print(f"pip-audit ({service}): known vulnerabilities, bump these pins:")
            for dependency in outcome.vulnerable:
                for vuln in dependency["vulns"]:
                    fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
                    print(f"  {dependency['name']} {dependency['version']}: {vuln['id']} ({fixes})")
            return 1
        unknown = f", {outcome.not_found} unknown to it" if outcome.not_found else ""
        print(
            f"pip-audit ({service}): {outcome.audited} distributions, no known vulnerability"
            f"{unknown}"
        )
        return 0
    print("pip-audit skipped: vulnerability data unreachable (" + "; ".join(reasons) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
