"""Back office: documents."""

from citoyens.admin.views import bp  # noqa: F401
