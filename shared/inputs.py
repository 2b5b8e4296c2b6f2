"""The base of every request body model: unknown members are refused, and booleans and numbers are strict JSON
types — `"true"` or `1` is not a boolean, `"3"` or `true` not a number (an integer is a number) — where pydantic
would otherwise convert them, so a client's type mistake is a 422 rather than a guess."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Strict

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


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Each scalar field of a subclass gets pydantic's Strict() constraint, the same as declaring it
        # StrictBool/StrictInt/StrictFloat: its JSON Schema (the contract) is unchanged.
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            if _scalar(field.annotation) and not any(isinstance(m, Strict) for m in field.metadata):
                field.metadata.append(Strict())
                changed = True
        if changed:
            cls.model_rebuild(force=True)
