"""Back office: direct debits."""
