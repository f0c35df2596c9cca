"""The `xrpyc-device` server: rpyc's classic service, one namespace per connection.

Any rpyc classic client (and so the xrpyc kernel) can use it exactly as it
uses a stock `rpyc_classic` server or a MaixPy3 board.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from . import streaming

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18812


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xrpyc-device",
        description="Serve this machine's Python to xrpyc kernels (an rpyc classic server).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0 picks a free one)"
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    streaming.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="xrpyc-device: %(levelname)s %(message)s")

    from rpyc.utils.classic import SlaveService
    from rpyc.utils.server import ThreadedServer

    try:
        server = ThreadedServer(
            SlaveService,
            hostname=args.host,
            port=args.port,
            reuse_addr=True,
            logger=logging.getLogger("xrpyc-device"),
        )
    except OSError as error:
        print(f"xrpyc-device: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    host, port = server.listener.getsockname()[:2]
    try:
        video = streaming.start(args)
    except (OSError, ValueError) as error:
        print(f"xrpyc-device: camera {args.camera}: {error}", file=sys.stderr)
        server.close()
        return 1
    # SIGTERM (systemd, the kernel stopping its private device) ends the
    # server loop like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    if video.url:
        print(f"MJPEG {video.url}", flush=True)
    print(f"READY rpyc://{host}:{port}", flush=True)
    try:
        server.start()
    except KeyboardInterrupt:
        pass
    finally:
        video.stop()
        server.close()
    return 0
