"""The formats an import reads, and their CRSs: streaming readers of a GeoJSON FeatureCollection, GeoJSON Text
Sequences (RFC 8142, or one Feature per line) and CSV, read from the spooled upload a feature at a time, so
memory stays flat however large the file is; and the CRS of the input (the `crs` parameter or a legacy GeoJSON
`crs` member).

A reader yields `RawFeature`s in file order. A feature that cannot be read on its own (a bad record in a
sequence, a CSV row with the wrong number of cells, NaN in a FeatureCollection) is yielded with its error and
the reader goes on; a file that cannot be read any further (not UTF-8, malformed JSON between features, a CSV
without the columns it needs) raises `ImportInputError`, which fails the job with that message.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from services.registry_api.imports.jobs import JobFailed

GEOJSON = "application/geo+json"
GEOJSON_SEQ = "application/geo+json-seq"
CSV = "text/csv"
MEDIA_TYPES = {
    GEOJSON: GEOJSON,
    "application/json": GEOJSON,
    GEOJSON_SEQ: GEOJSON_SEQ,
    "application/json-seq": GEOJSON_SEQ,
    CSV: CSV,
}
MAX_FEATURE_BYTES = 1 << 20  # one feature (or CSV row); registrations are small
READ_SIZE = 1 << 20
WGS84_NAMES = {"CRS84", "OGC:CRS84", "EPSG:4326", "4326"}


class ImportInputError(Exception):
    """The upload cannot be read any further; the message says where and why."""


@dataclass(slots=True)
class RawFeature:
    ordinal: int  # 0-based position of the feature (or data row) in the upload
    line: int | None  # 1-based line where it starts
    properties: dict[str, Any] | None = None
    geometry: Any = None
    feature_id: Any = None
    error: tuple[str, str] | None = None  # (pointer, reason) when it could not be read


def media_type(content_type: str | None) -> str | None:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return MEDIA_TYPES.get(base)


# --- CRS -------------------------------------------------------------------------------------------------

_EPSG_URI = re.compile(
    r"^(?:https?://www\.opengis\.net/def/crs/EPSG/[^/]+/|urn:ogc:def:crs:EPSG:[^:]*:)(\d+)$"
)
_CRS84_URI = re.compile(
    r"^(?:https?://www\.opengis\.net/def/crs/OGC/[^/]+/|urn:ogc:def:crs:OGC:[^:]*:)CRS84$"
)


def parse_crs(value: str) -> CRS | None:
    """A CRS from an EPSG code ("2263", "EPSG:2263") or an OGC URI/URN; None for WGS84 longitude/latitude.
    Raises ValueError with a message a person can act on."""
    v = value.strip()
    if v.upper() in WGS84_NAMES or _CRS84_URI.match(v):
        return None
    m = _EPSG_URI.match(v)
    code = m.group(1) if m else (v[5:] if v.upper().startswith("EPSG:") else v)
    if not code.isdigit():
        raise ValueError(
            f"'{value}' is not a CRS this service reads: give an EPSG code (e.g. 2263 or EPSG:2263) or an OGC "
            "URI (e.g. http://www.opengis.net/def/crs/EPSG/0/2263)"
        )
    try:
        crs = CRS.from_epsg(int(code))
    except CRSError as exc:
        raise ValueError(f"EPSG:{code} is not a known coordinate reference system") from exc
    if crs.is_vertical:
        raise ValueError(f"EPSG:{code} is not a horizontal coordinate reference system")
    if crs.equals(CRS.from_epsg(4326)):
        return None
    return crs


def legacy_crs_name(member: Any) -> str:
    """The CRS name of a pre-RFC 7946 GeoJSON `crs` member ({"type": "name", "properties": {"name": ...}})."""
    if isinstance(member, dict) and member.get("type") == "name":
        name = (member.get("properties") or {}).get("name")
        if isinstance(name, str):
            return name
    raise ImportInputError(
        'the FeatureCollection\'s \'crs\' member is not a named CRS ({"type": "name", "properties": '
        '{"name": "urn:ogc:def:crs:EPSG::2263"}}); remove it and pass ?crs= instead'
    )


class Reprojection:
    """Transforms the chunk's positions to WGS84 longitude/latitude in one vectorised call."""

    def __init__(self, crs: CRS | None) -> None:
        self.crs = crs
        self.transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True) if crs is not None else None

    def __call__(self, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
        if self.transformer is None or not xs:
            return xs, ys
        lon, lat = self.transformer.transform(xs, ys, errcheck=False)
        return list(lon), list(lat)


# --- GeoJSON FeatureCollection ---------------------------------------------------------------------------


class FeatureCollectionReader:
    """Walks `{"type": "FeatureCollection", ..., "features": [...]}` member by member with the standard
    library's C scanner (`raw_decode`) over a sliding text buffer: one feature in memory at a time."""

    def __init__(self, f: IO[bytes], max_feature_bytes: int = MAX_FEATURE_BYTES) -> None:
        self.f = f
        self.max = max_feature_bytes
        self.utf8 = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.crs_member: str | None = None
        self.saw_constant = False
        self.decoder = json.JSONDecoder(parse_constant=self._constant)

    def _constant(self, name: str) -> None:
        self.saw_constant = True

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(READ_SIZE)
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise ImportInputError(f"line {self.line}: the upload is not UTF-8 ({exc.reason})") from exc
        if not data:
            self.eof = True
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += text
        return True

    def _advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def _skip_ws(self) -> str:
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in " \t\r\n":
                if self.buf[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < n:
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, chars: str, what: str) -> str:
        c = self._skip_ws()
        if not c or c not in chars:
            found = f"'{c}'" if c else "the end of the upload"
            raise ImportInputError(f"line {self.line}: malformed JSON: expected {what}, found {found}")
        self.pos += 1
        return c

    def _value(self) -> tuple[Any, int]:
        """The next JSON value and the line it starts on."""
        self._skip_ws()
        start_line = self.line
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > self.max:
                    raise ImportInputError(
                        f"line {start_line}: a feature larger than {self.max:,} bytes, or malformed JSON: {exc.msg}"
                    ) from exc
                if self._fill():
                    continue
                raise ImportInputError(
                    f"line {exc.lineno + start_line - 1}: malformed JSON: {exc.msg}"
                ) from exc
            if end == len(self.buf) and not self.eof and self._fill():
                continue  # a number at the end of the buffer may go on in the next block
            self._advance(end)
            return value, start_line

    def __iter__(self) -> Iterator[RawFeature]:
        self._fill()
        self._expect("{", "a GeoJSON FeatureCollection object")
        ordinal = 0
        seen_features = False
        if self._skip_ws() == "}":
            raise ImportInputError("the FeatureCollection has no 'features' member")
        while True:
            key, _ = self._value()
            if not isinstance(key, str):
                raise ImportInputError(f"line {self.line}: malformed JSON: expected a member name")
            self._expect(":", "':'")
            if key == "features":
                seen_features = True
                self._expect("[", "the array of features")
                if self._skip_ws() == "]":
                    self.pos += 1
                else:
                    while True:
                        self.saw_constant = False
                        fast = self._line_feature()
                        if fast is not None:
                            value, line, comma = fast
                            yield feature_from_json(ordinal, line, value)
                            ordinal += 1
                            if comma:
                                continue
                        else:
                            feature, line = self._value()
                            yield self._feature(ordinal, line, feature)
                            ordinal += 1
                        if self._expect(",]", "',' or ']' after a feature") == "]":
                            break
            else:
                value, line = self._value()
                if key == "type" and value != "FeatureCollection":
                    raise ImportInputError(
                        f"line {line}: the upload is a GeoJSON {value!r}, not a FeatureCollection "
                        "(send single features as application/geo+json-seq)"
                    )
                if key == "crs":
                    self.crs_member = legacy_crs_name(value)
            if self._expect(",}", "',' or '}'") == "}":
                break
        if self._skip_ws():
            raise ImportInputError(f"line {self.line}: unexpected data after the FeatureCollection")
        if not seen_features:
            raise ImportInputError("the FeatureCollection has no 'features' member")

    def _line_feature(self) -> tuple[Any, int, bool] | None:
        """The common layout, one feature per line (`{...},`), read with orjson: the feature, its line and
        whether its comma was consumed. None when the line is anything else (several features, a feature
        over several lines, NaN, an integer orjson does not take, ...): the exact reader then takes it."""
        if self._skip_ws() != "{":
            return None
        nl = self.buf.find("\n", self.pos)
        if nl < 0:
            return None
        text = self.buf[self.pos : nl].rstrip()
        comma = text.endswith(",")
        try:
            value = orjson.loads(text[:-1] if comma else text)
        except orjson.JSONDecodeError:
            return None
        line = self.line
        self.pos = nl if comma else self.pos + len(text)
        return value, line, comma

    def _feature(self, ordinal: int, line: int, value: Any) -> RawFeature:
        if self.saw_constant:
            return RawFeature(ordinal, line, error=("", "NaN and Infinity are not JSON numbers (RFC 8259)"))
        return feature_from_json(ordinal, line, value)


def feature_from_json(ordinal: int, line: int | None, value: Any) -> RawFeature:
    if not isinstance(value, dict) or value.get("type") != "Feature":
        return RawFeature(
            ordinal, line, error=("", 'each feature is a GeoJSON object with "type": "Feature"')
        )
    props = value.get("properties")
    if props is not None and not isinstance(props, dict):
        return RawFeature(ordinal, line, error=("/properties", "properties must be an object"))
    return RawFeature(ordinal, line, props, value.get("geometry"), value.get("id"))


# --- GeoJSON Text Sequences ------------------------------------------------------------------------------

RS = 0x1E


def read_sequence(f: IO[bytes], max_record_bytes: int = MAX_FEATURE_BYTES) -> Iterator[RawFeature]:
    """RFC 8142: each record is RS, a JSON text, LF. Without any RS the upload is read as one Feature per line
    (newline-delimited GeoJSON). A record that does not parse is reported and skipped, as RFC 8142 says. A
    UTF-8 byte order mark before the first record is dropped, as the other readers drop it."""
    buf = b""
    eof = False
    first = True
    sep = RS
    ordinal = 0
    line = 1
    skipping = False  # inside an over-long record: discard up to the next separator
    while True:
        cut = buf.find(sep)
        if cut < 0 and not eof:
            if len(buf) > max_record_bytes:
                if not skipping:
                    yield RawFeature(
                        ordinal, line, error=("", f"a record larger than {max_record_bytes:,} bytes")
                    )
                    ordinal += 1
                    skipping = True
                line += buf.count(b"\n")
                buf = b""
            data = f.read(READ_SIZE)
            if not data:
                eof = True
            buf += data
            if first and buf.startswith(codecs.BOM_UTF8):
                # Editors on Windows write one: left in, it would hide the first RS (and so every record)
                # or spoil the first line's JSON.
                buf = buf[len(codecs.BOM_UTF8) :]
            if first and buf.lstrip():
                first = False
                if buf.lstrip()[0] != RS:
                    sep = 0x0A
            continue
        record = buf[:cut] if cut >= 0 else buf
        buf = buf[cut + 1 :] if cut >= 0 else b""
        start = line
        line += record.count(b"\n") + (1 if sep == 0x0A and cut >= 0 else 0)
        if skipping:
            skipping = False
        elif record.strip():
            if len(record) > max_record_bytes:
                yield RawFeature(
                    ordinal, start, error=("", f"a record larger than {max_record_bytes:,} bytes")
                )
            else:
                body = record.lstrip()
                start += record[: len(record) - len(body)].count(b"\n")
                try:
                    value = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    yield RawFeature(ordinal, start, error=("", f"not a JSON text: {exc}"))
                else:
                    yield feature_from_json(ordinal, start, value)
            ordinal += 1
        if cut < 0 and eof:
            return


# --- CSV -------------------------------------------------------------------------------------------------

_INT = re.compile(r"^[+-]?\d{1,9}$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TRUE = {"true", "yes", "1", "t", "y"}
_FALSE = {"false", "no", "0", "f", "n"}
CSV_INT = {"direction_deg", "fov_deg", "retention_days"}
CSV_FLOAT = {"range_m"}
CSV_BOOL = {"shares_history"}
CSV_LIST = {"covers", "share_with"}  # values separated by ';'


def csv_value(column: str, cell: str) -> Any:
    """A cell typed as the single registration's member expects, when it reads as that type; otherwise the
    text itself, which the registration's validation then refuses with its usual message."""
    if column in CSV_INT and _INT.match(cell):
        return int(cell)
    if column in CSV_FLOAT and _FLOAT.match(cell):
        return float(cell)
    if column in CSV_BOOL:
        low = cell.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    if column in CSV_LIST:
        return [part.strip() for part in cell.split(";") if part.strip()]
    return cell


def coordinate(cell: str) -> float | None:
    return float(cell) if _FLOAT.match(cell.strip()) else None


def read_csv(f: IO[bytes], known_columns: frozenset[str], *, projected: bool) -> Iterator[RawFeature]:
    text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="", errors="strict")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportInputError("the CSV upload is empty: it needs a header row")
        columns = [h.strip().lower() for h in header]
        if "x" in columns or "y" in columns:
            xcol, ycol = "x", "y"
        else:
            xcol, ycol = "lon", "lat"
        needed = [c for c in ("external_id", xcol, ycol) if c not in columns]
        if needed:
            raise ImportInputError(
                f"the CSV header lacks the column(s) {', '.join(needed)} (coordinates are lon/lat, or x/y with "
                "?crs=)"
            )
        if xcol == "x" and not projected:
            raise ImportInputError("x/y columns need the CRS they are in: pass ?crs= (e.g. ?crs=EPSG:2263)")
        unknown = sorted(set(columns) - known_columns - {xcol, ycol})
        if unknown:
            raise ImportInputError(
                f"the CSV header has column(s) no registration has: {', '.join(unknown)}; the columns are "
                f"{', '.join(sorted(known_columns | {'lon', 'lat', 'x', 'y'}))}"
            )
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ImportInputError(f"the CSV header repeats the column(s) {', '.join(dupes)}")
        xi, yi = columns.index(xcol), columns.index(ycol)
        ordinal = 0
        start = reader.line_num + 1
        for row in reader:
            line = start
            start = reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(columns):
                yield RawFeature(
                    ordinal, line, error=("", f"the row has {len(row)} cells, the header {len(columns)}")
                )
                ordinal += 1
                continue
            props = {c: csv_value(c, v.strip()) for c, v in zip(columns, row, strict=True) if v.strip()}
            x, y = coordinate(row[xi]), coordinate(row[yi])
            props.pop(xcol, None)
            props.pop(ycol, None)
            if x is None or y is None:
                bad = xcol if x is None else ycol
                yield RawFeature(ordinal, line, props, error=(f"/{bad}", "not a number"))
            else:
                yield RawFeature(ordinal, line, props, {"type": "Point", "coordinates": [x, y]})
            ordinal += 1
    except csv.Error as exc:
        raise ImportInputError(f"line {reader.line_num}: malformed CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ImportInputError(
            f"near line {reader.line_num}: the upload is not UTF-8 ({exc.reason})"
        ) from exc
    finally:
        text.detach()


# --- a job's reader --------------------------------------------------------------------------------------


def parse_job_crs(name: str | None) -> CRS | None:
    """The CRS a job was asked for (or its FeatureCollection names); a name this service cannot read fails the
    job."""
    if name is None:
        return None
    try:
        return parse_crs(name)
    except ValueError as exc:
        raise JobFailed(f"{exc}; nothing was written") from exc


def same_crs(a: str, b: str) -> bool:
    def key(name: str) -> str:
        crs = parse_job_crs(name)
        return crs.to_wkt() if crs is not None else "WGS84"

    return key(a) == key(b)


class TrackingCollection(FeatureCollectionReader):
    """A FeatureCollection reader that remembers whether its crs member came before the first feature."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__(f)
        self.member_first: bool | None = None
        self.member_applied = False

    def __iter__(self) -> Iterator[RawFeature]:
        for raw in super().__iter__():
            if self.member_first is None:
                self.member_first = self.crs_member is not None
            yield raw
        if self.member_first is None:  # no features at all
            self.member_first = True


class _Iterable:
    def __init__(self, it: Iterator[RawFeature]) -> None:
        self.it = it

    def __iter__(self) -> Iterator[RawFeature]:
        return self.it


def reader_for(
    media: str, crs: str | None, f: IO[bytes], csv_columns: frozenset[str]
) -> Iterable[RawFeature]:
    """The reader of an upload of this media type: its features in file order."""
    if media == GEOJSON:
        return TrackingCollection(f)
    if media == GEOJSON_SEQ:
        return _Iterable(read_sequence(f))
    if media == CSV:
        return _Iterable(read_csv(f, csv_columns, projected=parse_job_crs(crs) is not None))
    raise JobFailed(f"unsupported media type {media}")
