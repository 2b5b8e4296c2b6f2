"""Evidence: storage behind a small interface, the streaming multipart upload, and the chain of custody.

`EvidenceStore` is what a store must do (a cloud object store can implement it): take a stream into a staged
object of this upload's own, publish it under its SHA-256, read it back in chunks, delete it, and list what the
janitor may sweep. `LocalEvidenceStore` keeps files under `CANVASS_EVIDENCE_DIR`: written to `tmp/<uuid>.part`
while the SHA-256 is computed, then atomically renamed to a content-addressed path and made read-only. Nothing
holds a whole file in memory.

One published object may serve several evidence rows (the same bytes uploaded twice). So that no row ever points
at a deleted file, an object is published and referenced, or checked for references and deleted, only by a
transaction that holds the object's content lock (`lock_content`, a transaction-scoped advisory lock keyed by
the storage key): an upload publishes and inserts its row under it and commits before releasing it; retention
and the janitor delete only under it, after seeing no live row. A failed upload only discards its own staged
part; it never deletes a published object.

Any `OSError` of the store (a full disk, a read-only volume, a file size limit) is a storage failure: a 507
problem, never taken for the database being unavailable.

The upload body is parsed as it arrives (python-multipart's incremental parser), so each chunk of the file part
goes to the store as soon as it is read; the size cap, the media type, the part headers' size and the body's
completeness (its closing boundary) are enforced on the way. File names are cleaned for use (`clean_filename`);
the name as sent is kept beside the clean one as data only.

Every access to an item (upload, download, verify, delete) appends a custody record chained to the item's
previous record by hash, in the transaction of the access. An access that finds the file missing or altered
records an integrity failure, which the custody export reports as a broken chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
import unicodedata
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

import orjson
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api.states import Actor
from shared.errors import Problem, invalid
from shared.settings import get_settings

log = logging.getLogger("canvass.requests.evidence")
CHUNK = 1024 * 1024
MAX_FIELD_BYTES = 2000
MAX_PART_HEADER_BYTES = 16 * 1024  # one header line of a part (room for a long name, percent-encoded)
MAX_BOUNDARY = 70  # RFC 2046 §5.1.1
MAX_FILENAME_CHARS = 255
MAX_ORIGINAL_CHARS = 1000  # the name as sent, kept as data: bounded too
GENESIS = b"canvass-custody-genesis"
# Custody outcomes that say the stored file is not the evidence any more (missing, or other bytes).
INTEGRITY_FAILURES = frozenset({"file_missing", "hash_mismatch", "hash_mismatch_in_transfer"})


@dataclass(frozen=True)
class StagedObject:
    """An upload's bytes written under a name of its own, not yet published: `key` is where they will be."""

    key: str
    sha256: str
    size: int
    part: str


class EvidenceStore(Protocol):
    async def stage(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StagedObject: ...

    async def publish(self, staged: StagedObject) -> None: ...

    async def discard(self, staged: StagedObject) -> None: ...

    def open(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def remove_stale_parts(self, older_than_s: float) -> int: ...

    async def keys_older_than(self, age_s: float) -> list[str]: ...


class TooLarge(Exception):
    pass


class FileMissing(Exception):
    """The store has no object under the key."""


def storage_failure(exc: OSError) -> Problem:
    return Problem(
        507,
        f"The evidence store could not keep or read the file ({type(exc).__name__}"
        f"{': ' + os.strerror(exc.errno) if exc.errno else ''}); nothing was stored. Retry later.",
    )


@contextmanager
def _storage() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise storage_failure(exc) from exc


class LocalEvidenceStore:
    """Content-addressed files: objects/<aa>/<bb>/<sha256>, read-only once written; parts in tmp/."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("not a storage key")
        return self.root / "objects" / key[:2] / key[2:4] / key

    def _part(self, name: str) -> Path:
        return self.root / "tmp" / name

    async def stage(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StagedObject:
        name = f"{uuid.uuid4().hex}.part"
        tmp = self._part(name)
        digest = hashlib.sha256()
        size = 0
        with _storage():
            await asyncio.to_thread(tmp.parent.mkdir, parents=True, exist_ok=True)
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
                    with _storage():
                        await asyncio.to_thread(f.write, b"".join(pending))
                    pending, buffered = [], 0
            with _storage():
                if pending:
                    await asyncio.to_thread(f.write, b"".join(pending))
                await asyncio.to_thread(f.flush)
                await asyncio.to_thread(os.fsync, f.fileno())
        except BaseException:
            try:
                f.close()
            except OSError:
                pass
            tmp.unlink(missing_ok=True)
            raise
        with _storage():
            f.close()
        key = digest.hexdigest()
        return StagedObject(key, key, size, name)

    async def publish(self, staged: StagedObject) -> None:
        """Make the object exist under its key (the caller holds its content lock): the staged part is renamed
        into place, or dropped when the same bytes are already published (one copy serves both)."""
        tmp, final = self._part(staged.part), self.path(staged.key)

        def _publish() -> None:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                tmp.unlink()
                return
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)

        with _storage():
            await asyncio.to_thread(_publish)

    async def discard(self, staged: StagedObject) -> None:
        """Remove an unpublished part; never fails the caller (a part left behind is the janitor's)."""
        try:
            await asyncio.to_thread(self._part(staged.part).unlink, True)
        except OSError as exc:
            log.warning("could not remove the staged part %s: %s", staged.part, type(exc).__name__)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise FileMissing(key) from exc
        except OSError as exc:
            raise storage_failure(exc) from exc
        try:
            while True:
                with _storage():
                    chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        """Remove a published object (the caller holds its content lock and has seen no live row use it)."""
        with _storage():
            await asyncio.to_thread(self.path(key).unlink, True)

    async def remove_stale_parts(self, older_than_s: float) -> int:
        """Remove staged parts not written to for `older_than_s` (an upload that died mid-stream left them);
        the number removed. A part being written is touched by every write, so it is never this old."""

        def _sweep() -> int:
            cutoff = time.time() - older_than_s
            removed = 0
            for p in (self.root / "tmp").glob("*.part"):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
            return removed

        with _storage():
            return await asyncio.to_thread(_sweep)

    async def keys_older_than(self, age_s: float) -> list[str]:
        """The keys of published objects written more than `age_s` ago."""

        def _list() -> list[str]:
            cutoff = time.time() - age_s
            keys = []
            for p in (self.root / "objects").glob("??/??/*"):
                try:
                    if p.stat().st_mtime < cutoff and len(p.name) == 64:
                        keys.append(p.name)
                except FileNotFoundError:
                    pass
            return keys

        with _storage():
            return await asyncio.to_thread(_list)


@lru_cache
def store() -> EvidenceStore:
    return LocalEvidenceStore(get_settings().evidence_dir)


async def lock_content(session: AsyncSession, key: str) -> None:
    """Hold the object's content lock until the transaction ends: publishing, referencing and deleting an
    object are serialised by it (see the module's docstring)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('canvass-evidence:' || :k, 0))"), {"k": key}
    )


async def referenced(session: AsyncSession, key: str) -> bool:
    """Whether a live evidence row uses the object (call under its content lock)."""
    row = (
        await session.execute(
            text("SELECT 1 FROM requests.evidence WHERE storage_key = :k AND deleted_at IS NULL LIMIT 1"),
            {"k": key},
        )
    ).first()
    return row is not None


async def delete_if_unreferenced(
    session: AsyncSession, key: str, evidence_store: EvidenceStore | None = None
) -> bool:
    """In its own transaction: under the content lock, the object is deleted when no live row uses it. Whether
    it was deleted. Only retention and the janitor call this."""
    await lock_content(session, key)
    if await referenced(session, key):
        await session.rollback()
        return False
    await (evidence_store or store()).delete(key)
    await session.commit()
    return True


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
    original_filename: str | None = None
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
            self.original_filename = given[:MAX_ORIGINAL_CHARS] if given else None
            self.filename = clean_filename(given) if given else None
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
                raise invalid(f"/body/{self._part}", f"at most {MAX_FIELD_BYTES} bytes", status=413)
            self._field_bytes.extend(data[start:end])

    def _end(self) -> None:
        # Decoded once whole: a character split between two chunks of the body stays one character.
        if self._part is not None and self._part != "file":
            self.fields[self._part] = _text(bytes(self._field_bytes))
        self._field_bytes.clear()

    async def file_chunks(self, body: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive, parsing the body incrementally."""
        # The parser refuses a header line over the bound or more than 8 headers in a part (MultipartParseError).
        parser = MultipartParser(boundary, self.callbacks(), max_header_size=MAX_PART_HEADER_BYTES)  # type: ignore[arg-type]
        async for chunk in body:
            parser.write(chunk)
            while self._out:
                yield self._out.popleft()
        parser.finalize()
        if parser.state != MultipartState.END:
            # No closing boundary: the body was cut short, and what arrived is not the whole file.
            raise Problem(
                400,
                "The multipart body ended before its closing boundary (it was cut short); nothing was stored.",
                kind="bad-request",
            )
        while self._out:
            yield self._out.popleft()


def clean_filename(given: str) -> str | None:
    """A file name safe to use: its last path component (no path separators), without control or format
    characters (CR, LF, NUL, bidirectional overrides: each becomes a space) or lone surrogates (which no file
    system or database can hold: dropped), no leading dots, at most MAX_FILENAME_CHARS characters keeping the
    extension. None when nothing usable is left."""
    name = "".join(c for c in given if unicodedata.category(c) != "Cs")
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in name)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if not name:
        return None
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip()
    return name


def _ascii(c: str) -> str:
    if 0x20 <= ord(c) < 0x7F and c not in '"\\%':
        return c
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return plain if plain and all(0x20 <= ord(p) < 0x7F and p not in '"\\%' for p in plain) else "_"


def content_disposition(filename: str) -> str:
    """`attachment` naming the file for every client (RFC 6266): an ASCII `filename` fallback (accents dropped,
    other characters, quotes, backslashes and percent signs as `_`) and the exact name in RFC 8187's
    `filename*=UTF-8''…`."""
    fallback = "".join(_ascii(c) for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _text(raw: bytes) -> str:
    """A header parameter's bytes as text: browsers and most clients send UTF-8 as is (HTML's form encoding);
    bytes that are not UTF-8 are read as Latin-1, HTTP's historical charset. Never an error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_FILENAME_STAR = re.compile(r"""(?:^|;)\s*filename\*\s*=\s*"?([^";]+)"?""", re.IGNORECASE)


def _extended_filename(disposition: str) -> str | None:
    """An RFC 8187 `filename*=charset'lang'percent-encoded` parameter (some clients send it beside, or instead
    of, a plain `filename`; the option parser ignores it), or None when absent, in another charset than the two
    RFC 8187 allows (UTF-8, ISO-8859-1), or not decodable. Any other codec name is not a charset to trust: Python
    has codecs (unicode_escape, UTF-7) that make text no database can store (lone surrogates, NUL)."""
    m = _FILENAME_STAR.search(disposition)
    if m is None:
        return None
    charset, sep1, rest = m.group(1).strip().partition("'")
    _, sep2, encoded = rest.partition("'")
    encoding = _RFC8187_CHARSETS.get(charset.strip().lower())
    if not (sep1 and sep2) or encoding is None:
        return None
    try:
        return unquote(encoded, encoding=encoding, errors="strict") or None
    except UnicodeDecodeError:
        return None


_RFC8187_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1"}


def boundary_of(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise Problem(415, "Upload the file as multipart/form-data, in a part named 'file'.")
    boundary = params[b"boundary"]
    if len(boundary) > MAX_BOUNDARY:
        raise Problem(400, f"A multipart boundary has at most {MAX_BOUNDARY} characters (RFC 2046).")
    return boundary


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
    """The item's records and whether its chain is intact: every record's hash recomputes and links to the
    previous one, and no access found the file missing or altered."""
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
        if rec["outcome"] in INTEGRITY_FAILURES:
            intact = False
        prev = bytes(rec["hash"])
        rec["prev_hash"] = bytes(rec["prev_hash"]).hex()
        rec["hash"] = bytes(rec["hash"]).hex()
        out.append(rec)
    return out, intact
