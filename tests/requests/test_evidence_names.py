"""Evidence file names and multipart bodies: any name an owner's device gives is accepted, cleaned for use (no
control characters, line breaks or path separators; bounded length) with the name as sent kept as data only, and
downloads with an RFC 6266 / RFC 8187 Content-Disposition (`filename*=UTF-8''…` and an ASCII fallback). A body
cut short before its closing boundary, a malformed one, a boundary over RFC 2046's 70 characters or part headers
too large are refused with problems, never a 500, and store nothing."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx

from services.requests_api.evidence import clean_filename
from tests.conftest import Suite
from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner, stored_evidence_texts
from tests.support import Db

PROBLEM = "application/problem+json"
LONG = "к" * 600 + "🎥" * 200 + "x" * 196 + ".mp4"  # 1,000 characters


def _accepted(flow: Flow, new_owner: NewOwner) -> tuple[dict[str, Any], Owner]:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    r = flow.client.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    return req, owner


def _body(disposition: bytes, content: bytes, boundary: bytes = b"names-test", close: bool = True) -> bytes:
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; ' + disposition + b"\r\n"
        b"Content-Type: video/mp4\r\n\r\n" + content
    )
    return body + (b"\r\n--" + boundary + b"--\r\n" if close else b"")


def _headers(owner: Owner, boundary: str = "names-test") -> dict[str, str]:
    return {**owner.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}


def _objects(suite: Suite) -> set[Path]:
    return set((Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "objects").glob("??/??/*"))


def test_any_name_is_cleaned_kept_as_sent_and_downloads_with_an_rfc_8187_disposition(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    req, owner = _accepted(flow, new_owner)
    url = f"/v1/owner/evidence/{req['id']}"
    cases = [
        ("видео-🎥.mp4", "видео-🎥.mp4"),
        ("камера у входа.mp4", "камера у входа.mp4"),
        ("监控录像 2026-11-22.mp4", "监控录像 2026-11-22.mp4"),
        ("防犯カメラ🎞️.mov", "防犯カメラ🎞️.mov"),
        ('the "front" door\'s cam.mp4', 'the "front" door\'s cam.mp4'),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\clip.mp4", "clip.mp4"),
        ("evil\r\nX-Injected: yes.mp4", "evil X-Injected: yes.mp4"),
        ("nul\x00and\x1bescape.mp4", "nul and escape.mp4"),
        ("\u202egnp.exe.mp4", "gnp.exe.mp4"),
        ("100% cámara.mp4", "100% cámara.mp4"),
    ]
    for i, (sent, clean) in enumerate(cases):
        content = f"clip {i} {sent}".encode()
        disposition = b"filename*=UTF-8''" + quote(sent, safe="").encode()
        up = flow.client.post(url, content=_body(disposition, content), headers=_headers(owner))
        assert up.status_code == 201, (sent, up.text)
        assert up.json()["filename"] == clean
        stored = stored_evidence_texts(db, up.json()["id"])
        assert stored["filename"] == clean
        assert stored["original_filename"] == sent.replace("\x00", "\ufffd")
        down = flow.client.get(f"/v1/evidence/{up.json()['id']}/content", headers=flow.inv())
        assert down.status_code == 200, (sent, down.text)
        assert hashlib.sha256(down.content).hexdigest() == up.json()["sha256"]
        disposition_out = down.headers["content-disposition"]
        assert disposition_out.isascii() and "\r" not in disposition_out and "\n" not in disposition_out
        exact = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition_out)
        assert exact is not None and unquote(exact.group(1), errors="strict") == clean
        fallback = re.search(r'filename="([^"]*)"', disposition_out)
        assert fallback is not None and fallback.group(1).isascii() and "%" not in fallback.group(1)

    # A name of 1,000 characters, sent the way browsers send names (UTF-8 as is): bounded, extension kept.
    up = flow.client.post(url, files={"file": (LONG, b"long name", "video/mp4")}, headers=owner.headers)
    assert up.status_code == 201, up.text
    assert len(up.json()["filename"]) == 255 and up.json()["filename"].endswith(".mp4")
    assert stored_evidence_texts(db, up.json()["id"])["original_filename"] == LONG
    assert flow.client.get(f"/v1/evidence/{up.json()['id']}/content", headers=flow.inv()).status_code == 200
    encoded = b"filename*=UTF-8''" + quote(LONG, safe="").encode()  # the same name, percent-encoded
    up = flow.client.post(url, content=_body(encoded, b"long name 2"), headers=_headers(owner))
    assert up.status_code == 201, up.text
    assert up.json()["filename"] == LONG[:251] + ".mp4"

    # A name that is nothing but a path: no name; the download names the item.
    up = flow.client.post(url, files={"file": ("../", b"no name", "video/mp4")}, headers=owner.headers)
    assert up.status_code == 201 and up.json()["filename"] is None
    down = flow.client.get(f"/v1/evidence/{up.json()['id']}/content", headers=flow.inv())
    assert down.status_code == 200 and up.json()["id"] in down.headers["content-disposition"]


def test_a_body_cut_short_or_malformed_is_refused_and_stores_nothing(
    flow: Flow, new_owner: NewOwner, suite: Suite, db: Db
) -> None:
    req, owner = _accepted(flow, new_owner)
    url = f"/v1/owner/evidence/{req['id']}"
    before = _objects(suite)
    content = os.urandom(200_000)
    bad: list[tuple[bytes, dict[str, str]]] = [
        (_body(b'filename="cut.mp4"', content, close=False), _headers(owner)),  # no closing boundary
        (_body(b'filename="cut.mp4"', content)[:-10], _headers(owner)),  # cut inside it
        (b"this is not a multipart body at all", _headers(owner)),
        (_body(b'filename="x.mp4"', content, boundary=b"other"), _headers(owner)),  # another boundary
    ]
    for body, headers in bad:
        r = flow.client.post(url, content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == PROBLEM
    assert not db.fetchval("SELECT count(*) FROM requests.evidence WHERE request_id = $1", req["id"])
    assert _objects(suite) == before
    assert not list((Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "tmp").glob("*.part"))
    whole = flow.client.post(url, content=_body(b'filename="whole.mp4"', content), headers=_headers(owner))
    assert whole.status_code == 201 and whole.json()["size_bytes"] == len(content)


def test_an_oversized_boundary_part_header_or_field_gets_a_problem_not_a_500(
    flow: Flow, new_owner: NewOwner
) -> None:
    req, owner = _accepted(flow, new_owner)
    url = f"/v1/owner/evidence/{req['id']}"
    boundary = "b" * 5000
    r = flow.client.post(
        url,
        content=_body(b'filename="a.mp4"', b"abc", boundary=boundary.encode()),
        headers=_headers(owner, boundary),
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
    huge = b'filename="' + b"a" * 100_000 + b'.mp4"'
    r = flow.client.post(url, content=_body(huge, b"abc"), headers=_headers(owner))
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
    long_field = flow.client.post(
        url,
        files={"file": ("a.mp4", b"abc", "video/mp4")},
        data={"description": "д" * 1500},
        headers=owner.headers,
    )
    assert long_field.status_code == 413 and long_field.headers["content-type"] == PROBLEM, long_field.text
    assert long_field.json()["errors"][0]["pointer"] == "/body/description"
    ok_boundary = "b" * 70
    r = flow.client.post(
        url,
        content=_body(b'filename="a.mp4"', b"abc", boundary=ok_boundary.encode()),
        headers=_headers(owner, ok_boundary),
    )
    assert r.status_code == 201, r.text


def test_an_upload_sent_by_a_browser_form_names_the_file_in_any_script(
    flow: Flow, new_owner: NewOwner
) -> None:
    req, owner = _accepted(flow, new_owner)
    with httpx.Client(base_url=str(flow.client.base_url), timeout=30) as c:
        up = c.post(
            f"/v1/owner/evidence/{req['id']}",
            files={"file": ("видео-🎥.mp4", b"v" * 100, "video/mp4")},
            headers=owner.headers,
        )
        assert up.status_code == 201, up.text
        down = c.get(f"/v1/evidence/{up.json()['id']}/content", headers=flow.inv())
    assert down.status_code == 200
    assert (
        "filename*=UTF-8''%D0%B2%D0%B8%D0%B4%D0%B5%D0%BE-%F0%9F%8E%A5.mp4"
        in down.headers["content-disposition"]
    )


def test_a_file_name_in_a_charset_rfc_8187_does_not_allow_is_ignored_not_a_500(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    """Only UTF-8 and ISO-8859-1 name a file (RFC 8187): another codec's name (Python's unicode_escape or UTF-7
    make lone surrogates, or NUL) is ignored, and the upload is stored under the plain name, or none."""
    req, owner = _accepted(flow, new_owner)
    url = f"/v1/owner/evidence/{req['id']}"
    for i, star in enumerate(
        [
            b"unicode_escape''%5Cud800.mp4",
            b"UTF-7''%2B2AA-.mp4",
            b"raw_unicode_escape''%5Cudfff.mp4",
            b"utf-16-le''%00%D8.%00m%00",
            b"unicode_escape''%5Cx00evil.mp4",
        ]
    ):
        up = flow.client.post(
            url, content=_body(b"filename*=" + star, f"odd charset {i}".encode()), headers=_headers(owner)
        )
        assert up.status_code == 201, (star, up.text)
        assert up.json()["filename"] is None, star
        plain = flow.client.post(
            url,
            content=_body(b'filename="plain.mp4"; filename*=' + star, f"with plain {i}".encode()),
            headers=_headers(owner),
        )
        assert plain.status_code == 201 and plain.json()["filename"] == "plain.mp4", (star, plain.text)
    latin = flow.client.post(
        url, content=_body(b"filename*=ISO-8859-1''c%E1mara.mp4", b"latin-1 name"), headers=_headers(owner)
    )
    assert latin.status_code == 201 and latin.json()["filename"] == "cámara.mp4", latin.text
    assert stored_evidence_texts(db, latin.json()["id"])["original_filename"] == "cámara.mp4"


def test_a_cleaned_file_name_holds_no_lone_surrogate() -> None:
    assert clean_filename("a\ud800b\udfff.mp4") == "ab.mp4"
    assert clean_filename("\ud800") is None
