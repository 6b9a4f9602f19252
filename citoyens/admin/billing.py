"""Back office: tariffs and the monthly invoice run."""
