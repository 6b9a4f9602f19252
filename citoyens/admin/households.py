"""Back office: households."""

from citoyens.admin.views import bp  # noqa: F401
