"""OGC API – Features beyond Part 1 core: `datetime` on the cameras' `registered_at`, an integer `limit` with its
maximum in the contract (which current GDAL pages by), the collection's queryables and CQL2 text filters run in
the database with bound parameters — by plain HTTP, and by GDAL's OAPIF driver sending its `-where` to the
server — and the landing page and conformance saying truthfully what is served."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import Suite, Token
from tests.geo_query.conftest import (
    AgencyFixture,
    Cam,
    insert_agency,
    insert_camera,
    insert_registration,
)
from tests.support import Db

PROBLEM = "application/problem+json"
BOX = {
    "type": "MultiPolygon",
    "coordinates": [[[[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.1], [10.0, 50.0]]]],
}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ITEMS = "/v1/ogc/collections/cameras/items"


@dataclass
class Town:
    agency: AgencyFixture
    cams: list[Cam]
    registered: dict[uuid.UUID, datetime]
    labels: dict[uuid.UUID, str | None]

    def ids(self, keep: Callable[[Cam], bool] = lambda c: True) -> set[str]:
        return {str(c.id) for c in self.cams if keep(c)}


def _town(db: Db, n: int, seed: int) -> Town:
    """An agency of its own with `n` cameras, each registered one day after the one before (from T0)."""
    rng = random.Random(seed)
    agency = insert_agency(db, "of-" + uuid.uuid4().hex[:8], BOX)
    cams: list[Cam] = []
    registered: dict[uuid.UUID, datetime] = {}
    labels: dict[uuid.UUID, str | None] = {}
    rid, _ = insert_registration(db, agency, 10.05, 50.05)
    for i in range(n):
        cam = Cam(
            id=uuid.uuid4(),
            registration_id=rid,
            lon=rng.uniform(10.001, 10.099),
            lat=rng.uniform(50.001, 50.099),
            visible_to={agency.id},
            owner_kind=rng.choice(["residential", "business", "school"]),
            placement=rng.choice(["indoor", "outdoor", None]),
            live_mode=rng.choice(["never", "on_alert", "emergency"]),
            retention_days=rng.choice([3, 7, 14, 30, None]),
            direction_deg=rng.choice([None, rng.randrange(360)]),
            fov_deg=rng.choice([60, 90, 360]),
            range_m=rng.choice([20.0, 40.0, None]),
        )
        insert_camera(db, cam)
        registered[cam.id] = T0 + timedelta(days=i)
        labels[cam.id] = rng.choice(["Front door", "Back yard", "Fridge cam", None])
        db.execute(
            "UPDATE registry.cameras SET created_at = $2, label = $3 WHERE id = $1",
            cam.id,
            registered[cam.id],
            labels[cam.id],
        )
        cams.append(cam)
    return Town(agency, cams, registered, labels)


@pytest.fixture(scope="module")
def town(db: Db) -> Town:
    return _town(db, 40, 7)


def _ids(geo: httpx.Client, headers: dict[str, str], **params: str) -> set[str]:
    r = geo.get(ITEMS, params={"limit": "1000", **params}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberReturned"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def test_landing_page_and_conformance_say_openapi_3_1_and_part_3(
    geo: httpx.Client, auth: Token, town: Town
) -> None:
    h = auth("investigator", town.agency.slug)
    links = geo.get("/v1/ogc", headers=h).json()["links"]
    desc = [link for link in links if link["rel"] == "service-desc"]
    assert [link["type"] for link in desc] == ["application/vnd.oai.openapi+json;version=3.1"]
    assert geo.get("/openapi.json").json()["openapi"].startswith("3.1.")
    # The description it links to is the OGC API's own: paths relative to the landing page, as OGC clients read.
    api = geo.get(desc[0]["href"], headers={"Accept": desc[0]["type"]})
    assert api.headers["content-type"] == desc[0]["type"]
    document = api.json()
    assert document["servers"] == [{"url": str(geo.base_url).rstrip("/") + "/v1/ogc"}]
    items = document["paths"]["/collections/{collectionId}/items"]["get"]
    assert "collectionId" in {p["name"] for p in items["parameters"]}
    assert set(document["paths"]) >= {
        "/",
        "/conformance",
        "/collections",
        "/collections/{collectionId}/queryables",
    }
    assert geo.get(desc[0]["href"]).headers["content-type"] == "application/json"
    classes = set(geo.get("/v1/ogc/conformance", headers=h).json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" not in classes
    assert {
        "http://www.opengis.net/spec/ogcapi-features-1/1.1/conf/oas31",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    } <= classes


def test_the_contract_declares_limit_an_integer_with_its_default_and_maximum(geo: httpx.Client) -> None:
    params = geo.get("/openapi.json").json()["paths"]["/v1/ogc/collections/{collection_id}/items"]["get"]
    by_name = {p["name"]: p for p in params["parameters"]}
    limit = by_name["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer",
        1,
        100_000,
        100,
    )
    assert by_name["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql-text"]
    assert by_name["f"]["schema"]["enum"] == ["json", "geojson", "application/json", "application/geo+json"]
    assert {"datetime", "filter"} <= set(by_name)


def test_queryables_are_a_json_schema_of_the_camera_properties(
    geo: httpx.Client, auth: Token, town: Town
) -> None:
    h = auth("investigator", town.agency.slug)
    info = geo.get("/v1/ogc/collections/cameras", headers=h).json()
    href = next(link["href"] for link in info["links"] if link["rel"].endswith("queryables"))
    r = geo.get(href, headers={**h, "Accept": "application/schema+json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    schema = r.json()
    assert schema["type"] == "object" and schema["$id"] == href
    props = schema["properties"]
    assert props["registered_at"] == {
        "description": props["registered_at"]["description"],
        "type": "string",
        "format": "date-time",
    }
    assert props["owner_kind"]["enum"][:2] == ["residential", "business"]
    assert props["retention_days"]["type"] == "integer"
    # The items of a feature all have a queryable of their name (but the per-query ones: distance, contact...).
    feature = geo.get(ITEMS, params={"limit": 1}, headers=h).json()["features"][0]
    assert set(feature["properties"]) - set(props) == {"covers"}
    plain = geo.get(href, headers=h)
    assert plain.headers["content-type"] == "application/json" and plain.json() == schema
    assert geo.get("/v1/ogc/collections/nothing/queryables", headers=h).status_code == 404


def test_datetime_selects_by_registered_at_instants_dates_and_intervals(
    geo: httpx.Client, auth: Token, town: Town
) -> None:
    h = auth("investigator", town.agency.slug)
    at = town.registered
    day = timedelta(days=1)

    def between(lo: datetime | None, hi: datetime | None) -> set[str]:
        return town.ids(lambda c: (lo is None or at[c.id] >= lo) and (hi is None or at[c.id] <= hi))

    def z(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    t5, t9 = T0 + 5 * day, T0 + 9 * day
    assert _ids(geo, h, datetime=z(t5)) == between(t5, t5) and len(between(t5, t5)) == 1
    assert _ids(geo, h, datetime="2026-03-06") == between(t5, t5)  # a date: its whole day
    assert _ids(geo, h, datetime=f"{z(t5)}/{z(t9)}") == between(t5, t9) and len(between(t5, t9)) == 5
    assert _ids(geo, h, datetime=f"../{z(t9)}") == between(None, t9) and len(between(None, t9)) == 10
    assert _ids(geo, h, datetime=f"{z(t9)}/..") == between(t9, None)
    assert _ids(geo, h, datetime=f"{z(t9)}/") == between(t9, None)
    # The same instant given with another offset.
    assert _ids(geo, h, datetime="2026-03-06T14:00:00+02:00") == between(t5, t5)
    every = _ids(geo, h)
    assert every == town.ids()
    one = geo.get(ITEMS, params={"limit": 1}, headers=h).json()["features"][0]
    assert one["properties"]["registered_at"] == z(at[uuid.UUID(one["id"])])


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-03-06T12:00:00",  # no offset
        "2026-03-10T00:00:00Z/2026-03-01T00:00:00Z",  # ends before it starts
        "../..",
        "2026-01-01/2026-02-01/2026-03-01",
        "0001-01-01T00:00:00+01:00",  # before the first instant there is
        "2026-02-30",
        "2026-03-06T12:00:00+00:99",  # an offset's minutes past 59: no offset at all, not 1 h 39 min
        "2026-03-06T12:00:00+24:00",
        # A space for the T: RFC 3339's prose allows it for reading, its grammar (which OGC API Features names)
        # does not, nor does any other instant the services read (shared/timestamps.py).
        "2026-03-06 12:00:00Z",
        "2026-03-06 12:00:00Z/..",
        "../2026-03-06 12:00:00+01:00",
        "0001-01-01T00:00:00Z",  # the first instant itself: the database driver's -infinity
    ],
)
def test_bad_datetime_is_a_400_problem(geo: httpx.Client, auth: Token, town: Town, value: str) -> None:
    r = geo.get(ITEMS, params={"datetime": value}, headers=auth("investigator", town.agency.slug))
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["errors"][0]["pointer"] == "/query/datetime"


def test_cql2_text_filters_select_what_the_model_says(geo: httpx.Client, auth: Token, town: Town) -> None:
    h = auth("investigator", town.agency.slug)
    at = town.registered
    cases: list[tuple[str, Callable[[Cam], bool]]] = [
        ("owner_kind = 'business'", lambda c: c.owner_kind == "business"),
        (
            "owner_kind = 'business' AND retention_days >= 14",
            lambda c: c.owner_kind == "business" and (c.retention_days or 0) >= 14,
        ),
        (
            "(live_mode = 'never' OR placement IS NULL) AND NOT (fov_deg = 360)",
            lambda c: (c.live_mode == "never" or c.placement is None) and c.fov_deg != 360,
        ),
        ("placement IS NOT NULL", lambda c: c.placement is not None),
        ("label LIKE 'F%'", lambda c: (town.labels[c.id] or "").startswith("F")),
        (
            "label NOT LIKE '%door'",
            lambda c: "door" not in (town.labels[c.id] or "door"),
        ),
        ("owner_kind IN ('school', 'residential')", lambda c: c.owner_kind in ("school", "residential")),
        (
            "retention_days BETWEEN 7 AND 14",
            lambda c: c.retention_days is not None and 7 <= c.retention_days <= 14,
        ),
        ("30 <= retention_days", lambda c: c.retention_days is not None and c.retention_days >= 30),
        ("range_m > 25.5", lambda c: c.range_m is not None and c.range_m > 25.5),
        (
            "direction_deg < fov_deg",
            lambda c: c.direction_deg is not None and c.direction_deg < (c.fov_deg or 0),
        ),
        (
            "registered_at < TIMESTAMP('2026-03-04T00:00:00Z')",
            lambda c: at[c.id] < datetime(2026, 3, 4, tzinfo=UTC),
        ),
        ("registered_at = DATE('2026-03-03')", lambda c: at[c.id].date().isoformat() == "2026-03-03"),
        # Date-times written as text, as GDAL writes them: a date, an hour, minutes.
        ("registered_at = '2026-03-03T'", lambda c: at[c.id].date().isoformat() == "2026-03-03"),
        ("registered_at >= '2026-03-30T12Z'", lambda c: at[c.id] >= datetime(2026, 3, 30, 12, tzinfo=UTC)),
        ("registered_at < '2026-03-05T12:01Z'", lambda c: at[c.id] < datetime(2026, 3, 5, 12, 1, tzinfo=UTC)),
        ("shares_history = true", lambda c: True),
        ("INCLUDE", lambda c: True),
        ("EXCLUDE", lambda c: False),
        (f"id = '{town.cams[3].id}'", lambda c: c.id == town.cams[3].id),
    ]
    for text, keep in cases:
        expected = town.ids(keep)
        assert _ids(geo, h, filter=text) == expected, text
        assert _ids(geo, h, filter=text, **{"filter-lang": "cql2-text"}) == expected, text
    # The filter combines with bbox, datetime and the search filters.
    both = _ids(
        geo, h, filter="retention_days >= 7", datetime="../2026-03-20T12:00:00Z", owner_kind="business"
    )
    assert both == town.ids(
        lambda c: (
            (c.retention_days or 0) >= 7
            and at[c.id] <= datetime(2026, 3, 20, 12, tzinfo=UTC)
            and c.owner_kind == "business"
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        "owner_kind = 'x'; DROP TABLE registry.cameras; --",
        "owner_kind = 'x' OR 1=1",
        "owner_kind = '' OR ''=''",
        "label = 'a'' OR ''1''=''1'",
        "\"owner_kind\" = 'x') OR (1=1",
        "c.id IS NOT NULL",
        "visible_to IS NOT NULL",
        "pg_sleep(5) = 1",
        "owner_kind = owner_kind || 'x'",
        "retention_days = 1 + 1",
        "CASEI(label) = CASEI('front door')",
        "owner_kind = 1",
        "retention_days = 'seven'",
        "registered_at > 'last week'",
        "registered_at < TIMESTAMP('2026-03-04T00:00:00+00:99')",  # no offset: not read as +01:39
        "registered_at < '2026-03-05 12:00:00Z'",  # an instant written as text reads as the datetime parameter
        "id = 'not-a-uuid'",
        "nope = 1",
        "owner_kind = 'business' OR retention_days > 3 AND live_mode = 'never'",
        "S_INTERSECTS(geometry, POINT(10.05 50.05))",
        "((((((((((((((((((((((((((((((((((((((((owner_kind = 'x'))))))))))))))))))))))))))))))))))))))",
        "(" * 2100 + "owner_kind = 'x'" + ")" * 2100,
        "owner_kind = 'x\u0000'",
        "   ",
    ],
)
def test_injection_and_unsupported_filters_are_400_problems(
    geo: httpx.Client, auth: Token, town: Town, db: Db, text: str
) -> None:
    before = db.fetchval("SELECT count(*) FROM registry.cameras")
    r = geo.get(ITEMS, params={"filter": text}, headers=auth("investigator", town.agency.slug))
    if r.status_code == 200:  # deep but legal nesting is answered, and only with what the filter says
        assert text.startswith("((") and r.json()["features"] == []
    else:
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, (text, r.status_code, r.text)
        assert r.json()["errors"][0]["pointer"] == "/query/filter"
    assert db.fetchval("SELECT count(*) FROM registry.cameras") == before


def test_filter_lang_other_than_cql2_text_is_a_400(geo: httpx.Client, auth: Token, town: Town) -> None:
    h = auth("investigator", town.agency.slug)
    r = geo.get(ITEMS, params={"filter": "owner_kind = 'x'", "filter-lang": "cql2-json"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/filter-lang"
    r = geo.get(ITEMS, params={"filter-lang": "cql2-text"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/filter-lang"


def test_filter_and_datetime_are_in_the_audit_record(
    geo: httpx.Client, auth: Token, town: Town, db: Db
) -> None:
    sub = "of-" + uuid.uuid4().hex[:8]
    text, when = "owner_kind = 'school'", "2026-03-02T00:00:00Z/.."
    r = geo.get(
        ITEMS, params={"filter": text, "datetime": when}, headers=auth("investigator", town.agency.slug, sub)
    )
    assert r.status_code == 200
    details = db.fetchval("SELECT details FROM audit.events WHERE actor = $1 AND action = 'ogc.items'", sub)
    assert f'"filter": "{text}"' in details and f'"datetime": "{when}"' in details


# ------------------------------------------------------------------------------------------------------ GDAL


def _gdal(argv: list[str], token: str, **config: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "CPL_"))}
    env.update({"GDAL_HTTP_HEADERS": f"Authorization: {token}", **config})
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def _item_requests(db: Db, sub: str) -> list[dict[str, object]]:
    """What geo_query's audit trail recorded of a caller's item pages: one record per request."""
    import orjson

    rows = db.fetch(
        "SELECT details FROM audit.events WHERE actor = $1 AND action = 'ogc.items' ORDER BY seq", sub
    )
    return [orjson.loads(r["details"]) for r in rows]


GDAL_WHERES: list[tuple[str, Callable[[Cam, datetime], bool], str]] = [
    (
        "owner_kind = 'business' AND retention_days >= 14",
        lambda c, at: c.owner_kind == "business" and (c.retention_days or 0) >= 14,
        "owner_kind = 'business'",
    ),
    # A date-time field compared with a date: GDAL writes it as '2026-03-20T'.
    ("registered_at >= '2026-03-20'", lambda c, at: at >= datetime(2026, 3, 20, tzinfo=UTC), "registered_at"),
]


@pytest.mark.parametrize(("where", "keep", "sent"), GDAL_WHERES, ids=["attributes", "date"])
def test_ogrinfo_where_runs_on_the_server_as_a_cql2_filter(
    suite: Suite,
    auth: Token,
    town: Town,
    db: Db,
    where: str,
    keep: Callable[[Cam, datetime], bool],
    sent: str,
) -> None:
    sub = "gdal-" + uuid.uuid4().hex[:8]
    token = auth("investigator", town.agency.slug, sub)["Authorization"]
    r = _gdal(
        ["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{suite.geo.url}/v1/ogc", "cameras", "-where", where],
        token,
        CPL_DEBUG="ON",
    )
    assert r.returncode == 0, r.stderr
    expected = town.ids(lambda c: keep(c, town.registered[c.id]))
    assert 0 < len(expected) < len(town.cams)
    assert r.stdout.count("OGRFeature(cameras)") == len(expected)
    # GDAL sent the filter with its page requests (its debug log shows the URL) ...
    assert "Full filter will be evaluated on client side" not in r.stderr
    assert "Only part of the filter will be evaluated on server side" not in r.stderr
    fetched = [line for line in r.stderr.splitlines() if "Fetch(" in line and "/items?" in line]
    assert any("filter=" in line and "filter-lang=cql-text" in line for line in fetched), fetched
    # ... and geo_query's audit trail shows it ran there: the filtered pages returned only the matches.
    filtered = [d for d in _item_requests(db, sub) if d.get("filter")]
    assert filtered and sum(int(str(d["results"])) for d in filtered) == len(expected)
    assert all(sent in str(d["filter"]) for d in filtered)


@pytest.fixture(scope="module")
def demo_sized(db: Db) -> Town:
    """As many cameras as the demo data has."""
    return _town(db, 427, 11)


def test_gdal_pages_by_the_limit_maximum_in_the_contract(
    suite: Suite, auth: Token, db: Db, demo_sized: Town
) -> None:
    """The demo's 427 cameras: GDAL 3.6 (Debian 12) asks its fixed page size of 10 whatever the API says (43 item
    requests); current GDAL (3.8 and later, here pyogrio's) takes the `limit` maximum from the API description,
    up to its own cap of 1000, and reads them all in one page after its 20-feature look at the schema."""
    from pyogrio import set_gdal_config_options
    from pyogrio.raw import read

    big = demo_sized
    sub = "gdal-" + uuid.uuid4().hex[:8]
    token = auth("investigator", big.agency.slug, sub)["Authorization"]
    url = f"OAPIF:{suite.geo.url}/v1/ogc"

    old = _gdal(["ogrinfo", "-ro", "-al", "-q", url, "cameras"], token)
    assert old.returncode == 0, old.stderr
    assert old.stdout.count("OGRFeature(cameras)") == 427
    old_pages = _item_requests(db, sub)
    assert [d["limit"] for d in old_pages] == [10] * 44  # its first look, then 43 pages

    sub2 = "gdal-" + uuid.uuid4().hex[:8]
    token2 = auth("investigator", big.agency.slug, sub2)["Authorization"]
    # This GDAL sends its own headers with each request, so the token goes as GDAL's bearer authentication.
    set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token2.removeprefix("Bearer ")})
    try:
        _meta, _fids, geometry, _fields = read(url, layer="cameras")
    finally:
        set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
    assert len(geometry) == 427
    new_pages = _item_requests(db, sub2)
    assert [d["limit"] for d in new_pages] == [20, 1000]
    assert sum(int(str(d["results"])) for d in new_pages[1:]) == 427


def test_debian_gdal_reads_the_api_description_yet_pages_by_10_unless_given_a_page_size(
    suite: Suite, auth: Token, db: Db, demo_sized: Town
) -> None:
    """GDAL 3.6 (Debian 12) fetches the landing page's `service-desc` only to learn the filter languages and
    queryables; its page size is the PAGE_SIZE open option or 10, never the `limit` schema (that came with GDAL 3.8),
    so nothing the server declares shortens its paging. Given the option, as the README tells its users, it reads
    the 427 cameras in two item requests, the server honouring a `limit` of 1000."""
    url = f"OAPIF:{suite.geo.url}/v1/ogc"
    sub = "gdal-" + uuid.uuid4().hex[:8]
    token = auth("investigator", demo_sized.agency.slug, sub)["Authorization"]
    r = _gdal(["ogrinfo", "-ro", "-al", "-q", url, "cameras", "-where", "fov_deg > 0"], token, CPL_DEBUG="ON")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("OGRFeature(cameras)") == 427
    assert f"Fetch({suite.geo.url}/v1/ogc/api)" in r.stderr and "CQL text detected" in r.stderr, r.stderr
    pages = _item_requests(db, sub)
    assert [d["limit"] for d in pages] == [10] * 44 and all(d.get("filter") for d in pages[1:])

    sub2 = "gdal-" + uuid.uuid4().hex[:8]
    token2 = auth("investigator", demo_sized.agency.slug, sub2)["Authorization"]
    r = _gdal(["ogrinfo", "-ro", "-al", "-q", url, "cameras", "-oo", "PAGE_SIZE=1000"], token2)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("OGRFeature(cameras)") == 427
    pages = _item_requests(db, sub2)
    assert [d["limit"] for d in pages] == [1000, 1000]  # its look at the schema, then the one page
    assert [int(str(d["results"])) for d in pages] == [427, 427]
