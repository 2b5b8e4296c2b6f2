"""The public transparency report: per agency and month, how many requests were sent, how many owners they
reached, how many owners provided footage, and the median time owners took to answer. Aggregates only: no
case numbers, no owner, no area."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import text

from services.requests_api.database import SessionDep
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import TransparencyReport
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])
REPORT_EXAMPLE = TransparencyReport.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]

REPORT_SQL = """
SELECT r.agency, to_char(date_trunc('month', r.sent_at), 'YYYY-MM') AS month,
       count(DISTINCT r.id) AS requests_sent,
       count(t.id) FILTER (WHERE t.notified_at IS NOT NULL) AS owners_contacted,
       count(t.id) FILTER (WHERE t.state IN ('uploaded', 'completed')) AS owners_fulfilled,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.answered_at - t.notified_at))
           FILTER (WHERE t.answered_at IS NOT NULL AND t.notified_at IS NOT NULL) AS median_s
FROM requests.requests r LEFT JOIN requests.targets t ON t.request_id = r.id
WHERE r.sent_at IS NOT NULL AND (CAST(:agency AS text) IS NULL OR r.agency = :agency)
  AND r.sent_at >= date_trunc('month', now()) - make_interval(months => :months - 1)
GROUP BY r.agency, date_trunc('month', r.sent_at)
ORDER BY r.agency, month
"""


@router.get(
    "",
    summary="Public aggregate statistics of footage requests, per agency and month",
    response_model=TransparencyReport,
    responses={**example(200, REPORT_EXAMPLE), **problem_responses(422)},
)
async def report(
    session: SessionDep,
    agency: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="One agency's slug (all agencies by default)"
        ),
    ] = None,
    months: Annotated[int, Query(ge=1, le=120, description="How many months back, this one included")] = 24,
) -> Response:
    rows = (await session.execute(text(REPORT_SQL), {"agency": agency, "months": months})).mappings().all()
    agencies: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        median = r["median_s"]
        agencies.setdefault(r["agency"], []).append(
            {
                "month": r["month"],
                "requests_sent": r["requests_sent"],
                "owners_contacted": r["owners_contacted"],
                "owners_fulfilled": r["owners_fulfilled"],
                "median_hours_to_answer": None if median is None else round(float(median) / 3600, 2),
            }
        )
    return json_response(
        {
            "agencies": [{"agency": a, "months": m} for a, m in agencies.items()],
            "generated_at": datetime.now(UTC),
        },
        headers={"Cache-Control": "public, max-age=300"},
    )
