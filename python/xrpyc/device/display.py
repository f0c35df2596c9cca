"""`display.show(img)` as in MaixPy3, without MaixPy3: frames go to the device's MJPEG stream.

Code written for a MaixPy3 board,

    from maix import display
    display.show(img)

runs on an `xrpyc-device` as

    from xrpyc.device import display
    display.show(img)

and the picture appears on the MJPEG stream (port 18811 by default), which the
kernel can play. MaixPy3's `show()` (maix/display.py) sends a `maix.image.Image` or
JPEG bytes to the stream and draws on the board's LCD; here there is no LCD, and
`show()` takes what makes sense without MaixPy3: PIL images, JPEG (or other image
file) bytes, numpy arrays, and anything shaped like a MaixPy3 image.
"""

from __future__ import annotations

import io
from typing import Any

from . import mjpeg
from .camera import encode_jpeg

# MaixPy3's default display size and mode (maix/display.py, line 3).
_width, _height, _mode = 240, 240, "RGB"
_canvas: Any = None


def config(size: tuple[int, int] = (240, 240)) -> None:
    """Set the display size, that is the size of `as_image()`'s canvas."""
    global _width, _height, _canvas
    if size[0] > 0 and size[1] > 0 and (size[0], size[1]) != (_width, _height):
        _width, _height = size[0], size[1]
        _canvas = None


def width() -> int:
    return _width


def height() -> int:
    return _height


def as_image() -> Any:
    """The display's canvas (a PIL image of the display's size): draw on it, then `show()`."""
    global _canvas
    if _canvas is None:
        from PIL import Image

        _canvas = Image.new(_mode, (_width, _height))
    return _canvas


def show(img: Any = None, box: tuple[int, int] = (0, 0), local_show: bool = True, remote_show: bool = True) -> None:
    """Show `img` (default: the canvas of `as_image()`) on the device's MJPEG stream.

    `img`: a PIL image, JPEG bytes (stored as they are), the bytes of another image
    file Pillow reads (PNG, BMP...), a numpy array (H x W, H x W x 3 RGB or H x W x 4
    RGBA, integers 0-255), or an object with `width`, `height`, `mode` and raw
    `tobytes()` like `maix.image.Image`. The signature is MaixPy3's: `box` (unused
    there too) and `local_show` (there is no LCD) change nothing; `remote_show=False`
    makes `show()` do nothing.
    """
    if not remote_show:
        return
    mjpeg.default_holder.store(to_jpeg(as_image() if img is None else img))


def to_jpeg(img: Any) -> bytes:
    """`img` (anything `show()` takes) as the bytes of a JPEG file."""
    if isinstance(img, (bytes, bytearray, memoryview)):
        data = bytes(img)
        if data.startswith(b"\xff\xd8\xff"):
            return data
        from PIL import Image, UnidentifiedImageError

        try:
            return encode_jpeg(Image.open(io.BytesIO(data)))
        except UnidentifiedImageError:
            raise ValueError(
                "show() takes bytes of an image file (JPEG, PNG...); for raw pixels use "
                "PIL.Image.frombytes(mode, (width, height), data)"
            ) from None
    return encode_jpeg(_to_pil(img))


def _to_pil(img: Any) -> Any:
    from PIL import Image

    if isinstance(img, Image.Image):
        return img
    if hasattr(img, "__array_interface__"):  # numpy, without importing it
        return Image.fromarray(_as_uint8(img))
    if all(hasattr(img, name) for name in ("width", "height", "mode", "tobytes")):
        # MaixPy3's image: tobytes() gives the raw pixels in PIL's layout for L, RGB and RGBA.
        if img.mode not in ("L", "RGB", "RGBA"):
            raise TypeError(f"show() cannot take an image of mode {img.mode!r}: convert it to RGB first")
        return Image.frombytes(img.mode, (img.width, img.height), img.tobytes())
    raise TypeError(f"show() takes a PIL image, image bytes or a numpy array, not {type(img).__name__}")


def _as_uint8(array: Any) -> Any:
    kind = array.dtype.kind
    if kind == "f":
        raise TypeError("show() takes integer pixel values 0-255: scale a float array and use .astype('uint8')")
    if kind == "b":
        return array.astype("uint8") * 255
    if array.dtype.itemsize != 1 or kind != "u":
        return array.clip(0, 255).astype("uint8")
    return array
