"""Personal data (RGPD): a family's archive of its data (right of access), the request to
close its account, and the retention purges (`citoyens.retention`)."""
