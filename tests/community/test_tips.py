"""Anonymous tips over real HTTP: media stored without their metadata, uncleanable types refused with nothing
stored, no address or user agent in the rows or the logs, the rate limit, and the tip code's conversation."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from services.community_api.ratelimit import sender
from tests.community.conftest import (
    CAMERA_MAKE,
    VIDEO_TITLE,
    Agency,
    container_tags,
    form,
    jpeg_with_gps,
    mp4_with_metadata,
    send_tip,
)
from tests.support import Db, eventually


def stored_media(db: Db, tip_id: str) -> list[tuple[str, bytes]]:
    rows = db.fetch(
        "SELECT media_type, content FROM community.tip_media WHERE tip_id = $1 ORDER BY created_at, id",
        uuid.UUID(tip_id),
    )
    return [(r["media_type"], bytes(r["content"])) for r in rows]


def test_a_photo_is_stored_without_exif_gps_or_xmp_and_stands_upright(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    r = send_tip(community, agency.slug, files=[("p.jpg", jpeg_with_gps(64, 48), "image/jpeg")])
    assert r.status_code == 201, r.text
    [(media_type, content)] = stored_media(db, r.json()["id"])
    assert media_type == "image/jpeg"
    for trace in (CAMERA_MAKE.encode(), b"SentinelCreator", b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/"):
        assert trace not in content
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "JPEG"
        assert not image.getexif()
        assert "xmp" not in image.info and "exif" not in image.info
        assert image.size == (48, 64)  # the orientation (rotate 90°) was applied to the pixels before it went
    # What an investigator downloads is the cleaned file, with its hash.
    tip = agency_view(community, agency, r.json()["id"])
    media_id = tip["properties"]["messages"][0]["media"][0]["id"]
    got = community.get(
        f"/v1/agencies/{agency.slug}/tips/{r.json()['id']}/media/{media_id}",
        headers=agency.as_("investigator"),
    )
    assert got.status_code == 200 and got.content == content
    assert got.headers["content-type"] == "image/jpeg"


def test_a_video_is_remuxed_without_its_container_metadata_and_without_reencoding(
    community: httpx.Client, agency: Agency, db: Db, tmp_path: Path
) -> None:
    original = mp4_with_metadata(tmp_path)
    r = send_tip(community, agency.slug, files=[("clip.mp4", original, "video/mp4")])
    assert r.status_code == 201, r.text
    [(media_type, content)] = stored_media(db, r.json()["id"])
    assert media_type == "video/mp4"
    assert VIDEO_TITLE.encode() not in content and b"SentinelComment" not in content
    assert b"loci" not in content  # the place
    stored = tmp_path / "stored.mp4"
    stored.write_bytes(content)
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(stored)],
            check=True,
            capture_output=True,
        ).stdout
    )
    tags = container_tags(stored)
    assert not {"title", "location", "comment", "encoder"} & set(tags), tags
    codecs = sorted(s["codec_name"] for s in probe["streams"])
    assert codecs == ["aac", "mpeg4"]  # both streams kept, as they were (copied, not re-encoded)
    original_path = tmp_path / "original.mp4"
    original_path.write_bytes(original)
    frames = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(p), "-map", "0:v", "-c", "copy", "-f", "md5", "-"],
            check=True,
            capture_output=True,
        ).stdout
        for p in (original_path, stored)
    ]
    assert frames[0] == frames[1]  # the video packets are bit for bit the uploaded ones


DEVICE_SEI = "SentinelDevice-SN-0042"


def video_with_sei(tmp: Path, codec: str) -> tuple[bytes, bytes]:
    """A one-second MP4 whose video carries SEI user data, and the text that betrays it: H.264 from x264 (which
    writes its version and settings as SEI) with a device's user data added; H.265 from x265, whose SEI of its
    version is written both in the samples (headers repeated) and in the track's decoder configuration (hvcC)."""
    path = tmp / f"sei-{codec}-{uuid.uuid4().hex[:6]}.mp4"
    if codec == "h264":
        encode = ["-c:v", "libx264", "-bsf:v", f"h264_metadata=sei_user_data=086f3693-b7b3-4f2c-9653-21492feee5b8+{DEVICE_SEI}"]  # fmt: skip
        marks = [DEVICE_SEI.encode(), b"x264 - core"]
    else:
        encode = ["-c:v", "libx265", "-x265-params", "log-level=error:repeat-headers=1"]
        marks = [b"x265 (build"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5",
         *encode, str(path)],
        check=True,
    )  # fmt: skip
    data = path.read_bytes()
    for mark in marks:
        assert mark in data  # the fixture carries what must go
    if codec == "hevc":
        assert data.count(marks[0]) == 2  # in a sample and in the hvcC
    return data, marks[-1]


def decoded_frames(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        check=True,
        capture_output=True,
    ).stdout


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_sei_user_data_in_h264_and_h265_video_is_not_stored_and_the_pictures_are_the_same(
    community: httpx.Client, agency: Agency, db: Db, tmp_path: Path, codec: str
) -> None:
    original, _ = video_with_sei(tmp_path, codec)
    r = send_tip(community, agency.slug, files=[("clip.mp4", original, "video/mp4")])
    assert r.status_code == 201, r.text
    [(_, content)] = stored_media(db, r.json()["id"])
    for mark in (DEVICE_SEI.encode(), b"x264", b"x265"):
        assert mark not in content, mark
    stored, uploaded = tmp_path / "stored.mp4", tmp_path / "uploaded.mp4"
    stored.write_bytes(content)
    uploaded.write_bytes(original)
    # Copied, not re-encoded: every picture decodes as it did.
    frames = decoded_frames(stored)
    assert frames.count(b"\n0,") == 5 and frames == decoded_frames(uploaded)


def with_cover_picture(tmp: Path, kind: str) -> bytes:
    """An MP3, or an MP4 video, carrying a cover picture (an attached picture stream): a phone photo whose EXIF
    names the camera and the place."""
    cover = tmp / f"cover-{uuid.uuid4().hex[:6]}.jpg"
    cover.write_bytes(jpeg_with_gps())
    out = tmp / f"covered-{uuid.uuid4().hex[:6]}.{kind}"
    sources = ["-f", "lavfi", "-i", "sine=duration=1"]
    if kind == "mp3":
        codecs = ["-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy", "-id3v2_version", "3"]
        inputs = [*sources, "-i", str(cover)]
    else:
        inputs = ["-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", *sources, "-i", str(cover)]
        codecs = ["-map", "0", "-map", "1", "-map", "2", "-c:v:0", "mpeg4", "-c:a", "aac", "-c:v:1", "copy"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", *inputs, *codecs, "-disposition:v:" + ("0" if kind == "mp3" else "1"),
         "attached_pic", "-shortest", str(out)],
        check=True,
    )  # fmt: skip
    data = out.read_bytes()
    assert CAMERA_MAKE.encode() in data  # the fixture carries what must go
    return data


def stream_kinds(path: Path) -> list[str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        check=True,
        capture_output=True,
    )
    return sorted(s["codec_type"] for s in json.loads(probe.stdout)["streams"])


def test_a_cover_picture_in_audio_or_video_is_dropped_with_its_exif(
    community: httpx.Client, agency: Agency, db: Db, tmp_path: Path
) -> None:
    for kind, media_type, kept in (
        ("mp3", "audio/mpeg", ["audio"]),
        ("mp4", "video/mp4", ["audio", "video"]),
    ):
        r = send_tip(
            community, agency.slug, files=[(f"memo.{kind}", with_cover_picture(tmp_path, kind), media_type)]
        )
        assert r.status_code == 201, r.text
        [(stored_type, content)] = stored_media(db, r.json()["id"])
        assert stored_type == media_type
        assert CAMERA_MAKE.encode() not in content and b"SentinelCreator" not in content, kind
        stored = tmp_path / f"stored.{kind}"
        stored.write_bytes(content)
        assert stream_kinds(stored) == kept, kind  # the sound (and the film) stay; the picture goes


def count_tips(db: Db, slug: str) -> int:
    return int(db.fetchval("SELECT count(*) FROM community.tips WHERE agency = $1", slug))


def test_a_type_that_cannot_be_cleaned_is_refused_and_nothing_is_stored(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    photo = ("ok.jpg", jpeg_with_gps(), "image/jpeg")
    for bad, status, kind in (
        (("doc.pdf", b"%PDF-1.4 whatever", "application/pdf"), 415, "media-type-not-cleanable"),
        (("a.txt", b"hello", "text/plain"), 415, "media-type-not-cleanable"),
        (("fake.jpg", b"not a jpeg at all", "image/jpeg"), 422, "media-unreadable"),
        (("fake.mp4", b"\x00\x00\x00\x18ftypmp42 garbage", "video/mp4"), 422, "media-unreadable"),
        (("list.m3u8", b"#EXTM3U\nfile:///etc/passwd\n", "video/mp4"), 422, "media-unreadable"),
    ):
        r = send_tip(community, agency.slug, files=[photo, bad])  # a good file first: all or nothing
        assert r.status_code == status, (bad[0], r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith(kind)
        assert "/body/media/1" in r.json()["detail"]
    assert count_tips(db, agency.slug) == 0
    assert db.fetchval("SELECT count(*) FROM community.tip_media m JOIN community.tips t ON t.id = m.tip_id"
                       " WHERE t.agency = $1", agency.slug) == 0  # fmt: skip


def test_the_agencys_policy_limits_the_size_types_and_number_of_files(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    policy = {
        "tip_media_max_bytes": 2048,
        "tip_media_types": ["image/png"],
        "tip_max_files": 1,
        "tip_retention_days": 30,
        "alert_max_radius_m": 1000,
    }
    r = community.put(
        f"/v1/agencies/{agency.slug}/community-policy", json=policy, headers=agency.as_("agency_admin")
    )
    assert r.status_code == 200, r.text
    assert community.get(f"/v1/agencies/{agency.slug}/community-policy").json() == policy
    small_png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(small_png, "PNG")
    png = ("a.png", small_png.getvalue(), "image/png")
    assert (
        send_tip(community, agency.slug, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")]).status_code == 415
    )
    too_many = send_tip(community, agency.slug, files=[png, png])
    assert too_many.status_code == 422
    assert too_many.json()["errors"] == [
        {
            "pointer": "/body/media",
            "reason": "this agency takes at most 1 files at a time",
            "code": "too_long",
            "params": {"max_length": 1},
        }
    ]
    assert send_tip(community, agency.slug, files=[("big.png", b"\x89PNG" + b"\x00" * 4096, "image/png")]).status_code == 413  # fmt: skip
    assert count_tips(db, agency.slug) == 0
    assert send_tip(community, agency.slug, files=[png]).status_code == 201
    # A policy naming a type that cannot be cleaned is refused.
    bad = community.put(
        f"/v1/agencies/{agency.slug}/community-policy",
        json={**policy, "tip_media_types": ["application/pdf"]},
        headers=agency.as_("agency_admin"),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/body/tip_media_types/0"


SENTINEL_IP = "203.0.113.77"


def loopback_address() -> str:
    """A loopback address of the test's own (Linux answers all of 127/8), so the shared rate limit's counts of
    other tests, all from 127.0.0.1, are not this test's; and not 127.0.0.1, whose forwarded headers uvicorn
    trusts."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def client_from(url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address`."""
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def traces(address: str) -> list[str]:
    """What would betray an address: the text, and the hex of its common plain hashes (the first 8 bytes, so a
    truncated hash is found too; a bytea column reads as hex in a row's text)."""
    digests = [
        hashlib.new(name, address.encode()).hexdigest()[:16] for name in ("md5", "sha1", "sha256", "sha512")
    ]
    return [address, *digests]


def test_no_address_or_user_agent_is_stored_or_logged_on_the_tip_routes(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    # Two instances logging everything they log (the suite's log at WARNING would prove nothing), sharing the
    # rate limit's counts in the database.
    servers = [own_instance(CANVASS_LOG_LEVEL="DEBUG") for _ in range(2)]
    source = loopback_address()
    agent = f"SentinelAgent/{uuid.uuid4().hex}"
    headers = {"User-Agent": agent, "X-Forwarded-For": SENTINEL_IP, "X-Real-IP": SENTINEL_IP}
    ids = []
    before = {bytes(r["key"]): r["count"] for r in db.fetch("SELECT key, count FROM community.rate_counts")}
    with client_from(servers[0].url, source) as c, client_from(servers[1].url, source) as other:
        r = send_tip(c, agency.slug, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")], headers=headers, lon="-87.9", lat="43.04")  # fmt: skip
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        ids.append(r.headers["x-request-id"])
        for call in (
            other.get("/v1/tips/mine", headers={**headers, "X-Tip-Code": code}),
            other.post("/v1/tips/mine/messages", files=form({"text": "More: a blue van."}), headers={**headers, "X-Tip-Code": code}),
            c.get("/v1/tips/mine", headers={**headers, "X-Tip-Code": "cvt_wrong"}),
            other.get("/v1/tips/mine", headers={**headers, "X-Tip-Code": "cvt_wrong"}),
        ):  # fmt: skip
            assert call.status_code in (200, 201, 401), call.text
            ids.append(call.headers["x-request-id"])
    # The sender was counted by both instances, in the database, under one key of 16 bytes: 4 times (the tip,
    # the follow-up, the two wrong codes; a read with the right code is not counted).
    after = {bytes(r["key"]): r["count"] for r in db.fetch("SELECT key, count FROM community.rate_counts")}
    changed = {k: n for k, n in after.items() if before.get(k) != n}
    assert list(changed.values()) == [4] and all(len(k) == 16 for k in changed)
    needles = [agent, code, *traces(source), *traces(SENTINEL_IP)]
    lines = []
    for server in servers:
        server.stop()
        log = server.log_path.read_text()
        for needle in needles:
            assert needle not in log, needle
        lines += [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    tip_lines = [line for line in lines if line.get("request_id") in ids]
    assert len(tip_lines) >= len(ids)  # the access lines were written (at DEBUG nothing is held back)...
    assert all("127.0.0.1" not in json.dumps(line) for line in tip_lines)  # ...and name no address
    # Nor does any row: every table of the schema (the rate limit's too), and the audit trail, read as text.
    tables = [r["t"] for r in db.fetch(
        "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = 'community'")]  # fmt: skip
    assert {"community.rate_counts", "community.rate_windows"} <= set(tables)
    for table in [*tables, "audit.events"]:
        for needle in [*needles, "127.0.0.1"]:
            found = db.fetchval(f"SELECT count(*) FROM {table} x WHERE x::text LIKE $1", f"%{needle}%")  # noqa: S608
            assert found == 0, (table, needle)
    # The code is kept only as its hash.
    stored = db.fetchval("SELECT code_hash FROM community.tips WHERE id = $1", uuid.UUID(r.json()["id"]))
    assert bytes(stored) == hashlib.sha256(code.encode()).digest()


def test_ffmpeg_runs_at_most_the_cap_at_once_and_a_tip_that_waits_too_long_is_a_503_with_nothing_stored(
    agency: Agency, db: Db, own_instance, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # An ffmpeg that says it started, then waits at a gate the test opens: the cap of one is held while it waits.
    started, gate = tmp_path / "started", tmp_path / "gate"
    os.mkfifo(gate)
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\ntouch "{started}"\nread _ < "{gate}"\nexec ffmpeg "$@"\n')
    wrapper.chmod(0o755)
    server = own_instance(
        CANVASS_FFMPEG_PATH=str(wrapper), CANVASS_FFMPEG_CONCURRENCY="1", CANVASS_FFMPEG_WAIT_S="0.5"
    )
    video = mp4_with_metadata(tmp_path)
    with client_from(server.url, loopback_address()) as c, ThreadPoolExecutor(1) as pool:
        first = pool.submit(send_tip, c, agency.slug, files=[("a.mp4", video, "video/mp4")])
        assert eventually(started.exists)
        assert count_tips(db, agency.slug) == 0
        # The cap is taken: a tip whose photo was cleaned and whose video waits too long stores nothing.
        r = send_tip(
            c,
            agency.slug,
            files=[("p.jpg", jpeg_with_gps(), "image/jpeg"), ("b.mp4", video, "video/mp4")],
        )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert count_tips(db, agency.slug) == 0
        assert db.fetchval("SELECT count(*) FROM community.tip_media WHERE size = $1", len(video)) == 0
        with open(gate, "w") as g:  # opens the gate: the first ffmpeg goes on
            g.write("go\n")
        assert first.result(timeout=60).status_code == 201
        # The slot is free again.
        started.unlink()
        second = pool.submit(send_tip, c, agency.slug, files=[("c.mp4", video, "video/mp4")])
        assert eventually(started.exists)
        with open(gate, "w") as g:
            g.write("go\n")
        assert second.result(timeout=60).status_code == 201
    assert count_tips(db, agency.slug) == 2


def test_the_tip_rate_limit_is_shared_by_every_process_of_the_service(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    one, two = (own_instance(CANVASS_TIP_RATE_LIMIT="3") for _ in range(2))
    source = loopback_address()
    with client_from(one.url, source) as a, client_from(two.url, source) as b:
        answers = [send_tip(c, agency.slug).status_code for c in (a, b, a)]
        refused = [send_tip(b, agency.slug), send_tip(a, agency.slug)]
    assert answers == [201, 201, 201]
    for r in refused:  # the fourth and fifth tips, whichever process takes them
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"] == "application/problem+json"
    assert count_tips(db, agency.slug) == 3
    # Another sender has a count of their own.
    with client_from(two.url, loopback_address()) as c:
        assert send_tip(c, agency.slug).status_code == 201


def test_a_rate_limit_windows_salt_and_counts_are_deleted_when_it_ends(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    server = own_instance(CANVASS_TIP_RATE_WINDOW_S="1", CANVASS_COMMUNITY_HOUSEKEEPING_S="0.2")
    with client_from(server.url, loopback_address()) as c:
        assert send_tip(c, agency.slug).status_code == 201
    window = db.fetchval("SELECT max(number) FROM community.rate_windows WHERE length_s = 1")
    assert window is not None
    assert db.fetchval(
        "SELECT count(*) FROM community.rate_counts WHERE ends_at > now() - interval '2 seconds'"
    )

    def swept() -> bool:
        # No tip comes after it: the housekeeping deletes the ended window's salt and counts on its own.
        return not db.fetchval(
            "SELECT count(*) FROM community.rate_windows WHERE length_s = 1 AND number <= $1", window
        ) and not db.fetchval("SELECT count(*) FROM community.rate_counts WHERE ends_at <= now()")

    assert eventually(swept, timeout=10)


def agency_view(community: httpx.Client, agency: Agency, tip_id: str) -> dict:  # type: ignore[type-arg]
    r = community.get(f"/v1/agencies/{agency.slug}/tips/{tip_id}", headers=agency.as_("investigator"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_tip_code_is_shown_once_and_carries_an_anonymous_conversation(
    community: httpx.Client, agency: Agency
) -> None:
    r = send_tip(community, agency.slug, "Someone is selling stolen bikes at the park.", lon="-87.91", lat="43.04",
                 occurred_at="2026-12-04T21:30:00Z")  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    code, tip_id = created["code"], created["id"]
    assert code.startswith("cvt_") and created["state"] == "new"
    mine = community.get("/v1/tips/mine", headers={"X-Tip-Code": code})
    assert mine.status_code == 200 and "code" not in mine.json()
    assert [m["author"] for m in mine.json()["messages"]] == ["tipster"]
    # The agency sees the place and replies; the tipster reads the reply and adds information with a photo.
    tip = agency_view(community, agency, tip_id)
    assert tip["geometry"] == {"type": "Point", "coordinates": [-87.91, 43.04]}
    reply = community.post(
        f"/v1/agencies/{agency.slug}/tips/{tip_id}/replies",
        json={"message": "Thank you. Which entrance of the park?"},
        headers=agency.as_("investigator"),
    )
    assert reply.status_code == 201, reply.text
    seen = community.get("/v1/tips/mine", headers={"X-Tip-Code": code}).json()
    assert [(m["author"], m["body"]) for m in seen["messages"]][-1] == ("agency", "Thank you. Which entrance of the park?")  # fmt: skip
    more = community.post(
        "/v1/tips/mine/messages",
        files=form({"text": "The north entrance."}, [("n.jpg", jpeg_with_gps(), "image/jpeg")]),
        headers={"X-Tip-Code": code},
    )
    assert more.status_code == 201, more.text
    assert len(more.json()["media"]) == 1
    tip = agency_view(community, agency, tip_id)
    assert [m["author"] for m in tip["properties"]["messages"]] == ["tipster", "agency", "tipster"]
    # A wrong code reads nothing.
    for wrong in ("cvt_" + "A" * 32, code + "x", "", "nothing"):
        assert community.get("/v1/tips/mine", headers={"X-Tip-Code": wrong}).status_code == 401
    assert community.get("/v1/tips/mine").status_code == 401


def on_the_hour(stamp: str) -> bool:
    t = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    return t == t.replace(minute=0, second=0, microsecond=0)


def test_a_tips_times_are_kept_and_shown_to_the_hour_and_no_audit_record_times_the_tipster(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    r = send_tip(community, agency.slug, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")])
    assert r.status_code == 201, r.text
    code, tip_id = r.json()["code"], r.json()["id"]
    assert on_the_hour(r.json()["created_at"]), r.json()
    # A conversation within the hour keeps its order though its times are all the same hour.
    for i in range(3):
        reply = community.post(
            f"/v1/agencies/{agency.slug}/tips/{tip_id}/replies",
            json={"message": f"Question {i}?"},
            headers=agency.as_("investigator"),
        )
        assert reply.status_code == 201 and on_the_hour(reply.json()["created_at"]), reply.text
        more = community.post(
            "/v1/tips/mine/messages",
            files=form({"text": f"Answer {i}."}, [("n.jpg", jpeg_with_gps(), "image/jpeg")]),
            headers={"X-Tip-Code": code},
        )
        assert more.status_code == 201 and on_the_hour(more.json()["created_at"]), more.text
    mine = community.get("/v1/tips/mine", headers={"X-Tip-Code": code}).json()
    expected = ["A van parks behind the school every night at 2am."] + [
        text for i in range(3) for text in (f"Question {i}?", f"Answer {i}.")
    ]
    assert [m["body"] for m in mine["messages"]] == expected
    assert on_the_hour(mine["created_at"]) and all(on_the_hour(m["created_at"]) for m in mine["messages"])
    seen = agency_view(community, agency, tip_id)["properties"]
    assert [m["body"] for m in seen["messages"]] == expected
    assert on_the_hour(seen["created_at"]) and on_the_hour(seen["updated_at"])
    listed = community.get(f"/v1/agencies/{agency.slug}/tips", headers=agency.as_("investigator")).json()
    assert all(on_the_hour(f["properties"]["created_at"]) for f in listed["features"])
    # As stored, whatever wrote it.
    stored = db.fetchval(
        """SELECT bool_and(t = date_trunc('hour', t, 'UTC')) FROM (
               SELECT created_at AS t FROM community.tips WHERE id = $1
               UNION ALL SELECT updated_at FROM community.tips WHERE id = $1
               UNION ALL SELECT created_at FROM community.tip_messages WHERE tip_id = $1
               UNION ALL SELECT created_at FROM community.tip_media WHERE tip_id = $1) times""",
        uuid.UUID(tip_id),
    )
    assert stored is True
    # The audit trail's times are exact: it has records of what the staff did, none of what the tipster did.
    actors = db.fetch(
        "SELECT DISTINCT actor_role FROM audit.events WHERE subject_type = 'tip' AND subject_id = $1", tip_id
    )
    assert [r["actor_role"] for r in actors] == ["investigator"]


def test_bad_tip_forms_are_clear_problems(community: httpx.Client, agency: Agency) -> None:
    # Each with the code a client words it from (in its reader's language), and the limit where there is one.
    cases = [
        ({"agency": agency.slug}, 422, "/body/text", "missing"),
        ({"agency": agency.slug, "text": "x" * 10_001}, 422, "/body/text", "string_too_long"),
        ({"agency": agency.slug, "text": "x", "lon": "-87.9"}, 422, "/body/lat", "invalid"),
        ({"agency": agency.slug, "text": "x", "lon": "abc", "lat": "43"}, 422, "/body/lon", "float_parsing"),
        ({"agency": agency.slug, "text": "x", "lon": "-87.9", "lat": "91"}, 422, "/body/lat", "invalid"),
        (
            {"agency": agency.slug, "text": "x", "occurred_at": "yesterday"},
            422,
            "/body/occurred_at",
            "invalid",
        ),
        ({"agency": agency.slug, "text": "x", "colour": "red"}, 422, "/body/colour", "extra_forbidden"),
        ({"agency": agency.slug, "text": "a\x00b"}, 422, "/body/text", "text_invalid"),
        ({"text": "x"}, 422, "/body/agency", "missing"),
    ]
    for fields, status, pointer, code in cases:
        r = community.post("/v1/tips", files=form(fields))
        assert r.status_code == status, (fields, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert pointer in r.json()["detail"], (fields, r.json())
        assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [(pointer, code)], r.json()
        if code == "string_too_long":
            assert r.json()["errors"][0]["params"] == {"max_length": 10_000}
    assert send_tip(community, "no-such-agency-here").status_code == 404
    json_body = community.post("/v1/tips", json={"agency": agency.slug, "text": "x"})
    assert json_body.status_code == 415 and json_body.headers["accept-post"] == "multipart/form-data"


def test_a_sender_is_its_ipv4_address_or_its_ipv6_64_network() -> None:
    assert sender("2001:db8:1:2::1") == sender("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert sender("2001:db8:1:3::1") != sender("2001:db8:1:2::1")
    assert sender("::ffff:198.51.100.7") == sender("198.51.100.7") == "198.51.100.7"
    assert sender("198.51.100.7") != sender("198.51.100.8")
