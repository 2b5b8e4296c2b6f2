"""Alembic environment: runs the one migration tree against DATABASE_URL (or `-x url=...`)."""

from __future__ import annotations

import asyncio
import re

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.models import SCHEMAS, metadata
from shared.db import sqlalchemy_url
from shared.settings import get_settings

config = context.config


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or get_settings().migrations_url


# The audit trail's monthly partitions (migration 0025): made by the database as the months come, not models.
AUDIT_PARTITION = re.compile(r"events_\d{4}_\d{2}")


def include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    if type_ == "schema":
        return name in SCHEMAS
    if type_ == "table" and parent_names.get("schema_name") == "audit" and AUDIT_PARTITION.fullmatch(name):
        return False
    return True


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        version_table_schema="public",
    )


def _run_sync(connection) -> None:  # type: ignore[no-untyped-def]
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(sqlalchemy_url(_url()), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=sqlalchemy_url(_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connectable = config.attributes.get("connection")
    if connectable is None:
        asyncio.run(_run_async())
    else:
        _run_sync(connectable)
