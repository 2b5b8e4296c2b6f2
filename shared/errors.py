"""RFC 9457 problem details: every error any service returns is `application/problem+json`.

Handlers here turn validation errors, HTTP errors (404, 405, 413, ...), database outages and anything
unexpected into a problem document with `type`, `title`, `status`, `detail` and, for validation, the
offending fields as JSON Pointers, each with a machine-readable `code` (and the `params` to word it) so that a
client can say it in its reader's language; `reason` and `detail` stay English sentences for developers.
A stack trace never leaves the process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.inputs import not_null

log = logging.getLogger("canvass.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://canvass.example/problems/"


# The value a code's sentence needs (a limit, the values expected): JSON scalars only.
Param = str | int | float | bool


def _params_schema(schema: dict[str, Any]) -> None:
    # Left out when there are none, never sent as null.
    schema["properties"]["params"] = not_null(schema["properties"]["params"])


class InvalidParam(BaseModel):
    model_config = ConfigDict(json_schema_extra=_params_schema)

    pointer: str = Field(description="JSON Pointer (RFC 6901) to the offending member, e.g. /body/location")
    reason: str = Field(description="What is wrong, as an English sentence for developers")
    code: str = Field(
        "invalid",
        description=(
            "What is wrong, as a stable machine-readable code to word it in the reader's language: pydantic's "
            "error type (`missing`, `string_too_long`, `greater_than_equal`, `too_long`, `literal_error`, ...) "
            "or one of the services' own (`email_invalid`, `phone_invalid`, `text_invalid`, `contact_required`, "
            "`unknown_agency`, `outside_jurisdiction`, `cursor_invalid`, `repeated`, ...); `invalid` when no "
            "finer code applies (then only `reason` says why)"
        ),
        examples=["string_too_long"],
    )
    params: dict[str, Param] | None = Field(
        None,
        description="What the code's sentence needs: the limit crossed (`max_length`, `ge`, `le`, ...), the "
        "values expected (`expected`)",
        examples=[{"max_length": 200}],
    )


class ProblemDetail(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        description="URI identifying the kind of problem", examples=[PROBLEM_BASE + "validation"]
    )
    title: str = Field(examples=["Request validation failed"])
    status: int = Field(examples=[422])
    detail: str | None = Field(
        None, examples=["/body/location/coordinates/0: longitude must be in [-180, 180]"]
    )
    instance: str | None = None
    errors: list[InvalidParam] | None = Field(
        None, description="Every invalid member, for validation problems"
    )


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: Sequence[InvalidParam] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _default_kind(status)
        self.title = title or _phrase(status)
        self.errors = list(errors) if errors else None
        self.headers = headers
        self.extra = extra


def invalid(
    pointer: str,
    reason: str,
    status: int = 422,
    *,
    code: str = "invalid",
    params: Mapping[str, Param] | None = None,
) -> Problem:
    """A validation problem about one member of the request: `reason` for developers, `code` (and `params`)
    for a client to word it in its reader's language (see `InvalidParam.code`)."""
    return Problem(
        status,
        f"{pointer}: {reason}",
        kind="validation",
        title="Request validation failed",
        errors=[
            InvalidParam(pointer=pointer, reason=reason, code=code, params=dict(params) if params else None)
        ],
    )


def refused(code: str, reason: str, **params: Param) -> PydanticCustomError:
    """What a model's validator raises for a refusal with a code of the services' own (a ValueError, so
    callers outside pydantic catch it as before): the member's `code` and `params` in the problem document."""
    return PydanticCustomError(code, reason, params or None)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_KINDS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    428: "precondition-required",
    429: "too-many-requests",
    502: "upstream-error",
    503: "unavailable",
    504: "upstream-timeout",
    507: "insufficient-storage",
}


def _default_kind(status: int) -> str:
    return _KINDS.get(status, "error" if status >= 500 else "client-error")


def problem_response(
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    title: str | None = None,
    errors: Iterable[InvalidParam] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (kind or _default_kind(status)),
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# A problem says what was wrong, not what was sent: what the caller wrote is cut to this many characters where it
# shows (a member's name in its pointer, a reason that quotes it), so the answer stays small whatever the input.
_ECHO_CHARS = 200


def _cut(text: str) -> str:
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "…"


def _pointer(loc: Sequence[Any]) -> str:
    parts = []
    for p in loc:
        s = _cut(str(p))
        parts.append(s.replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts)


def _reason(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    ctx = err.get("ctx") or {}
    if err.get("type") == "json_invalid":
        return f"malformed JSON ({ctx.get('error', 'could not be parsed')})"
    if err.get("type") == "union_tag_invalid":
        # pydantic's sentence quotes the tag sent; what is expected is the useful part.
        return f"{ctx.get('discriminator', 'its type')} must be one of: {ctx.get('expected_tags', '')}"
    # pydantic prefixes custom ValueErrors with "Value error, "; the person reading wants the reason.
    return _cut(msg.removeprefix("Value error, "))


_NOT_PARAMS = frozenset({"error", "tag"})


def _params(ctx: Mapping[str, Any] | None) -> dict[str, Param] | None:
    """The JSON-safe values of pydantic's error context (its limits, the values expected); an exception
    carried there (`error` of a custom validator) is not one: its words are already the reason. Nor is what
    the caller sent (`tag`, the discriminator value of a union), which the problem never echoes."""
    out: dict[str, Param] = {}
    for key, value in (ctx or {}).items():
        if isinstance(value, Decimal):
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            continue  # not a JSON number
        if isinstance(value, (str, int, float, bool)) and key not in _NOT_PARAMS:
            out[key] = value
    return out or None


# An invalid query parameter is a 400 on every operation, REST and OGC API alike (OGC API – Features requires 400):
# one status for the same mistake wherever it is made. A body that parses but does not validate is a 422.
QUERY_STATUS = 400


def _only_query(errors: Sequence[InvalidParam] | None) -> bool:
    return bool(errors) and all(e.pointer.startswith("/query/") for e in errors or ())


# The members a problem lists at most (a body of a megabyte can hold a hundred thousand wrong numbers).
_MAX_MEMBERS = 50


def validation_problem(errors: Sequence[dict[str, Any]]) -> Response:
    params = [
        InvalidParam(
            pointer=_pointer(e.get("loc", ())),
            reason=_reason(e),
            code=str(e.get("type") or "invalid"),
            params=_params(e.get("ctx")),
        )
        for e in errors[:_MAX_MEMBERS]
    ]
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    status = 400 if malformed or _only_query(params) else 422
    detail = "; ".join(f"{p.pointer}: {p.reason}" for p in params[:5])
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return problem_response(
        status,
        detail,
        kind="malformed-json" if malformed else "validation",
        title="Malformed request body" if malformed else "Request validation failed",
        errors=params,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(
            QUERY_STATUS if exc.status == 422 and _only_query(exc.errors) else exc.status,
            exc.detail,
            kind=exc.kind,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return validation_problem(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            from shared.http import allowed_methods  # local: shared.http builds on this module

            detail = f"{request.method} is not allowed on {request.url.path}"
            allowed = allowed_methods(request.app, request.url.path)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return problem_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Reached only from outside the app's middleware (see shared/http.py, which answers first).
        return unexpected_problem(exc, request.method, request.url.path)


def unexpected_problem(exc: BaseException, method: str, path: str) -> Response:
    """The answer to an exception no route handled: 503 (with Retry-After) when the database is away, busy or
    too slow, else a logged 500 that says nothing of the cause."""
    if _is_database_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            "The database is unavailable; retry shortly.",
            kind="unavailable",
            headers={"Retry-After": "2"},
        )
    if _is_statement_timeout(exc):
        return problem_response(
            503, "The query took too long and was cancelled; narrow it and retry.", kind="timeout"
        )
    if is_contention(exc):
        return problem_response(
            503,
            "What this needs is busy; retry shortly.",
            kind="unavailable",
            headers={"Retry-After": "1"},
        )
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred; it has been logged.", kind="internal")


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__
        orig = getattr(cur, "orig", None)
        if isinstance(orig, BaseException) and id(orig) not in seen:
            cur = orig


def _is_database_unavailable(exc: BaseException) -> bool:
    import asyncpg  # local: only needed on the error path

    for e in _chain(exc):
        if isinstance(e, (ConnectionError, OSError, asyncpg.exceptions.CannotConnectNowError)):
            return True
        if isinstance(
            e,
            (
                asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.InterfaceError,
                # A pooled connection that received the server's "terminating connection" while idle fails its
                # next statement with a protocol-state error before asyncpg sees the socket close.
                asyncpg.exceptions.InternalClientError,
                asyncpg.exceptions.AdminShutdownError,
                asyncpg.exceptions.ConnectionFailureError,
            ),
        ):
            return True
        if type(e).__name__ in {"DisconnectionError", "TooManyConnectionsError"}:
            return True
        if getattr(e, "connection_invalidated", False):
            return True
    return False


def is_contention(exc: BaseException) -> bool:
    """A lock not granted in time (lock_timeout), a deadlock broken, a serialization failure: worth a retry."""
    import asyncpg

    kinds = (
        asyncpg.exceptions.LockNotAvailableError,
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.SerializationError,
    )
    return any(isinstance(e, kinds) for e in _chain(exc))


def _is_statement_timeout(exc: BaseException) -> bool:
    import asyncpg

    return any(isinstance(e, asyncpg.exceptions.QueryCanceledError) for e in _chain(exc))


# The problem responses every operation documents; routes add their own 404/409/412 where they apply.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        out[s] = {
            "description": _phrase(s),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/ProblemDetail"},
                    "example": {
                        "type": PROBLEM_BASE + _default_kind(s),
                        "title": _phrase(s),
                        "status": s,
                        "detail": "A sentence a person can act on.",
                    },
                }
            },
        }
    return out
