"""The dead-code check of `make lint` (scripts/dead_code.py): the project has nothing unused, and the check finds
an unused function or constant while leaving alone what a framework reads (a model's fields, a route)."""

from __future__ import annotations

from pathlib import Path

from scripts.dead_code import findings

MODULE = """
from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()
LIMIT = 10
FORGOTTEN = 20


class Answer(BaseModel):
    serialised_only: int


@router.get("/answer")
async def answer() -> Answer:
    return Answer(serialised_only=LIMIT)


def never_called() -> None:
    pass
"""


def test_nothing_in_the_project_is_unused() -> None:
    assert findings() == []


def test_the_check_finds_an_unused_function_and_constant_but_not_what_a_framework_reads(
    tmp_path: Path,
) -> None:
    (tmp_path / "module.py").write_text(MODULE)
    found = findings([tmp_path])
    assert [line.split(": ", 1)[1].split(" (")[0] for line in found] == [
        "unused variable 'FORGOTTEN'",
        "unused function 'never_called'",
    ]
