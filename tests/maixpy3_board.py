"""A MaixPy3 board stand-in: a release's own Python files, its C parts emulated with Pillow.

Run by tests/maixpy3_releases.py as `python maixpy3_board.py RELEASE_DIR {mjpg|rtsps} VIEW_PORT RPYC_PORT`.
It starts what the board starts: `maix.mjpg.start` (the `maixpy3_rpycs` entry point of every
release) or `maix.utils.rtsps.start` (the legacy video of 0.3.4 to 0.4.3), on 127.0.0.1, and
prints `READY rpyc://127.0.0.1:RPYC_PORT` once both servers listen. Only the board's native
modules are stood in for, and two things the board's older Python and Pillow still had.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
import types

from PIL import Image as PILImage

LCD = (240, 240)  # the size MaixPy3's display module assumes without a panel


def _jpeg(rgb: bytes, width: int, height: int) -> bytes:
    out = io.BytesIO()
    PILImage.frombytes("RGB", (width, height), rgb).save(out, "JPEG", quality=80)
    return out.getvalue()


class _MaixImage:
    """_maix_image.Image: the board's C image type, as far as display and mjpg use it."""

    def __init__(self, picture: PILImage.Image | None = None) -> None:
        self._picture = picture if picture is not None else PILImage.new("RGB", LCD)

    def new(self, mode: str = "RGB", size: tuple = LCD, color: object = 0) -> _MaixImage:
        self._picture = PILImage.new(mode, tuple(size), color)
        return self

    def load(self, data: object, size: tuple | None = None, mode: str = "RGB") -> _MaixImage:
        if isinstance(data, PILImage.Image):
            self._picture = data.convert("RGB")
        else:
            self._picture = PILImage.frombytes(mode, tuple(size or LCD), data)
        return self

    @property
    def width(self) -> int:
        return self._picture.width

    @property
    def height(self) -> int:
        return self._picture.height

    def tobytes(self) -> bytes:
        return self._picture.convert("RGB").tobytes()

    def resize(self, width: int, height: int) -> _MaixImage:
        return _MaixImage(self._picture.resize((width, height)))


class _Display:
    """_maix_display.Display: the LCD; keeps what was drawn last."""

    width, height = LCD

    def __init__(self) -> None:
        self.last = b""

    def draw(self, data: bytes, width: int, height: int) -> None:
        self.last = bytes(data)


def _emulate_native_modules() -> None:
    maix = types.ModuleType("_maix")
    maix.rgb2jpg = _jpeg
    image = types.ModuleType("_maix_image")
    image.Image = _MaixImage
    image.new = lambda mode="RGB", size=LCD, color=0: _MaixImage().new(mode, size, color)
    image.load = lambda data, size=None, mode="RGB": _MaixImage().load(data, size, mode)
    display = types.ModuleType("_maix_display")
    display.Display = _Display
    sys.modules.update({"_maix": maix, "_maix_image": image, "_maix_display": display})
    # The board's Python 3.8 and Pillow < 10 still had these; the releases call them.
    if not hasattr(threading.Thread, "isAlive"):
        threading.Thread.isAlive = threading.Thread.is_alive
    if not hasattr(PILImage, "ANTIALIAS"):
        PILImage.ANTIALIAS = PILImage.LANCZOS


def _announce_when_listening(view: object, rpyc_port: int) -> None:
    """READY once rpyc listens and the view server either listens or has given up (its port was taken)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        thread = view()
        if thread is not None and (thread.server is not None or not thread.is_alive()):
            try:
                socket.create_connection(("127.0.0.1", rpyc_port), timeout=0.2).close()
            except OSError:
                pass
            else:
                print(f"READY rpyc://127.0.0.1:{rpyc_port}", flush=True)
                return
        time.sleep(0.05)


def main() -> None:
    release, view, view_port, rpyc_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.path.insert(0, release)
    _emulate_native_modules()
    if view == "mjpg":
        from maix import mjpg

        def server() -> object:
            return mjpg.MjpgSrv

        def start() -> None:
            mjpg.start(host="127.0.0.1", mjpg=view_port, rpyc=rpyc_port)
    else:
        from maix.utils import rtsps

        def server() -> object:
            return rtsps.RtspVar

        def start() -> None:
            rtsps.start(host="127.0.0.1", rtsp=view_port, rpyc=rpyc_port)

    threading.Thread(target=_announce_when_listening, args=(server, rpyc_port), daemon=True).start()
    start()


if __name__ == "__main__":
    main()
