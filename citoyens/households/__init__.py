"""Households and the people in them (adults, children, other contacts)."""
