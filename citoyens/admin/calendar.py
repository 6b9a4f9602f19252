"""Staff pages of the calendar: holidays, closures, opening days of a school year."""
