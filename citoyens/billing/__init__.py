"""Billing: tariffs by quotient familial, monthly invoices, payments, SEPA direct debit."""
