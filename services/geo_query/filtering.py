"""The cameras collection's queryables (OGC API – Features Part 3) and the two filters a client builds with them —
`datetime` (Part 1) and a CQL2 text `filter` (Part 3) — turned into SQL conditions on `registry.cameras c`.

The CQL2 text is parsed by pygeofilter; the SQL is written here, never by the parser's own SQL backend (which
inlines literals): every property a filter names must be one of QUERYABLES, whose SQL is a constant of this module,
and every value it gives is a bound parameter of the query, type-checked against its property first. Anything
else — an unknown property, a function, arithmetic, a value of the wrong type, text that does not parse — is a 400
problem pointing at the parameter. Supported: Basic CQL2 (comparisons, AND/OR/NOT, IS [NOT] NULL, TIMESTAMP() and
DATE() literals) and the advanced comparison operators (LIKE, BETWEEN, IN).

The temporal property of the collection is `registered_at`, the instant a camera was added to the registry
(`cameras.created_at`): `datetime=../2026-11-20T22:15:00Z` keeps the cameras that were already registered at an
incident's time.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from lark.exceptions import LarkError
from pygeofilter import ast
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from services.geo_query.service import Sql
from shared.errors import Problem, invalid
from shared.timestamps import parse_instant
from shared.vocabulary import LIVE_MODES, OWNER_KINDS, PLACEMENTS

Kind = Literal["text", "integer", "number", "boolean", "timestamp", "uuid"]
RECORDING = ("continuous", "motion", "scheduled")
MAX_FILTER_CHARS = 4000
FILTER_LANGS = ("cql2-text", "cql-text")  # cql-text: the drafts' name, which GDAL's OAPIF driver sends
TEMPORAL_PROPERTY = "registered_at"


@dataclass(frozen=True)
class Queryable:
    sql: str  # an expression over registry.cameras c: a constant, never built from input
    kind: Kind
    description: str
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = True

    def schema(self) -> dict[str, Any]:
        """The property's JSON Schema, as Part 3 publishes it."""
        base: dict[str, Any] = {
            "text": {"type": "string"},
            "integer": {"type": "integer"},
            "number": {"type": "number"},
            "boolean": {"type": "boolean"},
            "timestamp": {"type": "string", "format": "date-time"},
            "uuid": {"type": "string", "format": "uuid"},
        }[self.kind]
        out: dict[str, Any] = {"description": self.description, **base}
        if self.enum:
            out["enum"] = list(self.enum)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


QUERYABLES: dict[str, Queryable] = {
    "id": Queryable("c.id", "uuid", "The camera's id", nullable=False),
    "registration_id": Queryable(
        "c.registration_id", "uuid", "The registration it belongs to", nullable=False
    ),
    "label": Queryable("c.label", "text", "The owner's name for the camera"),
    "owner_kind": Queryable("c.owner_kind", "text", "Kind of owner", OWNER_KINDS, nullable=False),
    "placement": Queryable("c.placement", "text", "Indoor or outdoor", PLACEMENTS),
    "direction_deg": Queryable(
        "c.direction_deg",
        "integer",
        "Compass direction it faces (0 = north, clockwise)",
        minimum=0,
        maximum=359,
    ),
    "fov_deg": Queryable(
        "c.fov_deg", "integer", "Horizontal field of view in degrees", minimum=1, maximum=360
    ),
    "range_m": Queryable("c.range_m", "number", "How far it sees, in metres"),
    "retention_days": Queryable(
        "c.retention_days", "integer", "Days of footage the owner keeps", minimum=0, maximum=3650
    ),
    "recording": Queryable("c.recording", "text", "When it records", RECORDING),
    "schedule": Queryable("c.schedule", "text", "When a scheduled camera records, in the owner's words"),
    "shares_history": Queryable(
        "c.shares_history", "boolean", "Whether recorded footage is shared", nullable=False
    ),
    "live_mode": Queryable(
        "c.live_mode", "text", "When the owner shares live video", LIVE_MODES, nullable=False
    ),
    TEMPORAL_PROPERTY: Queryable(
        "c.created_at",
        "timestamp",
        "When the camera was added to the registry (the `datetime` property)",
        nullable=False,
    ),
}


def queryables_document(url: str) -> dict[str, Any]:
    """`/collections/cameras/queryables`: a JSON Schema of the properties a filter may name (Part 3). The
    `queryables` list repeats their names in the form of the Part 3 drafts, the one GDAL's OAPIF driver reads to
    decide which parts of a `-where` it can send to the server."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": "Registered cameras",
        "properties": {name: q.schema() for name, q in QUERYABLES.items()},
        "additionalProperties": False,
        "queryables": [{"id": name, "type": q.schema()["type"]} for name, q in QUERYABLES.items()],
    }


# ------------------------------------------------------------------------------------------------ datetime

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_POINTER_DT = "/query/datetime"


def _instant(text: str, pointer: str) -> datetime | date:
    """A full date, or an instant as every service reads one (shared/timestamps.py: an RFC 3339 date-time with
    its offset, `T` between date and time — the form OGC API Features and CQL2 name, RFC 3339 section 5.6's
    grammar; the space its prose allows for reading is refused — in UTC)."""
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise invalid(pointer, f"{text!r} is not a valid date: {exc}", status=400) from exc
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise invalid(
            pointer, f"{text!r} is neither a date (2026-11-20) nor an instant: {exc}", status=400
        ) from exc


# GDAL's OAPIF driver writes the date-times of a `-where` as text, cut to what the value had: a date as
# `2026-03-06T`, an hour as `2026-03-06T12Z`, minutes as `2026-03-06T12:30Z`.
_GDAL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})T$")
_GDAL_SHORT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2})(:\d{2})?Z$")


def _text_instant(text: str) -> datetime | date:
    """An instant or a date written as text in a filter: RFC 3339, or as GDAL writes them."""
    if m := _GDAL_DATE.match(text):
        text = m.group(1)
    elif m := _GDAL_SHORT.match(text):
        text = m.group(1) + (m.group(2) or ":00") + ":00Z"
    return _instant(text, _POINTER_F)


def _day_end(d: date) -> datetime | None:
    """The first instant after the day (None after the last day there is)."""
    try:
        return datetime.combine(d + timedelta(days=1), time(), UTC)
    except OverflowError:
        return None


def datetime_condition(value: str, sql: Sql) -> str:
    """`datetime` (an instant, a date, or an interval `start/end` with `..` or nothing for an open end) as a
    condition on the temporal property. Intervals are closed; a date stands for its whole day (UTC)."""
    column = QUERYABLES[TEMPORAL_PROPERTY].sql
    parts = value.split("/")
    if len(parts) > 2:
        raise invalid(_POINTER_DT, "give one instant or one interval start/end", status=400)
    if len(parts) == 1:
        at = _instant(value, _POINTER_DT)
        if isinstance(at, datetime):
            return f"{column} = {sql.p(at, 'timestamptz')}"
        start, end = datetime.combine(at, time(), UTC), _day_end(at)
        cond = f"{column} >= {sql.p(start, 'timestamptz')}"
        return cond if end is None else f"{cond} AND {column} < {sql.p(end, 'timestamptz')}"
    lo_text, hi_text = (p.strip() for p in parts)
    lo = None if lo_text in ("", "..") else _instant(lo_text, _POINTER_DT)
    hi = None if hi_text in ("", "..") else _instant(hi_text, _POINTER_DT)
    if lo is None and hi is None:
        raise invalid(_POINTER_DT, "an interval needs at least one end", status=400)
    lo_at = datetime.combine(lo, time(), UTC) if type(lo) is date else lo
    conds = []
    if lo_at is not None:
        conds.append(f"{column} >= {sql.p(lo_at, 'timestamptz')}")
    if isinstance(hi, datetime):
        hi_cond: tuple[str, datetime] | None = ("<=", hi)
    elif hi is not None:
        end = _day_end(hi)
        hi_cond = ("<", end) if end is not None else None
    else:
        hi_cond = None
    if hi_cond is not None:
        if isinstance(lo_at, datetime) and lo_at > hi_cond[1]:
            raise invalid(_POINTER_DT, "the interval ends before it starts", status=400)
        conds.append(f"{column} {hi_cond[0]} {sql.p(hi_cond[1], 'timestamptz')}")
    return " AND ".join(conds) if conds else "true"


# ------------------------------------------------------------------------------------------------- CQL2 text

_POINTER_F = "/query/filter"
_OPS: dict[type, str] = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_CAST: dict[Kind, str] = {
    "text": "text",
    "integer": "float8",  # 1.5 may be compared with an integer property
    "number": "float8",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "uuid": "uuid",
}


def _bad(reason: str) -> Problem:
    return invalid(_POINTER_F, reason, status=400)


def _mixes_and_with_or(text: str) -> bool:
    """Whether one level of parentheses joins conditions with both AND and OR. CQL2 binds AND tighter than OR, but
    pygeofilter's grammar gives them one precedence (`a OR b AND c` would read as `(a OR b) AND c`), so such a
    filter is refused and its author asked for parentheses rather than answered wrongly. Strings, quoted names
    and the AND of BETWEEN are skipped."""
    levels: list[dict[str, bool]] = [{}]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "(":
            levels.append({})
        elif ch == ")":
            done = levels.pop() if len(levels) > 1 else {}
            if done.get("and") and done.get("or"):
                return True
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word, level = text[i:j].upper(), levels[-1]
            if word == "BETWEEN":
                level["between"] = True
            elif word == "AND" and level.get("between"):
                level["between"] = False
            elif word in ("AND", "OR"):
                level[word.lower()] = True
            i = j
            continue
        i += 1
    return any(level.get("and") and level.get("or") for level in levels)


class _Translator:
    """A parsed CQL2 expression as a SQL condition; values bound in `sql`."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    def condition(self, node: Any) -> str:
        if isinstance(node, ast.And | ast.Or):
            op = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.condition(node.lhs)} {op} {self.condition(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"NOT ({self.condition(node.sub_node)})"
        if isinstance(node, ast.Include):  # INCLUDE, or EXCLUDE as a negated INCLUDE
            return "false" if node.not_ else "true"
        if type(node) in _OPS:
            return self._comparison(_OPS[type(node)], node.lhs, node.rhs)
        if isinstance(node, ast.IsNull):
            q = self._property(node.lhs)
            return f"{q.sql} IS {'NOT ' if node.not_ else ''}NULL"
        if isinstance(node, ast.Between):
            q = self._property(node.lhs)
            low, high = self._value(q, node.low), self._value(q, node.high)
            return f"{q.sql} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high}"
        if isinstance(node, ast.Like):
            q = self._property(node.lhs)
            if q.kind != "text" or not isinstance(node.pattern, str):
                raise _bad("LIKE compares a text property with a text pattern")
            # CQL2's LIKE is SQL's: % and _ are the wildcards, backslash the escape.
            return f"{q.sql} {'NOT ' if node.not_ else ''}LIKE {self.sql.p(node.pattern, 'text')}"
        if isinstance(node, ast.In):
            q = self._property(node.lhs)
            if not node.sub_nodes or len(node.sub_nodes) > 1000:
                raise _bad("IN takes 1 to 1000 values")
            values = [self._literal(q, v) for v in node.sub_nodes]
            array = self.sql.p(values, _CAST[q.kind] + "[]")
            return f"{'NOT ' if node.not_ else ''}({q.sql} = ANY({array}))"
        raise _bad(f"{type(node).__name__} is not supported here; see the conformance classes for what is")

    def _comparison(self, op: str, lhs: Any, rhs: Any) -> str:
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            lhs, rhs, op = rhs, lhs, _MIRROR[op]
        q = self._property(lhs)
        if isinstance(rhs, ast.Attribute):
            other = self._property(rhs)
            numeric = {"integer", "number"}
            if q.kind != other.kind and not {q.kind, other.kind} <= numeric:
                raise _bad(f"{lhs.name} and {rhs.name} are not of the same type")
            return f"{q.sql} {op} {other.sql}"
        if q.kind == "timestamp" and isinstance(rhs, str):
            rhs = _text_instant(rhs)
        if q.kind == "timestamp" and type(rhs) is date:
            # A date compared with an instant: the instant's day (UTC).
            return f"(({q.sql}) AT TIME ZONE 'UTC')::date {op} {self.sql.p(rhs, 'date')}"
        return f"{q.sql} {op} {self._value(q, rhs)}"

    def _property(self, node: Any) -> Queryable:
        if not isinstance(node, ast.Attribute):
            raise _bad("each comparison needs a queryable property on one side")
        q = QUERYABLES.get(node.name)
        if q is None:
            raise _bad(f"{node.name!r} is not a queryable; these are: {', '.join(QUERYABLES)}")
        return q

    def _value(self, q: Queryable, node: Any) -> str:
        return self.sql.p(self._literal(q, node), _CAST[q.kind])

    def _literal(self, q: Queryable, v: Any) -> Any:
        """The literal `v` as a value of the property's type, or a 400."""
        if isinstance(v, ast.Node):
            raise _bad("only literal values may be compared with a property (no functions or arithmetic)")
        kind = q.kind
        if kind == "text" and isinstance(v, str):
            return v
        if kind in ("integer", "number") and isinstance(v, int | float) and not isinstance(v, bool):
            if not math.isfinite(v) or abs(v) > 1e300:
                raise _bad(f"{v!r} is out of range")
            return float(v)
        if kind == "boolean" and isinstance(v, bool):
            return v
        if kind == "timestamp":
            if isinstance(v, str):  # GDAL sends instants as strings
                v = _text_instant(v)
            if type(v) is date:
                return datetime.combine(v, time(), UTC)
            if isinstance(v, datetime):
                if v.tzinfo is None:
                    raise _bad("give instants with their offset, e.g. TIMESTAMP('2026-11-20T22:15:00Z')")
                try:
                    return v.astimezone(UTC)
                except OverflowError as exc:
                    raise _bad(f"{v.isoformat()} is out of range") from exc
        if kind == "uuid" and isinstance(v, str):
            try:
                return uuid.UUID(v)
            except ValueError as exc:
                raise _bad(f"{v!r} is not a UUID") from exc
        raise _bad(f"{v!r} is not a {kind} value")


# A CQL2 text string: pygeofilter's SINGLE_QUOTED token, which has no escapes and stays on one line.
_STRING = re.compile(r"'[^'\n]*'")
# The text values a filter may give that are codes of the registry's own, not words a person typed.
_CODES = frozenset({*OWNER_KINDS, *PLACEMENTS, *RECORDING, *LIVE_MODES})


def _a_code_id_or_instant(value: str) -> bool:
    if value in _CODES:
        return True
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        pass
    try:
        _text_instant(value)
        return True
    except Problem:
        return False


def filter_for_trail(text: str) -> str:
    """A filter as a search's audit record keeps it: what it asked, with every text value a person typed (a label,
    a schedule, a LIKE pattern) as '…'. The trail can never be erased and keeps no free text (decision 0012); a
    code, an id or an instant is no one's words and stays, for oversight to read what was searched. Only for a
    filter `filter_condition` took (its strings are then well formed)."""
    return _STRING.sub(lambda m: m.group(0) if _a_code_id_or_instant(m.group(0)[1:-1]) else "'…'", text)


def filter_condition(text: str, lang: str | None, sql: Sql) -> str:
    """The CQL2 text `filter` as a SQL condition over the queryables, its values bound in `sql`."""
    if lang is not None and lang not in FILTER_LANGS:
        raise invalid(
            "/query/filter-lang", f"the filter languages offered are {', '.join(FILTER_LANGS)}", status=400
        )
    if not text.strip():
        raise _bad("the filter is empty")
    if len(text) > MAX_FILTER_CHARS:
        raise _bad(f"a filter is at most {MAX_FILTER_CHARS} characters")
    if "\x00" in text:
        raise _bad("a filter cannot contain NUL characters")
    if _mixes_and_with_or(text):
        raise _bad("put parentheses around the AND or the OR conditions: (a AND b) OR c")
    try:
        node = parse_cql2_text(text)
    except (LarkError, ValueError, TypeError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _bad(f"not CQL2 text: {first[:200]}") from exc
    try:
        return _Translator(sql).condition(node)
    except RecursionError as exc:
        raise _bad("the filter is nested too deeply") from exc
