"""Flag breaking changes between a released OpenAPI contract and the current one.

Breaking, for a client written against the released contract: a path or operation removed; a parameter
removed, newly required, or narrowed; a request body field newly required or narrowed; a response field
removed or its type changed; an enum value removed from a response or request. Additions are not breaking, and
neither is a response member newly null when its schema names (`x-null-only-with`) a new optional parameter of
the operation without which it is never null: no client of the released contract sends that parameter.
A breaking change is allowed only with a new major API version (`info.version`), which also means new paths.

    .venv/bin/python scripts/contract_diff.py openapi/released/geo_query.json openapi/geo_query.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


class Contract:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node, seen = target, seen + 1
        return node

    def types(self, schema: Any) -> set[str]:
        s = self.resolve(schema) or {}
        if "anyOf" in s or "oneOf" in s:
            out: set[str] = set()
            for sub in s.get("anyOf", s.get("oneOf", [])):
                out |= self.types(sub)
            return out
        t = s.get("type")
        if isinstance(t, list):
            return set(t)
        return {t} if t else {"any"}


def _widened(old: set[str], new: set[str]) -> bool:
    """New accepts at least what old accepted (integer is within number)."""
    if "any" in new:
        return True
    return all(t in new or (t == "integer" and "number" in new) for t in old)


NULL_ONLY_WITH = "x-null-only-with"


def _compare_schema(
    old: Contract,
    new: Contract,
    a: Any,
    b: Any,
    where: str,
    direction: str,
    out: list[str],
    depth: int = 0,
    opt_in: frozenset[str] = frozenset(),
) -> None:
    """`opt_in`: the operation's new optional parameters, which no client of the released contract sends."""
    if depth > 12:
        return
    sa, sb = old.resolve(a) or {}, new.resolve(b) or {}
    ta, tb = old.types(sa), new.types(sb)
    if direction == "response" and sb.get(NULL_ONLY_WITH) in opt_in:
        tb = tb - {"null"}
    if direction == "request" and not _widened(ta, tb):
        out.append(f"{where}: accepted type narrowed from {sorted(ta)} to {sorted(tb)}")
    if direction == "response" and not _widened(tb, ta):
        out.append(f"{where}: returned type changed from {sorted(ta)} to {sorted(tb)}")
    ea, eb = set(map(str, sa.get("enum", []))), set(map(str, sb.get("enum", [])))
    if ea and eb and direction == "request" and not ea <= eb:
        out.append(f"{where}: accepted values removed: {sorted(ea - eb)}")
    props_a, props_b = sa.get("properties") or {}, sb.get("properties") or {}
    if direction == "response":
        for name in props_a:
            if name not in props_b:
                out.append(f"{where}.{name}: response field removed")
    else:
        newly_required = set(sb.get("required", [])) - set(sa.get("required", []))
        for name in sorted(newly_required):
            out.append(f"{where}.{name}: request field is newly required")
        for name in props_a:
            if name not in props_b and sb.get("additionalProperties") is False:
                out.append(f"{where}.{name}: request field no longer accepted")
    for name, pa in props_a.items():
        if name in props_b:
            _compare_schema(old, new, pa, props_b[name], f"{where}.{name}", direction, out, depth + 1, opt_in)
    if "items" in sa and "items" in sb:
        _compare_schema(old, new, sa["items"], sb["items"], f"{where}[]", direction, out, depth + 1, opt_in)


def _json_schema(op: dict[str, Any] | None, contract: Contract) -> Any:
    body = contract.resolve((op or {}).get("requestBody")) or {}
    for media, spec in (body.get("content") or {}).items():
        if "json" in media:
            return spec.get("schema")
    return None


def breaking_changes(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[str]:
    old, new = Contract(old_doc), Contract(new_doc)
    out: list[str] = []
    for path, item in old_doc.get("paths", {}).items():
        new_item = new_doc.get("paths", {}).get(path)
        if new_item is None:
            out.append(f"{path}: path removed")
            continue
        for method in METHODS:
            if method not in item:
                continue
            where = f"{method.upper()} {path}"
            op, nop = item[method], new_item.get(method)
            if nop is None:
                out.append(f"{where}: operation removed")
                continue
            params_a = {(p["in"], p["name"]): p for p in map(old.resolve, op.get("parameters", []))}
            params_b = {(p["in"], p["name"]): p for p in map(new.resolve, nop.get("parameters", []))}
            for key, pa in params_a.items():
                pb = params_b.get(key)
                if pb is None:
                    out.append(f"{where}: parameter {key[1]} removed")
                    continue
                if pb.get("required") and not pa.get("required"):
                    out.append(f"{where}: parameter {key[1]} is newly required")
                _compare_schema(
                    old, new, pa.get("schema"), pb.get("schema"), f"{where} ?{key[1]}", "request", out
                )
            for key, pb in params_b.items():
                if key not in params_a and pb.get("required"):
                    out.append(f"{where}: new required parameter {key[1]}")
            opt_in = frozenset(
                k[1] for k, pb in params_b.items() if k not in params_a and not pb.get("required")
            )
            ra, rb = _json_schema(op, old), _json_schema(nop, new)
            if ra is not None and rb is not None:
                _compare_schema(old, new, ra, rb, f"{where} body", "request", out)
            for status, resp in op.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                nresp = nop.get("responses", {}).get(status)
                if nresp is None:
                    out.append(f"{where}: response {status} removed")
                    continue
                for media, spec in (old.resolve(resp).get("content") or {}).items():
                    nspec = (new.resolve(nresp).get("content") or {}).get(media)
                    if nspec is None:
                        out.append(f"{where}: response {status} no longer offers {media}")
                        continue
                    _compare_schema(
                        old,
                        new,
                        spec.get("schema"),
                        nspec.get("schema"),
                        f"{where} {status}",
                        "response",
                        out,
                        opt_in=opt_in,
                    )
    return out


def major(doc: dict[str, Any]) -> str:
    return str(doc.get("info", {}).get("version", "0")).split(".")[0]


def main(argv: list[str]) -> int:
    old = json.loads(Path(argv[0]).read_text())
    new = json.loads(Path(argv[1]).read_text())
    changes = breaking_changes(old, new)
    for c in changes:
        print(c)
    if changes and major(old) == major(new):
        print(f"{len(changes)} breaking change(s) without a new major API version")
        return 1
    print("no breaking change" if not changes else "breaking changes under a new major version")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
