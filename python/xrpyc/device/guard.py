"""Who may use an xrpyc-device: TLS, token authentication, a connection limit, idle timeouts."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any

from rpyc.utils.authenticators import AuthenticationError
from rpyc.utils.server import ThreadedServer

from ..handshake import busy, challenge

log = logging.getLogger("xrpyc-device")
HANDSHAKE_TIMEOUT = 10.0  # s a new connection gets to finish TLS and the token exchange


class Guard:
    """An rpyc authenticator: TLS first (if configured), then the token challenge."""

    def __init__(self, token: str | None, tls: ssl.SSLContext | None) -> None:
        self._token = token
        self._tls = tls

    def __call__(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        host, port = sock.getpeername()[:2]
        peer = f"{host}:{port}"
        sock.settimeout(HANDSHAKE_TIMEOUT)
        credentials = None
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
                credentials = sock.getpeercert() or None
            if self._token is not None and not challenge(sock, self._token):
                log.warning("refused %s: wrong token", peer)  # never the token itself
                raise AuthenticationError("wrong token")
        except (OSError, ssl.SSLError) as error:
            log.warning("refused %s: %s", peer, error)
            raise AuthenticationError(str(error)) from None
        sock.settimeout(None)
        return sock, credentials


class DeviceServer(ThreadedServer):
    """rpyc's threaded server with a cap on connections and on idle time.

    Each connection has its own thread and namespace, so a client stuck in an
    endless loop holds only its own thread.
    """

    def __init__(self, *args: Any, max_connections: int, idle_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)

    def _authenticate_and_serve_client(self, sock: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("refused %s: %d connections already", sock.getpeername()[:2], self.max_connections)
            try:
                busy(sock, self.max_connections)
            except OSError:
                pass
            sock.close()
            self.clients.discard(sock)
            return
        try:
            super()._authenticate_and_serve_client(sock)
        finally:
            self._slots.release()

    def _handle_connection(self, conn: Any) -> None:
        last = time.monotonic()
        while not conn.closed:
            try:
                if conn.serve(1.0):
                    last = time.monotonic()
                elif time.monotonic() - last > self.idle_timeout:
                    log.info("closing a connection idle for %.0f s", self.idle_timeout)
                    break
            except EOFError:
                break
        conn.close()
