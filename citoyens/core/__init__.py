"""Cross-domain pieces: the commune's settings, the audit log, outgoing mail."""
