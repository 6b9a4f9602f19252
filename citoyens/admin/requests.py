"""Back office: requests."""

from citoyens.admin.views import bp  # noqa: F401
