"""community_api at scale: an alert's fan-out written as batches of recipients with a cheap first test of each
subscription's area, and a rate limit shared by every process of the service.

- `delivery_batches`: an alert's recipients as written by its fan-out, up to 500 subscription ids a row, until the
  outbox turns each batch into its deliveries (and deletes it). One row per subscription with its three index
  entries was most of the fan-out's time (over 1 s of 1.5 s for 100,000 subscriptions); a batch is one row.
- `subscriptions.inner_point`: a point inside the area (generated, ST_PointOnSurface). An alert's area that covers
  it intersects the subscription, a test PostGIS answers without GEOS (its point-in-polygon cache), so the exact
  test of the whole area is left to the subscriptions at the alert's edge.
- `rate_windows` and `rate_counts` (UNLOGGED: never in the WAL, its archives or a replica; emptied by a crash,
  which only forgives the counts): the anonymous routes' counts per sender and window. A sender is counted under
  an HMAC of their address with a key derived from the service's secret key and the window's random salt; the
  address is never written, and the salt and counts are deleted when the window ends (services/community_api/
  ratelimit.py).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE community.subscriptions ADD COLUMN inner_point geometry(Point, 4326)"
        " GENERATED ALWAYS AS (ST_PointOnSurface(area)) STORED"
    )
    op.execute(
        """
        CREATE TABLE community.delivery_batches (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            alert_id uuid NOT NULL REFERENCES community.alerts (id),
            channel text NOT NULL CHECK (channel IN ('email', 'sms')),
            subscription_ids uuid[] NOT NULL CHECK (cardinality(subscription_ids) BETWEEN 1 AND 500)
        )
        """
    )
    op.execute("CREATE INDEX ix_delivery_batches_channel ON community.delivery_batches (channel, id)")
    op.execute("CREATE INDEX ix_delivery_batches_alert ON community.delivery_batches (alert_id)")
    op.execute(
        """
        CREATE UNLOGGED TABLE community.rate_windows (
            length_s double precision NOT NULL,
            number bigint NOT NULL,
            salt bytea NOT NULL,
            ends_at timestamptz NOT NULL,
            PRIMARY KEY (length_s, number)
        )
        """
    )
    op.execute(
        """
        CREATE UNLOGGED TABLE community.rate_counts (
            key bytea PRIMARY KEY,
            count integer NOT NULL,
            ends_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX ix_rate_counts_ends ON community.rate_counts (ends_at)")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE
                    ON community.delivery_batches, community.rate_windows, community.rate_counts TO {APP_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE community.rate_counts")
    op.execute("DROP TABLE community.rate_windows")
    op.execute("DROP TABLE community.delivery_batches")
    op.execute("ALTER TABLE community.subscriptions DROP COLUMN inner_point")
