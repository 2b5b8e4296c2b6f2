"""The base of every request body model: unknown members are refused, and booleans and numbers are strict JSON
types — `"true"` or `1` is not a boolean, `"3"` or `true` not a number (an integer is a number, and a number
without a fraction, `3.0`, is an integer) — where pydantic would otherwise convert them, so a client's type mistake
is a 422 rather than a guess."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict

_SCALARS = (bool, int, float)


def _scalar(annotation: Any) -> bool:
    """bool, int or float, alone or with None (the optional fields of a patch)."""
    if annotation in _SCALARS:
        return True
    args = typing.get_args(annotation)
    return (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
        and any(a in _SCALARS for a in args)
        and all(a in _SCALARS or a is type(None) for a in args)
    )


def _integer(annotation: Any) -> bool:
    return annotation is int or int in typing.get_args(annotation)


def _integral_number(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema's `integer` says so too); 3.5 stays a float,
    # which the strict integer then refuses.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# For an integer member declared inside a constrained or optional annotation (which StrictInput cannot see):
# `Annotated[int, Strict(), Field(ge=1), INTEGRAL]` — last, so the constraints stay on the integer's JSON Schema.
INTEGRAL = BeforeValidator(_integral_number)


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Each scalar field of a subclass gets pydantic's Strict() constraint, the same as declaring it
        # StrictBool/StrictInt/StrictFloat: its JSON Schema (the contract) is unchanged.
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            if not _scalar(field.annotation):
                continue
            if not any(isinstance(m, Strict) for m in field.metadata):
                field.metadata.append(Strict())
                changed = True
            # Outermost, so the constraints stay on the integer (and in its JSON Schema).
            if _integer(field.annotation) and not any(m is INTEGRAL for m in field.metadata):
                field.metadata.append(INTEGRAL)
                changed = True
        if changed:
            cls.model_rebuild(force=True)


def not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its `null` branch: for what may be left out but not sent as `null` (an optional header,
    a patch member that cannot be cleared), whose `X | None` annotation means "absent" to the code."""
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" not in schema or len(branches) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**branches[0], **rest}
