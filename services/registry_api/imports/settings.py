"""The import's settings, read from the environment (pydantic-settings, as `shared/settings.py` reads the rest).

Read once, when the runner starts: a malformed value refuses start-up, naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImportSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Where uploads are spooled while their job runs (personal data in clear: every end of a job removes its own).
    import_dir: Path = Field(
        Path(".local/imports"),
        alias="CANVASS_IMPORT_DIR",
        description="Where uploads are spooled while their job runs (each end of a job removes its own).",
    )
    # A job whose process has not renewed its lease for this long is taken over by another process.
    lease_s: float = Field(
        30.0,
        alias="CANVASS_IMPORT_LEASE_S",
        gt=0,
        description="A job whose process has not renewed its lease for this long is taken over by another.",
    )
    # Features read, validated and staged at a time (memory per job grows with it).
    chunk: int = Field(
        5000,
        alias="CANVASS_IMPORT_CHUNK",
        ge=1,
        description="Features read, validated and staged at a time (a job's memory grows with it).",
    )
    # How long a credential awaits delivery after its job ended (a report not downloaded) before deletion.
    credential_ttl_s: float = Field(
        7 * 24 * 3600,
        alias="CANVASS_IMPORT_CREDENTIAL_TTL_S",
        gt=0,
        description="How long an imported credential awaits delivery after its job ended, in seconds.",
    )
    # How long an ended job's report (its rejected features, whose reasons quote places and values of the
    # upload) is kept before deletion; the job itself, with its counts, stays.
    report_ttl_s: float = Field(
        30 * 24 * 3600,
        alias="CANVASS_IMPORT_REPORT_TTL_S",
        gt=0,
        description="How long an ended job's report is kept before deletion, in seconds (the job stays).",
    )
    # How often each process sweeps: expired reports and credentials, uploads left behind.
    sweep_s: float = Field(
        600.0,
        alias="CANVASS_IMPORT_SWEEP_S",
        gt=0,
        description="How often each process sweeps expired reports, credentials and uploads left behind.",
    )


@lru_cache
def import_settings() -> ImportSettings:
    return ImportSettings()
