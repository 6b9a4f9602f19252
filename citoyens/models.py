"""Import every model module so the metadata (create_all, Alembic) knows all tables."""

from citoyens.accounts import models as accounts_models  # noqa: F401
from citoyens.billing import counter_models as billing_counter_models  # noqa: F401
from citoyens.billing import models as billing_models  # noqa: F401
from citoyens.billing import month_totals as billing_month_totals  # noqa: F401
from citoyens.core import models as core_models  # noqa: F401
from citoyens.documents import models as documents_models  # noqa: F401
from citoyens.enrolments import models as enrolments_models  # noqa: F401
from citoyens.households import models as households_models  # noqa: F401
from citoyens.messages import models as messages_models  # noqa: F401
from citoyens.privacy import models as privacy_models  # noqa: F401
from citoyens.requests import models as requests_models  # noqa: F401
from citoyens.reservations import models as reservations_models  # noqa: F401
from citoyens.services import models as services_models  # noqa: F401
