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
parameter models, sequence parameters, a query parameter read under another name than its alias, generators, sync
functions, security scopes, background tasks, the Response parameter) is refused when the app is built: a LeanRoute
is lean or the service does not start.

Which dependencies a route runs: its own and its router's (the route's `dependant`), and, once it is included in
an app, the app's and the inclusion's too. FastAPI keeps the latter in the route's inclusion context, built when
the app first lists its routes, and hands it to `get_route_handler` only through a private context variable. Its
public view of them is `fastapi.routing.iter_route_contexts(app.routes)` (what FastAPI's own OpenAPI document is
built from): one `RouteContext` per included route, with the route (`original_route`) and its effective
`dependant`. So the plan is compiled from there, per app: `prepare(app)` compiles every LeanRoute's plan when the
app is built (geo_query's main module calls it, so a route that cannot be lean stops the service at start-up),
and a request in an app not prepared yet prepares it first. A route included twice in one app would have two
plans for one handler and is refused. FastAPI stays pinned to the minor version it was tested with
(pyproject.toml); tests/geo_query/test_lean_route.py proves that the plan, not FastAPI's handler, answered each
compared request, and that the app's own dependencies are in it.
"""

from __future__ import annotations

import inspect
import types
import typing
import weakref
from collections.abc import Callable, Coroutine, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_missing_field_error
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Host, Match
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)
_NO_DEFAULT = object()


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
    default: Any  # _NO_DEFAULT when it is made per request: a copy of FastAPI's `field.default`, as its solver does
    validate_default: bool


@dataclass(frozen=True, slots=True)
class _Node:
    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    subs: tuple[_Node, ...]
    query: tuple[_Param, ...]
    request_params: tuple[str, ...]  # the parameters that receive the Request (or HTTPConnection)


def _read_by_alias(field: Any) -> bool:
    """Whether FastAPI reads the parameter under its alias (or name) alone, which is what the plan reads: not under
    a validation alias of its own, alias choices, or its name as well (a model config that validates by name)."""
    chosen = field.field_info.validation_alias
    config = getattr(field, "config", None) or {}
    by_name = config.get("validate_by_name") or config.get("populate_by_name")
    return chosen in (None, field.alias) and not by_name and config.get("validate_by_alias") is not False


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
        if _model(f.field_info.annotation) or _many(f.field_info.annotation) or not _read_by_alias(f):
            return None
        info = f.field_info
        raw = info.default
        required = info.is_required()
        fixed = required or (info.default_factory is None and isinstance(raw, _IMMUTABLE))
        query.append(
            _Param(
                name=f.name,
                alias=f.alias,
                field=f,
                loc=("query", f.alias),
                required=required,
                default=raw if fixed else _NO_DEFAULT,
                validate_default=bool(info.validate_default),
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
    node: _Node, request: Request, query: dict[str, str], cache: dict[Any, Any], errors: list[Any]
) -> dict[str, Any] | None:
    """The keyword arguments of `node.call`, or None when one of its own parameters (or a sub-dependency's)
    failed validation; those errors are appended to `errors`. `query`: each query parameter's value as
    `request.query_params[name]` gives it (the last one given)."""
    values: dict[str, Any] = {}
    failed = False
    for sub in node.subs:
        sub_values = await _solve(sub, request, query, cache, errors)
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
        for p in node.query:
            value = query.get(p.alias)
            if value is None:
                if p.required:
                    errors.append(get_missing_field_error(loc=p.loc))
                    failed = True
                    continue
                value = p.default if p.default is not _NO_DEFAULT else deepcopy(p.field.default)
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


@dataclass(frozen=True, slots=True)
class _Plan:
    node: _Node
    overrides: Any  # what holds `dependency_overrides` (the app): while it has any, FastAPI's handler answers


def _plan(route: Any) -> _Plan:
    """The plan of a route (a LeanRoute, or its RouteContext in an app: the same attributes); raises when the
    route's dependencies use what this handler does not do."""
    node = _compile(route.dependant, top=True)
    if node is None:
        raise RuntimeError(
            f"{route.path}: its dependencies use what LeanRoute does not do (see services/geo_query/routing.py)"
        )
    return _Plan(node, getattr(route, "dependency_overrides_provider", None))


def prepare(app: Any) -> None:
    """Compile the plan of every LeanRoute in `app` from its effective dependencies (the app's and the
    inclusion's with its own); raises when one cannot be lean, or is included twice."""
    plans: dict[int, tuple[LeanRoute, _Plan]] = {}  # by the route's identity (routes compare by path)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, LeanRoute) or getattr(context, "body_field", None) is not None:
            continue
        if id(route) in plans:
            raise RuntimeError(f"{route.path}: a LeanRoute is included once in an app (its plan is per app)")
        plans[id(route)] = (route, _plan(context))
    for route, plan in plans.values():
        route.plans[app] = plan


class LeanRoute(APIRoute):
    """An APIRoute answered by the compiled plan of its dependencies (see the module docstring)."""

    served = (
        0  # requests answered by a plan (not by FastAPI's handler), in this process: what the tests check
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Each app's plan of this route (`prepare`); set first: APIRoute's constructor builds the handler.
        self.plans: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()
        super().__init__(*args, **kwargs)

    def get_route_handler(self) -> Handler:
        default = super().get_route_handler()
        if self.body_field is not None:
            return default
        # Refused here already, when the route is made, if its own dependencies cannot be lean; the app's are
        # added when the app is prepared.
        _plan(self)
        plans = self.plans

        async def handler(request: Request) -> Response:
            app = request.app
            plan = plans.get(app)
            if plan is None:
                prepare(app)
                plan = plans[app]
            if plan.overrides is not None and getattr(plan.overrides, "dependency_overrides", None):
                return await default(request)
            return await _answer(plan, request)

        return handler


async def _answer(plan: _Plan, request: Request) -> Response:
    """The endpoint's answer, its dependencies solved by the plan; a RequestValidationError when a parameter
    failed."""
    LeanRoute.served += 1
    errors: list[Any] = []
    # A plain dict of the parameters: QueryParams.get looks a name up through Mapping.get, raising and catching a
    # KeyError for each of the dozen parameters a search did not give.
    query = dict(request.query_params.items())
    values = await _solve(plan.node, request, query, {}, errors)
    if errors or values is None:
        raise RequestValidationError(errors, body=None)
    endpoint = plan.node.call
    response = await endpoint(**values)
    if not isinstance(response, Response):
        raise TypeError(f"{endpoint.__name__} must return a Response on a LeanRoute")
    return response


class LeanDispatch:
    """The app's lean GET routes answered from inside its middleware, without FastAPI's router.

    Why: below the app's own middleware, every request crosses FastAPI's exception, exit-stack and routing layers,
    the included router's matching (twice, through its inclusion contexts) and the route's request/response
    wrapper with its two exit stacks: about a quarter of a search's CPU in this process. A lean route needs none
    of them (its dependencies are plain coroutines: no exit stack has anything to close), so this middleware,
    installed innermost (`install_lean_dispatch`), answers a GET of a lean route's path itself: the same scope
    keys as the router sets (`route`, `endpoint`, `path_params`), the same plan as the route's handler, and the
    app's own exception handlers through Starlette's ExceptionMiddleware, as FastAPI's stack has them. Everything
    outside it (request id and access line, the HTTP policy, the body limit, CORS, gzip) runs as for every route.

    A path is dispatched only if the app's router would choose the same route for it (no earlier route matches
    it); anything else, a request under a `root_path`, and every request while `dependency_overrides` is set go
    on to FastAPI's stack. tests/geo_query/test_lean_route.py compares the answers, headers included."""

    served = 0  # requests this middleware answered, in this process: what the tests check

    def __init__(self, app: ASGIApp, *, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.routes: dict[str, tuple[LeanRoute, _Plan]] | None = None
        handlers = {k: v for k, v in fastapi_app.exception_handlers.items() if k not in (500, Exception)}
        self.answering = ExceptionMiddleware(self._respond, handlers=handlers, debug=fastapi_app.debug)

    def _table(self) -> dict[str, tuple[LeanRoute, _Plan]]:
        """Each dispatched path's route and plan: a lean GET route without path parameters, chosen by the
        router for its path (no route the router tries before it would take a GET of that path)."""
        app = self.fastapi_app
        contexts = list(iter_route_contexts(app.routes))  # every route the router tries, in its order
        table: dict[str, tuple[LeanRoute, _Plan]] = {}
        for i, context in enumerate(contexts):
            route, path, methods = context.original_route, context.path, getattr(context, "methods", None)
            if not isinstance(route, LeanRoute) or not methods or "GET" not in methods or not path:
                continue
            if getattr(context, "body_field", None) is not None or "{" in path:
                continue
            if any(_may_take(earlier, path) for earlier in contexts[:i]):
                continue
            plan = route.plans.get(app)
            if plan is None:
                prepare(app)
                plan = route.plans[app]
            table[path] = (route, plan)
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            routes = self.routes
            if routes is None:
                routes = self.routes = self._table()
            found = routes.get(scope["path"])
            if found is not None and not self.fastapi_app.dependency_overrides:
                route, plan = found
                LeanDispatch.served += 1
                scope.update(
                    route=route, endpoint=route.endpoint, path_params={}, **{"canvass.lean_plan": plan}
                )
                await self.answering(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _respond(scope: Scope, receive: Receive, send: Send) -> None:
        response = await _answer(scope["canvass.lean_plan"], Request(scope, receive, send))
        await response(scope, receive, send)


def _may_take(context: Any, path: str) -> bool:
    """Whether the router, trying `context` before a lean route, could take a GET of `path` there: the route's own
    match (its pattern and methods, a mount's prefix), and any route chosen by the Host header, which the path
    alone cannot tell."""
    if isinstance(context.original_route, Host):
        return True
    probe = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], "path_params": {}}
    match, _ = context.matches(probe)
    return bool(match == Match.FULL)


def install_lean_dispatch(app: Any) -> None:
    """Answer `app`'s lean GET routes from its innermost middleware (LeanDispatch); before its first request."""
    app.user_middleware.append(Middleware(LeanDispatch, fastapi_app=app))
