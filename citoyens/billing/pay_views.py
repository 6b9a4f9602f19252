"""Paying an invoice online (PayFiP, or the simulated bank in development)."""
