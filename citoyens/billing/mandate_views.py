"""Prélèvement automatique: the family's SEPA mandate."""
