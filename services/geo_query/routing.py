"""A lean request handler for geo_query's search routes: the same dependencies, parameters and errors as FastAPI's,
solved by a plan compiled once per route instead of FastAPI's general solver.

Why: a search runs a dozen small dependencies (the bearer, the principal, the caller, the point, the filters, the
case reference, the unknown-parameter check) over about fifteen query parameters. FastAPI's solver re-inspects each
dependency and parameter on every request (sequence checks, cache keys, scope look-ups, parameter models), which
was the largest share of geo_query's own CPU per search. The route declarations are unchanged, so the OpenAPI
document (the contract) is FastAPI's as before.

What is kept exactly: the order in which dependencies run (sub-dependencies first, depth first, in declaration
order), each dependency called once per request, a dependency not called when one of its own parameters failed,
every parameter validated by FastAPI's own field (the same pydantic errors and `loc`), defaults for absent
parameters, and one RequestValidationError with every error once all dependencies ran. The endpoint must return a
Response (every search does: its body is built in PostgreSQL), so there is no response-model serialisation.

A route with a body (POST) is served by FastAPI's own handler, as is any request while `app.dependency_overrides`
is set. Any other route whose dependencies use what this handler does not do (path, header or cookie parameters,
parameter models, sequence parameters, generators, sync functions, security scopes, background tasks, the
Response parameter) is refused when the app is built: a LeanRoute is lean or the service does not start.

FastAPI's public API offers no way to run a route's declared dependencies other than its own solver, and an
included route's dependencies (the app's among them) are only visible through its inclusion context, which
FastAPI passes to `get_route_handler` in a context variable of `fastapi.routing`. That variable is the one
private name this module relies on; FastAPI is pinned to the minor version it was tested with (pyproject.toml),
and a FastAPI without it stops the service at start-up instead of silently skipping the app's dependencies.
tests/geo_query/test_lean_route.py proves that the plan, not FastAPI's handler, answered each compared request.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Coroutine, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_missing_field_error
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)
_NO_DEFAULT = object()
# How FastAPI hands an included route its inclusion context (see the module docstring).
_ROUTE_CONTEXT: Any = getattr(fastapi.routing, "_effective_route_context_var", None)
if _ROUTE_CONTEXT is None:
    raise RuntimeError(
        f"FastAPI {fastapi.__version__} has no inclusion context for routes: geo_query's LeanRoute was written for"
        " the version pinned in pyproject.toml and cannot see the app's dependencies with this one"
    )


def _many(annotation: Any) -> bool:
    """Whether a parameter takes several values (a list, set, tuple or sequence, alone or in a union)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_many(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _many(typing.get_args(annotation)[0])
    kind = origin or annotation
    return (
        isinstance(kind, type)
        and not issubclass(kind, (str, bytes))
        and issubclass(kind, (Sequence, set, frozenset))
    )


def _model(annotation: Any) -> bool:
    """Whether a parameter is a model of several query parameters (FastAPI's parameter models)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    alias: str
    field: Any  # FastAPI's field of the parameter: validates it exactly as FastAPI's handler does
    loc: tuple[str, str]
    required: bool
    default: Any  # _NO_DEFAULT when it must be deep-copied per request
    raw_default: Any
    validate_default: bool


@dataclass(frozen=True, slots=True)
class _Node:
    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    subs: tuple[_Node, ...]
    query: tuple[_Param, ...]
    request_params: tuple[str, ...]  # the parameters that receive the Request (or HTTPConnection)


def _function(call: Any) -> Any:
    """The function that runs when `call` is called (a callable instance's class `__call__`)."""
    return call if inspect.isroutine(call) else type(call).__call__


def _compile(dep: Dependant, *, top: bool = False) -> _Node | None:
    """The plan of one dependant, or None when it uses something this handler does not do."""
    if dep.call is None or not inspect.iscoroutinefunction(_function(dep.call)):
        return None
    if dep.path_params or dep.header_params or dep.cookie_params or dep.body_params:
        return None
    if (
        dep.websocket_param_name
        or dep.response_param_name
        or dep.background_tasks_param_name
        or dep.security_scopes_param_name
        or dep.own_oauth_scopes
        or dep.parent_oauth_scopes
        or (dep.scope is not None and not top)
        or dep.concurrency is not None
    ):
        return None
    query: list[_Param] = []
    for f in dep.query_params:
        if _model(f.field_info.annotation) or _many(f.field_info.annotation):
            return None
        raw = f.field_info.default
        required = f.field_info.is_required()
        query.append(
            _Param(
                name=f.name,
                alias=f.alias,
                field=f,
                loc=("query", f.alias),
                required=required,
                default=raw if required or isinstance(raw, _IMMUTABLE) else _NO_DEFAULT,
                raw_default=raw,
                validate_default=bool(f.field_info.validate_default),
            )
        )
    subs: list[_Node] = []
    for sub in dep.dependencies:
        node = _compile(sub)
        if node is None:
            return None
        subs.append(node)
    request_params = tuple(n for n in (dep.request_param_name, dep.http_connection_param_name) if n)
    return _Node(dep.call, dep.name, dep.use_cache, tuple(subs), tuple(query), request_params)


async def _solve(
    node: _Node, request: Request, cache: dict[Any, Any], errors: list[Any]
) -> dict[str, Any] | None:
    """The keyword arguments of `node.call`, or None when one of its own parameters (or a sub-dependency's)
    failed validation; those errors are appended to `errors`."""
    values: dict[str, Any] = {}
    failed = False
    for sub in node.subs:
        sub_values = await _solve(sub, request, cache, errors)
        if sub_values is None:
            failed = True
            continue
        if sub.use_cache and sub.call in cache:
            solved = cache[sub.call]
        else:
            solved = await sub.call(**sub_values)
            cache.setdefault(sub.call, solved)
        if sub.name is not None:
            values[sub.name] = solved
    if node.query:
        params = request.query_params
        for p in node.query:
            value = params.get(p.alias)
            if value is None:
                if p.required:
                    errors.append(get_missing_field_error(loc=p.loc))
                    failed = True
                    continue
                value = p.default if p.default is not _NO_DEFAULT else deepcopy(p.raw_default)
                if not p.validate_default:
                    values[p.name] = value
                    continue
            v, errs = p.field.validate(value, values, loc=p.loc)
            if errs:
                errors.extend(errs)
                failed = True
            else:
                values[p.name] = v
    for name in node.request_params:
        values[name] = request
    return None if failed else values


class LeanRoute(APIRoute):
    """An APIRoute answered by the compiled plan of its dependencies (see the module docstring)."""

    served = (
        0  # requests answered by a plan (not by FastAPI's handler), in this process: what the tests check
    )

    def get_route_handler(self) -> Handler:
        default = super().get_route_handler()
        # Included in an app, a route is served through its "effective" context (the router's and the
        # inclusion's dependencies added): FastAPI builds that handler with the context set, as we read it here.
        route: Any = self
        effective = _ROUTE_CONTEXT.get()
        if effective is not None and getattr(effective, "original_route", None) is self:
            route = effective
        if getattr(route, "body_field", None) is not None:
            return default
        dependant: Dependant = route.dependant
        plan = _compile(dependant, top=True)
        if plan is None:
            raise RuntimeError(
                f"{self.path}: its dependencies use what LeanRoute does not do (see services/geo_query/routing.py)"
            )
        overrides = getattr(route, "dependency_overrides_provider", None)
        endpoint = plan.call

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await default(request)
            LeanRoute.served += 1
            errors: list[Any] = []
            values = await _solve(plan, request, {}, errors)
            if errors or values is None:
                raise RequestValidationError(errors, body=None)
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{endpoint.__name__} must return a Response on a LeanRoute")
            return response

        return handler
