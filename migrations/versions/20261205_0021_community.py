"""The `community` schema: anonymous tips to an agency and opt-in area alerts (community_api).

- `policies`: each agency's limits for tips (media size, types and count, retention) and alerts (the largest
  radius a subscription may take). An agency without a row has the defaults.
- `tips`, `tip_messages`, `tip_media`: a tip, the two-way conversation on it, and its media with their metadata
  already removed. The tipster's code is kept only as a SHA-256 hash; no address or user agent is ever stored.
- `subscriptions`, `alerts`, `deliveries`: opt-in subscriptions (the contact sealed, an area indexed for the
  fan-out), the alerts staff send, and the outbox of one delivery per alert and subscription (which outlives an
  ended subscription, without its contact, as a count).

The runtime role (`canvass_app`, see 0005) gets the same row rights as on the other services' schemas.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"


def upgrade() -> None:
    op.execute("CREATE SCHEMA community")
    for statement in TABLES.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(GRANTS)


TABLES = """
        CREATE TABLE community.policies (
            agency text PRIMARY KEY,
            tip_media_max_bytes bigint NOT NULL CHECK (tip_media_max_bytes BETWEEN 1024 AND 104857600),
            tip_media_types text[] NOT NULL,
            tip_max_files integer NOT NULL CHECK (tip_max_files BETWEEN 0 AND 10),
            tip_retention_days integer NOT NULL CHECK (tip_retention_days BETWEEN 1 AND 3650),
            alert_max_radius_m integer NOT NULL CHECK (alert_max_radius_m BETWEEN 50 AND 50000),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE community.tips (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            agency text NOT NULL,
            location geometry(Point, 4326),
            occurred_at timestamptz,
            code_hash bytea NOT NULL UNIQUE,
            state text NOT NULL DEFAULT 'new'
                CHECK (state IN ('new', 'reviewing', 'actioned', 'closed')),
            legal_hold boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            closed_at timestamptz,
            CHECK ((state = 'closed') = (closed_at IS NOT NULL))
        );
        CREATE INDEX ix_tips_agency_created ON community.tips (agency, created_at DESC, id DESC);
        CREATE INDEX ix_tips_location ON community.tips USING gist (location);
        CREATE INDEX ix_tips_closed ON community.tips (closed_at) WHERE state = 'closed' AND NOT legal_hold;
        CREATE TABLE community.tip_messages (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tip_id uuid NOT NULL REFERENCES community.tips (id) ON DELETE CASCADE,
            author text NOT NULL CHECK (author IN ('tipster', 'agency')),
            body text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 10000),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX ix_tip_messages_tip ON community.tip_messages (tip_id, created_at);
        CREATE TABLE community.tip_media (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tip_id uuid NOT NULL REFERENCES community.tips (id) ON DELETE CASCADE,
            message_id uuid NOT NULL REFERENCES community.tip_messages (id) ON DELETE CASCADE,
            media_type text NOT NULL,
            size bigint NOT NULL,
            sha256 bytea NOT NULL,
            content bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ix_tip_media_tip ON community.tip_media (tip_id);
        CREATE INDEX ix_tip_media_message ON community.tip_media (message_id);

        CREATE TABLE community.subscriptions (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            agency text NOT NULL,
            channel text NOT NULL CHECK (channel IN ('email', 'sms')),
            contact bytea NOT NULL,
            contact_index bytea NOT NULL,
            area geometry(MultiPolygon, 4326) NOT NULL,
            categories text[] NOT NULL,
            language text NOT NULL,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
            confirm_hash bytea,
            confirm_failures integer NOT NULL DEFAULT 0,
            manage_hash bytea NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            confirmed_at timestamptz,
            unsubscribed_at timestamptz
        );
        CREATE INDEX ix_subscriptions_area ON community.subscriptions USING gist (area)
            WHERE status = 'confirmed';
        CREATE INDEX ix_subscriptions_contact ON community.subscriptions (contact_index);
        CREATE TABLE community.alerts (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            agency text NOT NULL,
            title text NOT NULL,
            message text NOT NULL,
            category text NOT NULL,
            area geometry(MultiPolygon, 4326) NOT NULL,
            expires_at timestamptz NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ix_alerts_agency_created ON community.alerts (agency, created_at DESC);
        CREATE TABLE community.deliveries (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            -- No foreign keys: they would cost two look-ups per row of a fan-out (1.4 s of 4.5 s for 100,000 rows),
            -- alerts are never deleted, and an ended subscription is deleted at once, its queued deliveries
            -- cancelled when their turn comes (they find no subscription).
            alert_id uuid NOT NULL,
            subscription_id uuid NOT NULL,
            channel text NOT NULL CHECK (channel IN ('email', 'sms')),
            status text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            lease_until timestamptz,
            sent_at timestamptz,
            UNIQUE (alert_id, subscription_id)
        );
        CREATE INDEX ix_deliveries_due ON community.deliveries (channel, next_attempt_at)
            WHERE status = 'queued';
"""
GRANTS = f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT USAGE ON SCHEMA community TO {APP_ROLE};
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA community TO {APP_ROLE};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA community TO {APP_ROLE};
            END IF;
        END $$;
"""


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                REVOKE ALL ON ALL TABLES IN SCHEMA community FROM {APP_ROLE};
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA community FROM {APP_ROLE};
                REVOKE ALL ON SCHEMA community FROM {APP_ROLE};
            END IF;
        END $$;
        """
    )
    op.execute("DROP SCHEMA community CASCADE")
