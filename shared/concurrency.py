"""Optimistic concurrency, the same in every service that writes: a versioned row's `ETag` is its version, an
update names the version it last read in `If-Match` (412 when stale, 428 when an update that needs it names
none), and every write of a versioned row moves its version and its time of change with `next_version`."""

from __future__ import annotations

from shared.errors import Problem


def next_version(row: str | None = None) -> str:
    """The SET clause every write of a versioned row carries (its ETag changes with it). `row` qualifies the
    current version where a bare name is ambiguous (an upsert's `DO UPDATE`, beside `EXCLUDED`)."""
    current = f"{row}.version" if row else "version"
    return f"version = {current} + 1, updated_at = now()"


NEXT_VERSION = next_version()


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(version: int, if_match: str | None, *, required: bool, noun: str = "resource") -> None:
    """412 when the client's copy is stale; 428 when an update that needs If-Match names no version at all (an
    empty header names none either). `noun` names what changed in the 412's text."""
    if if_match is None or not if_match.strip():
        if required:
            raise Problem(
                428,
                'This update needs an If-Match header with the ETag you last read (e.g. If-Match: "3"), '
                "so it cannot overwrite a change you have not seen.",
            )
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    wanted = etag(version)
    if not any(t.removeprefix("W/") == wanted for t in tags):
        raise Problem(
            412,
            f"The {noun} changed since you read it: its ETag is now {wanted}. Read it again and retry.",
            headers={"ETag": wanted},
        )
