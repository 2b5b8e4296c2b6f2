"""The public transparency report: per agency and month, how many requests were sent, how many owners they
reached, how many owners provided footage, and the median time owners who shared took to accept. Aggregates
only: no case numbers, no owner, no area.

Nothing in it tells an answer from silence: the median times only owners who shared (a decline is never timed),
a month with fewer than `MIN_OWNERS_CONTACTED` owners contacted shows no answer figures at all, a median over fewer
than `MIN_OWNERS_TIMED` owners who shared is not shown (over one it would be that owner's own delay), and the current
month is left out until it ends (a figure that moves from one day to the next would date an answer), and each month is
counted as of its last instant: an answer given later never moves a published month's figures.

Anyone may ask, without a token, and computing the figures reads every request of the months asked and their
targets (1.7 s of a database core for ten agencies' 100,000 requests over ten years, measured): so one computation
at a time runs in a process, the others wait for it (at most `QUEUE_WAIT_S`, then a 503 with Retry-After), and a
flood of callers queues here instead of taking the database's cores from the agencies' work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.requests_api.database import SessionDep
from services.requests_api.repository import transparency as repo
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import TransparencyReport
from shared.errors import Problem, problem_responses

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])
REPORT_EXAMPLE = TransparencyReport.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]

MIN_OWNERS_CONTACTED = 5
MIN_OWNERS_TIMED = 5
# Under the statement timeout (5 s by default): a caller behind a computation that is itself cut off there does not
# wait for nothing.
QUEUE_WAIT_S = 2.0
_computing = asyncio.Semaphore(1)


@router.get(
    "",
    summary="Public aggregate statistics of footage requests, per agency and month",
    response_model=TransparencyReport,
    responses={**example(200, REPORT_EXAMPLE), **problem_responses(422, 503)},
    description=(
        "Months that have ended only (UTC): the current month appears once it is over. For a month in which "
        f"fewer than {MIN_OWNERS_CONTACTED} owners were contacted, `owners_fulfilled` and `median_hours_to_share` "
        "are null (suppressed), so no single owner's answer can be read from it; `median_hours_to_share` is "
        f"null too when fewer than {MIN_OWNERS_TIMED} owners shared, so it never tells one owner's own delay. "
        "The median times owners who shared (from notification to accepting); declines and silence are never "
        "timed. Each month is counted "
        "as of its last instant (UTC), so a published month's figures never change: an owner answering after "
        "the month ended is not counted in it."
    ),
)
async def report(
    session: SessionDep,
    agency: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="One agency's slug (all agencies by default)"
        ),
    ] = None,
    months: Annotated[
        int,
        Query(ge=1, le=120, description="How many ended months back (the current month is never included)"),
    ] = 24,
) -> Response:
    try:
        async with asyncio.timeout(QUEUE_WAIT_S):
            await _computing.acquire()
    except TimeoutError:
        raise Problem(
            503,
            "The report is being computed for other callers; retry shortly.",
            headers={"Retry-After": "5"},
        ) from None
    try:
        rows = await repo.monthly(session, agency, months)
    finally:
        _computing.release()
    agencies: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        median = r["median_s"]
        shown = r["owners_contacted"] >= MIN_OWNERS_CONTACTED
        agencies.setdefault(r["agency"], []).append(
            {
                "month": r["month"],
                "requests_sent": r["requests_sent"],
                "owners_contacted": r["owners_contacted"],
                "owners_fulfilled": r["owners_fulfilled"] if shown else None,
                "median_hours_to_share": round(float(median) / 3600, 2)
                if shown and median is not None and r["owners_timed"] >= MIN_OWNERS_TIMED
                else None,
            }
        )
    return json_response(
        {
            "agencies": [{"agency": a, "months": m} for a, m in agencies.items()],
            "generated_at": datetime.now(UTC),
        },
        headers={"Cache-Control": "public, max-age=300"},
    )
