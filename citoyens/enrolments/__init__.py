"""Enrolments of children in services, validated by staff."""
