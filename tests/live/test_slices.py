"""A camera whose pictures are each coded as several slices, served by an RTSP server that repeats the parameter
sets before every slice of a keyframe (the synthetic camera: x264's slices, GStreamer's rtph264pay), reaches the
agency's viewer through the real agent and relay as one sample per picture: every sample holds all of its
picture's slices, lasts one picture, and decodes without an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.conftest import Token
from tests.live.conftest import FFMPEG, FRAME_RATE, SLICES, MakeSite, investigator, open_window
from tests.live.mp4 import IDR, PPS, SPS, boxes, complete, samples
from tests.live.test_relay import Watch, viewing
from tests.support import Server, eventually

TICKS = 90_000 // FRAME_RATE  # a picture's duration in the track's timescale (RTP's 90 kHz clock)
DECODING_ERRORS = ("concealing", "error while decoding", "corrupt decoded frame", "decode_slice_header error")


def whole_fragments(watch: Watch) -> int:
    return sum(kind == b"mdat" for kind, _, _ in boxes(bytes(watch.data)))


def test_a_camera_coding_each_picture_as_several_slices_reaches_the_viewer_as_one_whole_picture_per_sample(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, tmp_path: Path
) -> None:
    s = site()
    open_window(registry, s)
    r = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert r.status_code == 201, r.text
    watch = Watch(relay, r.json())
    # Two whole fragments (a fragment's header may have come without the rest of it yet).
    assert eventually(lambda: whole_fragments(watch) >= 2, timeout=30), (watch.status, len(watch.data))
    watch.stop()
    stream = complete(bytes(watch.data))
    got = samples(stream)
    assert len(got) >= 2 * FRAME_RATE - 2, len(got)

    starts = [p.slice_starts() for p in got]
    assert all(len(x) == SLICES and x[0] == 0 and x == sorted(set(x)) for x in starts), starts[:3]
    # Each fragment starts with its keyframe, whose one sample holds the parameter sets once and then every slice.
    for fragment in sorted({p.fragment for p in got}):
        pictures = [p for p in got if p.fragment == fragment]
        assert [p.keyframe for p in pictures] == [True] + [False] * (len(pictures) - 1)
        assert pictures[0].types() == [SPS, PPS] + [IDR] * SLICES, pictures[0].types()
    # Every sample lasts one picture (a keyframe written one sample per slice has samples of a tick).
    durations = [p.duration for p in got]
    assert all(abs(d - TICKS) <= 2 for d in durations), durations

    video = tmp_path / "watched.mp4"
    video.write_bytes(stream)
    decoded = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "verbose", "-i", str(video), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    errors = [line for line in decoded.stderr.splitlines() if any(e in line for e in DECODING_ERRORS)]
    assert not errors, errors[:5]
    assert f"{len(got)} frames decoded" in decoded.stderr, decoded.stderr[-600:]
