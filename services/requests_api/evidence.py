"""Evidence: storage behind a small interface, the streaming multipart upload, and the chain of custody.

`EvidenceStore` is what a store must do (a cloud object store can implement it): take a stream and keep it
under its SHA-256, read it back in chunks, delete it. `LocalEvidenceStore` keeps files under
`CANVASS_EVIDENCE_DIR`: written to a temporary file while the SHA-256 is computed, then atomically renamed to a
content-addressed path and made read-only. Nothing holds a whole file in memory.

The upload body is parsed as it arrives (python-multipart's incremental parser), so each chunk of the file part
goes to the store as soon as it is read; the size cap and the media type are enforced on the way.

Every access to an item (upload, download, verify, delete) appends a custody record chained to the item's
previous record by hash, in the transaction of the access.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import orjson
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api.states import Actor
from shared.errors import Problem, invalid
from shared.settings import get_settings

CHUNK = 1024 * 1024
MAX_FIELD_BYTES = 2000
GENESIS = b"canvass-custody-genesis"


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class EvidenceStore(Protocol):
    async def put_stream(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StoredObject: ...

    def open(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...


class TooLarge(Exception):
    pass


class LocalEvidenceStore:
    """Content-addressed files: objects/<aa>/<bb>/<sha256>, read-only once written."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("not a storage key")
        return self.root / "objects" / key[:2] / key[2:4] / key

    async def put_stream(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StoredObject:
        tmp_dir = self.root / "tmp"
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        f = await asyncio.to_thread(open, tmp, "xb")
        try:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge()
                digest.update(chunk)
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK:
                    await asyncio.to_thread(f.write, b"".join(pending))
                    pending, buffered = [], 0
            if pending:
                await asyncio.to_thread(f.write, b"".join(pending))
            await asyncio.to_thread(f.flush)
            await asyncio.to_thread(os.fsync, f.fileno())
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        f.close()
        key = digest.hexdigest()
        final = self.path(key)

        def _publish() -> None:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # the same bytes were uploaded before: one copy serves both
                tmp.unlink()
                return
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)

        await asyncio.to_thread(_publish)
        return StoredObject(key, key, size)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise Problem(410, "The evidence file is no longer stored.", kind="gone") from exc
        try:
            while True:
                chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)


@lru_cache
def store() -> EvidenceStore:
    return LocalEvidenceStore(get_settings().evidence_dir)


async def hash_of(key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in store().open(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


# --- the multipart upload --------------------------------------------------------------------------------


@dataclass
class Upload:
    """What the multipart body carried besides the file's bytes."""

    media_types: frozenset[str]
    filename: str | None = None
    media_type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    file_seen: bool = False
    _out: deque[bytes] = field(default_factory=deque)
    _headers: dict[str, str] = field(default_factory=dict)
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _part: str | None = None  # "file", a field name, or None (ignored)
    _part_bytes: int = 0
    _field_bytes: bytearray = field(default_factory=bytearray)

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers = {}
        self._part = None
        self._part_bytes = 0
        self._field_bytes.clear()

    def _header_end(self) -> None:
        # Latin-1 maps each byte to one character and back: the header's bytes pass through the option parser
        # (which works in Latin-1) unchanged, and are decoded as text only once they are split out.
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        _, params = parse_options_header(disposition)
        name = _text(params.get(b"name", b""))
        if name == "file":
            if self.file_seen:
                raise invalid("/body/file", "send one file per upload")
            media_type = (
                self._headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
            )
            if media_type not in self.media_types:
                raise Problem(
                    415,
                    f"Files of type {media_type!r} are not accepted; accepted: {', '.join(sorted(self.media_types))}.",
                )
            self.file_seen = True
            self.media_type = media_type
            raw = params.get(b"filename")
            given = _extended_filename(disposition) or (_text(raw) if raw else None)
            self.filename = (Path(given).name[:255] or None) if given else None
            self._part = "file"
        elif name in ("camera_id", "description"):
            self._part = name
            self.fields[name] = ""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self._out.append(bytes(data[start:end]))
        elif self._part is not None:
            self._part_bytes += end - start
            if self._part_bytes > MAX_FIELD_BYTES:
                raise invalid(f"/body/{self._part}", f"at most {MAX_FIELD_BYTES} bytes")
            self._field_bytes.extend(data[start:end])

    def _end(self) -> None:
        # Decoded once whole: a character split between two chunks of the body stays one character.
        if self._part is not None and self._part != "file":
            self.fields[self._part] = _text(bytes(self._field_bytes))
        self._field_bytes.clear()

    async def file_chunks(self, body: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive, parsing the body incrementally."""
        parser = MultipartParser(boundary, self.callbacks())  # type: ignore[arg-type]
        async for chunk in body:
            parser.write(chunk)
            while self._out:
                yield self._out.popleft()
        parser.finalize()
        while self._out:
            yield self._out.popleft()


def _text(raw: bytes) -> str:
    """A header parameter's bytes as text: browsers and most clients send UTF-8 as is (HTML's form encoding);
    bytes that are not UTF-8 are read as Latin-1, HTTP's historical charset. Never an error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_FILENAME_STAR = re.compile(r"""(?:^|;)\s*filename\*\s*=\s*"?([^";]+)"?""", re.IGNORECASE)


def _extended_filename(disposition: str) -> str | None:
    """An RFC 5987 `filename*=charset'lang'percent-encoded` parameter (some clients send it beside, or instead
    of, a plain `filename`; the option parser ignores it), or None when absent or not decodable."""
    m = _FILENAME_STAR.search(disposition)
    if m is None:
        return None
    charset, sep1, rest = m.group(1).strip().partition("'")
    _, sep2, encoded = rest.partition("'")
    if not (sep1 and sep2):
        return None
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict") or None
    except (LookupError, UnicodeDecodeError):
        return None


def boundary_of(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise Problem(415, "Upload the file as multipart/form-data, in a part named 'file'.")
    return params[b"boundary"]


# --- chain of custody ------------------------------------------------------------------------------------


def _canonical(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "seq": rec["seq"],
            "at": rec["at"].astimezone(UTC).isoformat(),
            "actor": rec["actor"],
            "actor_role": rec["actor_role"],
            "agency": rec["agency"],
            "action": rec["action"],
            "outcome": rec["outcome"],
            "sha256": rec["sha256"],
            "details": rec["details"],
        },
        option=orjson.OPT_SORT_KEYS,
    )


def genesis(evidence_id: uuid.UUID) -> bytes:
    return hashlib.sha256(GENESIS + evidence_id.bytes).digest()


async def append_custody(
    session: AsyncSession,
    evidence_id: uuid.UUID,
    actor: Actor,
    action: str,
    outcome: str,
    sha256: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    # One writer at a time extends an item's chain: the evidence row's lock is held until commit.
    await session.execute(
        text("SELECT 1 FROM requests.evidence WHERE id = :id FOR UPDATE"), {"id": evidence_id}
    )
    last = (
        await session.execute(
            text("SELECT seq, hash FROM requests.custody WHERE evidence_id = :id ORDER BY seq DESC LIMIT 1"),
            {"id": evidence_id},
        )
    ).first()
    rec: dict[str, Any] = {
        "seq": (last[0] + 1) if last else 1,
        "at": datetime.now(UTC),
        "actor": actor.sub,
        "actor_role": actor.role,
        "agency": actor.agency,
        "action": action,
        "outcome": outcome,
        "sha256": sha256,
        "details": details or {},
    }
    prev = bytes(last[1]) if last else genesis(evidence_id)
    digest = hashlib.sha256(prev + _canonical(rec)).digest()
    await session.execute(
        text(
            "INSERT INTO requests.custody (evidence_id, seq, at, actor, actor_role, agency, action, outcome, sha256,"
            " details, prev_hash, hash) VALUES (:eid, :seq, :at, :actor, :role, :agency, :action, :outcome,"
            " :sha256, CAST(:details AS jsonb), :prev, :hash)"
        ),
        {
            "eid": evidence_id,
            "seq": rec["seq"],
            "at": rec["at"],
            "actor": rec["actor"],
            "role": rec["actor_role"],
            "agency": rec["agency"],
            "action": action,
            "outcome": outcome,
            "sha256": sha256,
            "details": orjson.dumps(rec["details"]).decode(),
            "prev": prev,
            "hash": digest,
        },
    )


async def custody_records(session: AsyncSession, evidence_id: uuid.UUID) -> tuple[list[dict[str, Any]], bool]:
    rows = (
        (
            await session.execute(
                text(
                    "SELECT seq, at, actor, actor_role, agency, action, outcome, sha256, details, prev_hash, hash"
                    " FROM requests.custody WHERE evidence_id = :id ORDER BY seq"
                ),
                {"id": evidence_id},
            )
        )
        .mappings()
        .all()
    )
    intact = True
    prev = genesis(evidence_id)
    out = []
    for i, r in enumerate(rows, start=1):
        rec = dict(r)
        details = rec["details"] if isinstance(rec["details"], dict) else orjson.loads(rec["details"])
        rec["details"] = details
        if rec["seq"] != i or bytes(rec["prev_hash"]) != prev:
            intact = False
        if hashlib.sha256(bytes(rec["prev_hash"]) + _canonical(rec)).digest() != bytes(rec["hash"]):
            intact = False
        prev = bytes(rec["hash"])
        rec["prev_hash"] = bytes(rec["prev_hash"]).hex()
        rec["hash"] = bytes(rec["hash"]).hex()
        out.append(rec)
    return out, intact
