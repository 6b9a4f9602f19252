"""Demo data of the documents domain, called by citoyens.demo.seed (idempotent)."""

from __future__ import annotations


def seed_demo() -> int:
    """Create what is missing; return how many records were added."""
    return 0
