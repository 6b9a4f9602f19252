"""Accounts: sign-up, confirmation, login, logout, password reset, roles."""
