"""Messages from staff to families: a closure, a change, a reminder sent to the families of
a service, of one activity or of one activity day; read in the family portal, e-mailed."""
