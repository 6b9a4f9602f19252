"""Staff pages of the reservations: capacity overview, day lists, attendance, exports."""
