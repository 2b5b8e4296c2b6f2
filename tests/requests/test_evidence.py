"""Evidence: streamed to storage and hashed on the way (memory stays flat), capped in size and media type, stored
read-only under its SHA-256, served only to the request's agency with the hash re-checked (a corrupted file is
refused and the failure recorded in its custody chain and the audit trail)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Suite, Token
from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner
from tests.support import Db, start_server


def _accepted(flow: Flow, new_owner: NewOwner) -> tuple[dict[str, Any], Owner]:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    r = flow.client.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    return req, owner


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_upload_streams_to_storage_with_flat_memory_and_its_hash(
    flow: Flow, new_owner: NewOwner, suite: Suite, db: Db
) -> None:
    req, owner = _accepted(flow, new_owner)
    size = 96 * 1024 * 1024
    boundary = "canvass-test-boundary"
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        for _ in range(size // len(block)):
            digest.update(block)
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    pid = suite.requests.process.pid
    before = _peak_rss_kib(pid)
    r = flow.client.post(
        f"/v1/owner/evidence/{req['id']}",
        content=body(),
        headers={**owner.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    grew_mib = (_peak_rss_kib(pid) - before) / 1024
    assert r.json()["sha256"] == digest.hexdigest()
    assert r.json()["size_bytes"] == size
    assert grew_mib < 32, f"peak memory grew {grew_mib:.0f} MiB for a {size >> 20} MiB upload"
    path = (
        Path(suite.env["CANVASS_EVIDENCE_DIR"])
        / "objects"
        / digest.hexdigest()[:2]
        / digest.hexdigest()[2:4]
        / digest.hexdigest()
    )
    assert path.stat().st_size == size
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert not list((Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "tmp").glob("*.part"))
    state = db.fetchval("SELECT state FROM requests.targets WHERE request_id = $1", req["id"])
    assert state == "uploaded"


def test_uploads_need_an_accepted_request_an_allowed_media_type_and_a_file(
    flow: Flow, new_owner: NewOwner
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    url = f"/v1/owner/evidence/{req['id']}"
    files = {"file": ("clip.mp4", b"x" * 1000, "video/mp4")}
    assert flow.client.post(url, files=files, headers=owner.headers).status_code == 409  # not accepted yet
    assert (
        flow.client.post(
            f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
        ).status_code
        == 200
    )
    exe = flow.client.post(
        url, files={"file": ("x.exe", b"MZ" * 100, "application/x-msdownload")}, headers=owner.headers
    )
    assert exe.status_code == 415 and exe.headers["content-type"] == "application/problem+json"
    assert (
        flow.client.post(
            url,
            data={"description": "no file"},
            files={"other": ("a", b"b", "text/plain")},
            headers=owner.headers,
        ).status_code
        == 422
    )
    assert (
        flow.client.post(
            url, content=b"raw", headers={**owner.headers, "Content-Type": "video/mp4"}
        ).status_code
        == 415
    )
    empty = flow.client.post(url, files={"file": ("e.mp4", b"", "video/mp4")}, headers=owner.headers)
    assert empty.status_code == 422
    bad_cam = flow.client.post(
        url, files=files, data={"camera_id": "00000000-0000-4000-8000-000000000000"}, headers=owner.headers
    )
    assert bad_cam.status_code == 422
    ok = flow.client.post(url, files=files, headers=owner.headers)
    assert ok.status_code == 201, ok.text
    again = flow.client.post(url, files={"file": ("two.mp4", b"y" * 10, "video/mp4")}, headers=owner.headers)
    assert again.status_code == 201  # more footage for the same request
    assert flow.act(req["id"], "close").status_code == 200
    assert flow.client.post(url, files=files, headers=owner.headers).status_code == 409


def test_the_size_cap_is_enforced_while_streaming(
    suite: Suite, new_agency, new_owner: NewOwner, auth: Token
) -> None:  # type: ignore[no-untyped-def]
    server = start_server("requests_api", dict(suite.env, CANVASS_EVIDENCE_MAX_BYTES="100000"))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            flow = Flow(c, auth, new_agency())
            req, owner = _accepted(flow, new_owner)
            url = f"/v1/owner/evidence/{req['id']}"
            big = c.post(
                url, files={"file": ("big.mp4", os.urandom(150_000), "video/mp4")}, headers=owner.headers
            )
            assert big.status_code == 413, big.text

            def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
                b = "bnd"
                yield f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n'.encode()
                for _ in range(20):
                    yield os.urandom(10_000)
                yield f"\r\n--{b}--\r\n".encode()

            streamed = c.post(
                url,
                content=chunked(),
                headers={**owner.headers, "Content-Type": "multipart/form-data; boundary=bnd"},
            )
            assert streamed.status_code == 413, streamed.text
            small = c.post(
                url, files={"file": ("s.mp4", os.urandom(50_000), "video/mp4")}, headers=owner.headers
            )
            assert small.status_code == 201
    finally:
        server.stop()
    assert not list((Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "tmp").glob("*.part"))


def test_a_corrupted_file_is_refused_and_recorded_in_its_custody_chain(
    flow: Flow, new_owner: NewOwner, suite: Suite, db: Db, auth: Token
) -> None:
    req, owner = _accepted(flow, new_owner)
    content = os.urandom(50_000)
    up = flow.client.post(
        f"/v1/owner/evidence/{req['id']}",
        files={"file": ("c.mp4", content, "video/mp4")},
        headers=owner.headers,
    )
    assert up.status_code == 201
    eid, sha = up.json()["id"], up.json()["sha256"]
    ok = flow.client.post(f"/v1/evidence/{eid}/verification", headers=flow.inv())
    assert ok.status_code == 200 and ok.json()["intact"] is True

    path = Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "objects" / sha[:2] / sha[2:4] / sha
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00tampered\x00")
    down = flow.client.get(f"/v1/evidence/{eid}/content", headers=flow.inv())
    assert down.status_code == 500
    assert down.headers["content-type"] == "application/problem+json"
    assert "evidence-integrity" in down.json()["type"]
    assert flow.client.post(f"/v1/evidence/{eid}/verification", headers=flow.inv()).status_code == 500

    custody = flow.client.get(f"/v1/evidence/{eid}/custody", headers=flow.inv()).json()
    steps = [(r["action"], r["outcome"]) for r in custody["records"]]
    assert steps == [
        ("upload", "ok"),
        ("verify", "ok"),
        ("download", "hash_mismatch"),
        ("verify", "hash_mismatch"),
        ("custody_export", "hash_mismatch"),
    ]
    assert custody["records"][2]["sha256"] != sha
    assert custody["chain_intact"] is False
    audited = db.fetch(
        "SELECT details->>'access' AS access FROM audit.events WHERE subject_id = $1"
        " AND action = 'evidence.integrity_failure' ORDER BY seq",
        eid,
    )
    assert [a["access"] for a in audited] == ["download", "verify", "custody_export"]
    # The custody chain is append-only in the database, and tampering with it is detected.
    import asyncpg

    try:
        db.execute("UPDATE requests.custody SET outcome = 'ok' WHERE evidence_id = $1", eid)
        raise AssertionError("custody rows must not be updatable")
    except asyncpg.InsufficientPrivilegeError:
        pass
    other = auth("supervisor", "someone-else")
    assert flow.client.post(f"/v1/evidence/{eid}/verification", headers=other).status_code in (403, 404)


def _multipart(disposition: bytes, content: bytes, extra: bytes = b"") -> tuple[bytes, dict[str, str]]:
    boundary = b"canvass-test-boundary"
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; ' + disposition + b"\r\n"
        b"Content-Type: video/mp4\r\n\r\n" + content + b"\r\n" + extra + b"--" + boundary + b"--\r\n"
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def test_a_filename_in_any_script_is_stored_as_given(flow: Flow, new_owner: NewOwner) -> None:
    req, owner = _accepted(flow, new_owner)
    url = f"/v1/owner/evidence/{req['id']}"

    # A browser's (and httpx's) form encoding: the name's UTF-8 bytes as they are; a description too.
    up = flow.client.post(
        url,
        files={"file": ("видео.mp4", b"v" * 100, "video/mp4")},
        data={"description": "Камера у входа — 22:10"},
        headers=owner.headers,
    )
    assert up.status_code == 201, up.text
    assert up.json()["filename"] == "видео.mp4"
    assert up.json()["description"] == "Камера у входа — 22:10"

    # RFC 5987 `filename*` (preferred when given beside a plain fallback), alone, or a Latin-1 name.
    cases = [
        (b"filename=\"video.mp4\"; filename*=UTF-8''%E8%A7%86%E9%A2%91%20%E2%84%961.mp4", "视频 №1.mp4"),
        (b"filename*=utf-8''%D0%B2%D0%B8%D0%B4%D0%B5%D0%BE.mp4", "видео.mp4"),
        (b'filename="caf\xe9.mp4"', "café.mp4"),
        (b"filename=\"plain.mp4\"; filename*=nonsense''%FF.mp4", "plain.mp4"),
    ]
    for i, (disposition, expected) in enumerate(cases):
        body, headers = _multipart(disposition, f"clip {i}".encode())
        r = flow.client.post(url, content=body, headers={**owner.headers, **headers})
        assert r.status_code == 201, (disposition, r.text)
        assert r.json()["filename"] == expected

    listed = flow.client.get(f"/v1/requests/{req['id']}/evidence", headers=flow.inv()).json()["items"]
    assert [e["filename"] for e in listed] == ["видео.mp4"] + [expected for _, expected in cases]
