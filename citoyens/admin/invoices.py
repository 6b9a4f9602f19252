"""Back office: invoices."""
