"""The transparency report's figures: per agency and month, counted as of the month's last instant (see
services/requests_api/transparency.py for what is shown of them)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api.states import shared_at_some_point

# Months in UTC, each counted as of its last instant (`m.end_at`): what happened after a month ended (an owner
# accepting or uploading next month) never changes its figures, so a published month never moves. An owner shared
# if they ever accepted (every sharing state passes through an accept); their answered_at is the accept's time
# (the first answer is kept); uploaded_at is their first upload's.
REPORT_SQL = f"""
SELECT r.agency, to_char(m.start_at, 'YYYY-MM') AS month,
       count(DISTINCT r.id) AS requests_sent,
       count(t.id) FILTER (WHERE t.notified_at < m.end_at) AS owners_contacted,
       count(t.id) FILTER (WHERE t.notified_at < m.end_at AND t.uploaded_at < m.end_at) AS owners_fulfilled,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.answered_at - t.notified_at))
           FILTER (WHERE s.shared AND t.answered_at < m.end_at AND t.notified_at < m.end_at) AS median_s,
       count(t.id) FILTER (WHERE s.shared AND t.answered_at < m.end_at AND t.notified_at < m.end_at) AS owners_timed
FROM requests.requests r
CROSS JOIN LATERAL (
    SELECT date_trunc('month', r.sent_at AT TIME ZONE 'UTC') AS start_at,
           (date_trunc('month', r.sent_at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' AS end_at
) m
LEFT JOIN requests.targets t ON t.request_id = r.id
CROSS JOIN LATERAL (SELECT {shared_at_some_point("t")} AS shared) s
WHERE r.sent_at IS NOT NULL AND (CAST(:agency AS text) IS NULL OR r.agency = :agency)
  AND r.sent_at AT TIME ZONE 'UTC' < date_trunc('month', now() AT TIME ZONE 'UTC')
  AND r.sent_at AT TIME ZONE 'UTC' >= date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => :months)
GROUP BY r.agency, m.start_at, m.end_at
ORDER BY r.agency, month
"""  # noqa: S608 - composed from constants; values are bound


async def monthly(session: AsyncSession, agency: str | None, months: int) -> list[RowMapping]:
    """The figures of each ended month of the last `months`, for one agency or all."""
    rows = await session.execute(text(REPORT_SQL), {"agency": agency, "months": months})
    return list(rows.mappings().all())
