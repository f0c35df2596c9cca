"""The `xrpyc-device` options and start-up for its MJPEG stream and camera.

MaixPy3 boards serve MJPEG on 18811 next to rpyc on 18812 (`maixpy3_rpycs`), fed by
`display.show()`; so does `xrpyc-device` by default, and `--camera` adds a source
feeding the same stream.
"""

from __future__ import annotations

import argparse
import logging

from . import mjpeg
from .camera import Camera, open_source

log = logging.getLogger("xrpyc-device")


def _port(text: str) -> int | str:
    if text == "auto":
        return text
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return port


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT: {text}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --mjpeg-port, --camera, --fps and --camera-size."""
    parser.add_argument(
        "--mjpeg-port",
        type=_port,
        default=mjpeg.DEFAULT_PORT,
        metavar="PORT",
        help="MJPEG-over-HTTP port for display.show() and --camera frames "
        "(default: %(default)s as on MaixPy3; 0 disables; auto picks a free one)",
    )
    parser.add_argument(
        "--camera",
        default=None,
        metavar="SOURCE",
        help="feed the MJPEG stream from: test (a test pattern), /dev/videoN, a video file (looped) "
        "or a URL (default: none, only display.show())",
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="camera frame rate cap (default: the source's own; test: 15)"
    )
    parser.add_argument(
        "--camera-size",
        type=_size,
        default=(640, 480),
        metavar="WxH",
        help="test pattern size (default: 640x480)",
    )


class Streaming:
    """The running MJPEG server and camera; `url` is None when no server listens."""

    def __init__(self, server: mjpeg.MjpegServer | None, url: str | None, camera: Camera | None) -> None:
        self.server, self.url, self.camera = server, url, camera

    def stop(self) -> None:
        if self.camera is not None:
            self.camera.stop()
        if self.server is not None:
            self.server.stop()


def start(args: argparse.Namespace) -> Streaming:
    """Start what the options ask for. A busy MJPEG port is a warning: rpyc still serves.

    Raises OSError (or ValueError) for a camera source that cannot be found.
    """
    camera = None
    if args.camera:
        camera = Camera(open_source(args.camera, width=args.camera_size[0], height=args.camera_size[1]), fps=args.fps)
    server, url = None, None
    if args.mjpeg_port != 0:
        server = mjpeg.MjpegServer()
        try:
            _, port = server.start(args.host, 0 if args.mjpeg_port == "auto" else args.mjpeg_port)
            url = f"http://{args.host}:{port}/"
        except OSError as error:
            log.warning(
                "no MJPEG stream: cannot listen on %s:%s: %s", args.host, args.mjpeg_port, error.strerror or error
            )
            server = None
    if camera is not None:
        camera.start()
    return Streaming(server, url, camera)
