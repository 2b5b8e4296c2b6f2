"""A synthetic security camera for the live-sharing tests: an RTSP server (GStreamer's gst-rtsp-server, through
Debian's python3-gi) that serves, behind a user name and password, the H.264 stream FFmpeg makes of its test pattern
and sends it over RTP on loopback. Run with Debian's /usr/bin/python3 (python3-gi is not in the project's
environment): `rtsp_camera.py RTSP_PORT RTP_PORT PATH`, the user name and the password on its standard input, a
line each (on the command line, any local user would read them: the tests prove no process carries the password);
it prints `ready` once it listens."""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

RTP_CAPS = "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96"


def main() -> None:
    rtsp_port, rtp_port, path = sys.argv[1:4]
    user, password = (sys.stdin.readline().rstrip("\n") for _ in range(2))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(rtsp_port)
    factory = GstRtspServer.RTSPMediaFactory()
    # FFmpeg's RTP, depacketised and packetised again with the parameter sets before each keyframe, so a client
    # joining at any time can decode from the next one. One pipeline shared by every client, as a camera is.
    # The jitter buffer, using the RTP timestamps alone, keeps the encoder's clock as a camera's capture clock:
    # without it each picture would be timed by when its packets reached this process, irregular under load.
    # rtph264pay repeats the parameter sets before every slice of a keyframe, as cameras and recorders built on
    # GStreamer do; the edge agent makes such a keyframe one sample again (edge/canvass_edge/fmp4.py).
    factory.set_launch(
        f'( udpsrc address=127.0.0.1 port={rtp_port} caps="{RTP_CAPS}" ! rtpjitterbuffer mode=none '
        "! rtph264depay ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    role = Gst.Structure.from_string(
        "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    )[0]
    factory.add_role_from_structure(role)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit("could not listen")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
