"""Demo data of the requests domain, called by citoyens.demo.seed (idempotent)."""

from __future__ import annotations


def seed_demo() -> int:
    """Create what is missing; return how many records were added.

    Nothing: requests come from what families do (asking for a member's removal,
    sending a document), and a made-up one would be decided by staff with real
    effects on the demo household. The households and documents demos create theirs.
    """
    return 0
