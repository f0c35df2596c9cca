"""The `xrpyc-device` server: rpyc's classic service, one namespace per connection, one process per kernel.

Any rpyc classic client (and so the xrpyc kernel) can use it exactly as it
uses a stock `rpyc_classic` server or a MaixPy3 board. Safe by default: it
listens on loopback, and anything else needs a token or TLS client
certificates, unless --allow-insecure says otherwise. With a token, each
kernel's connections are served by a worker process of their own (guard.py,
workers.py): kernels sharing the device cannot reach each other's namespaces.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys

from ..loopback import is_loopback
from . import mjpeg, streaming
from .worker import forbid_tracing
from .zygote import Zygote

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
    security = parser.add_argument_group("security")
    security.add_argument(
        "--token",
        help="require this token from clients; prefer --token-file or XRPYC_TOKEN: others see --token in ps",
    )
    security.add_argument("--token-file", help="read the token from this file (first line)")
    security.add_argument("--certfile", help="serve TLS with this certificate (PEM; python -m xrpyc.device.certs)")
    security.add_argument("--keyfile", help="the certificate's private key (PEM)")
    security.add_argument("--client-ca", help="require TLS client certificates signed by this CA (PEM)")
    security.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow a non-loopback address without a token or client certificates",
    )
    security.add_argument("--max-connections", type=int, default=16, help="connections at once (default: %(default)s)")
    security.add_argument(
        "--idle-timeout", type=float, default=3600, help="close connections idle this long, in s (default: %(default)s)"
    )
    security.add_argument(
        "--worker-grace",
        type=float,
        default=300,
        help="keep a kernel's namespace this long, in s, after its connections dropped without a goodbye, "
        "for it to come back (default: %(default)s)",
    )
    streaming.add_arguments(parser)
    return parser


def read_token(args: argparse.Namespace) -> str | None:
    if args.token:
        return args.token
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as token_file:
            return token_file.readline().strip() or None
    return os.environ.get("XRPYC_TOKEN") or None


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.certfile:
        if args.keyfile or args.client_ca:
            raise ValueError("--keyfile and --client-ca need --certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    if args.client_ca:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="xrpyc-device: %(levelname)s %(message)s")

    # Before the token, the TLS key or any thread exists (zygote.py); nothing of
    # ours may be traced by the workers, which run whatever kernels send.
    forbid_tracing()
    zygote = Zygote.start()
    try:
        return _serve(args, zygote)
    finally:
        zygote.stop()


def _serve(args: argparse.Namespace, zygote: Zygote) -> int:
    try:
        token, tls = read_token(args), tls_context(args)
    except (OSError, ValueError, ssl.SSLError) as error:
        print(f"xrpyc-device: {error}", file=sys.stderr)
        return 2
    if not is_loopback(args.host) and token is None and not args.client_ca and not args.allow_insecure:
        print(
            f"xrpyc-device: refusing to serve {args.host} without authentication: whoever connects to an rpyc "
            "server controls this machine. Give --token (or XRPYC_TOKEN, --token-file) or TLS client "
            "certificates (--certfile, --keyfile, --client-ca); or, on a network you trust, --allow-insecure.",
            file=sys.stderr,
        )
        return 2

    from rpyc.utils.classic import SlaveService

    from .guard import DeviceServer, Guard
    from .workers import Workers

    def settings() -> dict:
        # The live view is the dispatcher's: workers forward display.show()'s frames here.
        return {"idle_timeout": args.idle_timeout, "grace": args.worker_grace, "mjpeg_port": mjpeg.serving_port}

    workers = Workers(zygote, settings, lambda slot: server.release(slot))
    try:
        server = DeviceServer(
            SlaveService,
            hostname=args.host,
            port=args.port,
            reuse_addr=True,
            logger=logging.getLogger("xrpyc-device"),
            guard=Guard(token, tls),
            max_connections=args.max_connections,
            workers=workers,
        )
    except OSError as error:
        print(f"xrpyc-device: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    # Listen now, not in server.start(): a client that reads READY may connect at once.
    server._listen()
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
    guards = [name for name, on in (("token", token), ("tls", tls), ("client-certificates", args.client_ca)) if on]
    print(f"READY rpyc://{host}:{port} auth={'+'.join(guards) or 'none'}", flush=True)
    try:
        server.start()
    except KeyboardInterrupt:
        pass
    finally:
        video.stop()
        server.close()
    return 0
