"""Entry points the dead-code check (scripts/dead_code.py) cannot see being used: each is named here, so vulture
counts it as used. mypy checks this file, so a name that goes from the code must go from here too."""

from __future__ import annotations

from bench import live_bench
from services.registry_api import audit_index
from services.registry_api import models as registry_models
from services.requests_api import models as requests_models
from shared import audit, server

_ = (
    # The live bench's one case: `make bench ONLY=live` runs it with pytest by its file's name.
    live_bench.test_the_live_relay_bench,
    # Tables and mapped classes: SQLAlchemy's metadata, which migrations/env.py compares with the database.
    audit.chain_head,
    audit_index.event_places,
    audit_index.event_refs,
    registry_models.Registration,
    registry_models.RegistrationShare,
    registry_models.LiveWindow,
    registry_models.CredentialReset,
    registry_models.ImportJob,
    registry_models.ImportRejection,
    registry_models.ImportCredential,
    registry_models.ImportStaging,
    registry_models.ImportStagingCamera,
    registry_models.ImportTombstone,
    registry_models.OwnerNotice,
    registry_models.GuessCount,
    registry_models.CoverageCount,
    registry_models.EdgeAgent,
    registry_models.EdgeAgentEnrolment,
    requests_models.FootageRequest,
    requests_models.Evidence,
    requests_models.Custody,
    requests_models.Outbox,
    requests_models.AgencyWebhook,
    requests_models.Feed,
    # uvicorn loads it by name (`--http shared.server:HttpProtocol`).
    server.HttpProtocol,
)
