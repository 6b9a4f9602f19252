"""Reservation calendars: opening days, bookings, waiting lists, attendance."""
