"""Requests ("demandes"): every request of a family, its status and dated history."""
