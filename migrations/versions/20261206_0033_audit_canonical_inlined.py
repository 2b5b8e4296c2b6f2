"""A record's canonical form computed inline: `audit.canonical` declared STABLE, as what it calls is.

`audit.canonical` is a SQL function declared IMMUTABLE whose body calls `to_char` and `concat_ws`, which are
STABLE. PostgreSQL inlines a SQL function into the expression that calls it only when the body is no more volatile
than the declaration, so this one was never inlined: every append ran it as a function of its own, and a SQL
function called from PL/pgSQL is parsed, analysed and planned again in each transaction (its cached state lives as
long as the transaction's expression state). That was a quarter of the database's CPU for one record appended
alone (perf of a backend appending records one per transaction: `fmgr_sql` 26 %, the parser 6 %); a search alone
appends its record in a transaction of its own.

Declared STABLE, it is inlined into `append_event`, `append_events` and the chain's verification: the same text,
so the same hashes (nothing stored changes); its result never depended on session settings (the time is written
with `to_char` in UTC, every other value is text or has a fixed output), which IMMUTABLE was meant to say.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER FUNCTION audit.canonical(audit.events) STABLE")


def downgrade() -> None:
    op.execute("ALTER FUNCTION audit.canonical(audit.events) IMMUTABLE")
