"""Every table of the one database, gathered for Alembic: each service's models register on one metadata."""

from services.registry_api import audit_index  # noqa: F401 - registers audit.event_places, audit.event_refs
from services.registry_api import models as registry_models  # noqa: F401
from services.requests_api import models as requests_models  # noqa: F401
from shared import audit  # noqa: F401 - registers audit.events
from shared.db import Base

SCHEMAS = ("registry", "requests", "audit")
metadata = Base.metadata
