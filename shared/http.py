"""The HTTP rules every operation of every service follows, derived from each route's own declaration (FastAPI's
dependant) so that a route added tomorrow follows them without a line of its own:

- the query: a parameter the operation does not declare, or a single-valued one given twice, is a 400 problem
  (a misspelt filter must not silently widen a search; `lon=-87.9&lon=0` must not search at longitude 0);
- the body's media type: a route whose body FastAPI parses (JSON, or a form) refuses any other media type with a
  415 problem (routes that read their body themselves, imports and uploads, check their own formats);
- the methods: `HEAD` is answered wherever `GET` is (as GET without its body), and a 405 lists in `Allow` every
  method of the path, not only those of the first route that matched it;
- the answer's headers: `X-Content-Type-Options: nosniff` on every response, and `Cache-Control: no-store` on
  every answer to an authenticated or owner operation (one that declares a bearer, or was sent a credential)
  unless the route set its own Cache-Control;
- an unexpected exception becomes its problem here, inside the request-id middleware, so a 5xx carries its
  `X-Request-ID` like any other answer.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Sequence, Set
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import FastAPI, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Problem, invalid, unexpected_problem

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
BODY_METHODS = {"POST", "PUT", "PATCH"}


def takes_many(annotation: Any) -> bool:
    """Whether a query parameter of this annotation collects every value given (`list[str]`, `tuple[...]`,
    `set[...]`, optional or `Annotated` or not), as FastAPI reads such a parameter; text is one value."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return takes_many(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return any(takes_many(arg) for arg in get_args(annotation))
    kind = origin or annotation
    return (
        isinstance(kind, type)
        and issubclass(kind, (Sequence, Set))
        and not issubclass(kind, (str, bytes, bytearray))
    )


class RoutePolicy:
    """What one route declares: its query parameters (and which take one value), its body's media types, and
    whether it reads a bearer credential."""

    __slots__ = ("form_body", "json_body", "query", "secured", "single")

    def __init__(self, route: APIRoute) -> None:
        self.query: frozenset[str] = frozenset()
        self.single: frozenset[str] = frozenset()
        query: set[str] = set()
        single: set[str] = set()
        self.secured = False
        self._walk(route.dependant, query, single)
        self.query, self.single = frozenset(query), frozenset(single)
        field = route.body_field
        self.form_body = field is not None and isinstance(field.field_info, params.Form)
        self.json_body = field is not None and not self.form_body

    def _walk(self, dependant: Dependant, query: set[str], single: set[str]) -> None:
        if isinstance(dependant.call, SecurityBase):
            self.secured = True
        for f in dependant.query_params:
            annotation = f.field_info.annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            fields = (
                [(v.alias or k, v.annotation) for k, v in model.model_fields.items()]
                if model is not None
                else [(f.alias, annotation)]
            )
            for name, ann in fields:
                query.add(name)
                if not takes_many(ann):
                    single.add(name)
        for sub in dependant.dependencies:
            self._walk(sub, query, single)


_policies: dict[int, RoutePolicy] = {}


def policy_of(route: APIRoute) -> RoutePolicy:
    found = _policies.get(id(route))
    if found is None:
        found = _policies[id(route)] = RoutePolicy(route)
    return found


def _media_type(value: str | None) -> str:
    if not value:
        return ""
    message = email.message.Message()
    message["content-type"] = value
    return message.get_content_type()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def request_rules(request: Request) -> None:
    """The query and media-type rules above, as the first dependency of every route (see `create_app`)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    policy = policy_of(route)
    if request.scope.get("query_string"):
        seen: set[str] = set()
        for name, _ in request.query_params.multi_items():
            if name not in policy.query:
                accepted = ", ".join(sorted(policy.query)) or "none"
                raise invalid(
                    f"/query/{name}",
                    f"unknown parameter; this operation accepts: {accepted}",
                    status=400,
                    code="extra_forbidden",
                )
            if name in seen and name in policy.single:
                raise invalid(
                    f"/query/{name}", "given more than once; it takes one value", status=400, code="repeated"
                )
            seen.add(name)
    if (policy.json_body or policy.form_body) and request.method in BODY_METHODS and _has_body(request):
        media_type = _media_type(request.headers.get("content-type"))
        ok = (
            media_type in ("multipart/form-data", "application/x-www-form-urlencoded")
            if policy.form_body
            else _is_json(media_type)
        )
        if not ok:
            wanted = "multipart/form-data" if policy.form_body else "application/json"
            raise Problem(
                415,
                f"This operation takes {wanted}, not {media_type or 'a body without a Content-Type'}.",
                headers={"Accept-Post" if request.method == "POST" else "Accept-Patch": wanted}
                if request.method in ("POST", "PATCH")
                else None,
            )


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


# ------------------------------------------------------------------------------------------------ the methods


def _path_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some operation answers on `path` (HEAD wherever GET), from the app's published contract."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "_methods_by_path", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in item if m in ("get", "put", "post", "patch", "delete")}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((_path_regex(template), frozenset(methods)))
        app.state._methods_by_path = table
    out: set[str] = set()
    for regex, answered in table:
        if regex.match(path):
            out |= answered
    return sorted(out)


# ---------------------------------------------------------------------------------------- the answer's headers


class HttpPolicyMiddleware:
    """HEAD as GET without the body; nosniff and the no-store default on every answer; unexpected exceptions
    turned into their problem (inside the request-id middleware, so the answer carries its X-Request-ID)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = dict(scope, method="GET")
        credentialed = any(name == b"authorization" for name, _ in scope.get("headers") or ())
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers") or [])
                names = {name.lower() for name, _ in headers}
                headers.append(NOSNIFF)
                if b"cache-control" not in names and (credentialed or _secured(scope)):
                    headers.append(NO_STORE)
                message = dict(message, headers=headers)
            elif head and message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception as exc:
            if started:
                raise
            method, path = scope.get("method", ""), scope.get("path", "")
            await unexpected_problem(exc, method, path)(scope, receive, _send)


def _secured(scope: Scope) -> bool:
    route: Any = scope.get("route")
    return isinstance(route, APIRoute) and policy_of(route).secured
