"""Services of the commune (APS, restauration, Goulidons, multi-accueil), schools."""
