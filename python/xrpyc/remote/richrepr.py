"""Device-side rich output: the MIME representations of a value, as IPython makes them.

Shipped to the device as source text like agent.py (see __init__.py), it
touches heavy modules (PIL, matplotlib) only when the value
at hand comes from them, and stays compatible with Python 3.6.

A bundle is a tuple of (mime, data) pairs: data is text, or bytes for binary
types (the kernel base64-encodes them). Tuples of str/bytes cross rpyc by
value, in the reply itself.
"""

import io
import os
import sys
from typing import Any, List, Optional, Tuple

Bundle = Tuple[Tuple[str, Any], ...]

# The IPython _repr_*_ methods, most specific first.
_REPR_METHODS = (
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("image/svg+xml", "_repr_svg_"),
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
)
_IMAGE_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
# Above this many pixels, an opaque photo-like image goes out as JPEG: several
# times faster to encode and smaller than PNG (a camera frame, not a chart).
JPEG_ABOVE_PIXELS = 200 * 200


def mime_bundle(value: Any) -> Bundle:
    """All the representations of `value` we can make; text/plain always."""
    bundle = []  # type: List[Tuple[str, Any]]
    # Images first: PIL's own _repr_png_ and _repr_jpeg_ would send both.
    for make in (_from_image, _from_repr_methods):
        try:
            bundle.extend((mime, _portable(data)) for mime, data in make(value))
        except Exception:
            pass  # a broken _repr_*_ or an unreadable image must not hide the text form
        if bundle:
            break
    return tuple(bundle) + (("text/plain", _plain(value)),)


def wire_text(text: str) -> str:
    """`text` as rpyc can send it: a lone surrogate, which UTF-8 cannot carry, is
    escaped (rpyc would fail to encode it and drop the connection)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _portable(data: Any) -> Any:
    """Data that crosses rpyc by value: str (made sendable) and bytes as they are,
    JSON-able structures (application/json) as JSON text, which the kernel parses back."""
    if isinstance(data, str):
        return wire_text(data)
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    import json

    return json.dumps(data)


def _plain(value: Any) -> str:
    try:
        return wire_text(repr(value))
    except Exception as error:
        return wire_text("<{} object; repr() failed: {!r}>".format(type(value).__name__, error))


def _from_repr_methods(value: Any) -> List[Tuple[str, Any]]:
    if isinstance(value, type):
        return []  # a class has the methods, unbound
    found = []
    bundle_method = getattr(value, "_repr_mimebundle_", None)
    if callable(bundle_method):
        result = bundle_method(include=None, exclude=None)
        data = result[0] if isinstance(result, tuple) else result
        found.extend((mime, data) for mime, data in (data or {}).items() if mime != "text/plain")
    for mime, name in _REPR_METHODS:
        method = getattr(value, name, None)
        if callable(method) and mime not in dict(found):
            data = method()
            if isinstance(data, tuple):  # (data, metadata), as IPython allows
                data = data[0]
            if data is not None:
                found.append((mime, data))
    return found


def _from_image(value: Any) -> List[Tuple[str, Any]]:
    """PIL and MaixPy3 images, JPEG/PNG bytes, and paths to image files on the device."""
    if isinstance(value, (bytes, bytearray)):
        mime = _sniff(bytes(value[:8]))
        return [(mime, bytes(value))] if mime else []
    if isinstance(value, str):
        mime = _IMAGE_EXTENSIONS.get(os.path.splitext(value)[1].lower())
        if mime and len(value) < 4096 and os.path.isfile(value):
            with open(value, "rb") as image_file:
                return [(mime, image_file.read())]
        return []
    if hasattr(value, "c_img_private"):
        return [_maix_image(value)]
    if (type(value).__module__ or "").startswith("PIL."):
        return [encode_image(value)]
    return []


def _sniff(head: bytes) -> Optional[str]:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def _maix_image(image: Any) -> Tuple[str, bytes]:
    """A MaixPy3 `_maix_image.Image` (recognised by its c_img_private attribute).

    Its tobytes("jpg") encodes on the board in C, but is right for RGB images
    only (and needs MaixPy3 >= 0.4.9); other modes go through PIL. Its
    convert() works in place, so only ever on a copy.
    """
    if image.mode == "RGB":
        try:
            return ("image/jpeg", image.tobytes("jpg"))
        except TypeError:
            pass  # before 0.4.9: tobytes() takes no format
    if image.mode == "RGB16":
        image = image.copy()
        image.convert("RGB")
    from PIL import Image

    return encode_image(Image.frombytes(image.mode, (image.width, image.height), image.tobytes()))


def encode_image(image: Any) -> Tuple[str, bytes]:
    """A PIL image as (mime, bytes): JPEG for large opaque images, PNG for the rest."""
    buffer = io.BytesIO()
    if image.mode in ("RGB", "L") and image.width * image.height > JPEG_ABOVE_PIXELS:
        image.save(buffer, "JPEG", quality=85)
        return ("image/jpeg", buffer.getvalue())
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
        image = image.convert("RGBA")
    image.save(buffer, "PNG")
    return ("image/png", buffer.getvalue())


# -- matplotlib ------------------------------------------------------------------------

INLINE_BACKEND = "_xrpyc_inline"


class _InlineBackendFinder:
    """Makes the backend module when matplotlib imports it (and not before:
    a device that never plots never imports matplotlib)."""

    def __init__(self, show: Any) -> None:
        self.show = show

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != INLINE_BACKEND:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: Any) -> None:
        return None  # the default module object

    def exec_module(self, module: Any) -> None:
        from matplotlib.backends import backend_agg

        module.FigureCanvas = backend_agg.FigureCanvasAgg
        module.show = self.show


def install_inline_backend(show: Any) -> None:
    """Make `plt.show()` on the device show figures in the notebook.

    Registers a matplotlib backend module (Agg rendering, `show` = `show`) and,
    when matplotlib is not imported yet and no backend is chosen, makes it the
    default through MPLBACKEND, as matplotlib_inline does for ipykernel.
    """
    # By class name: each connection compiles this file anew, so each has its own class.
    if not any(type(finder).__name__ == "_InlineBackendFinder" for finder in sys.meta_path):
        sys.meta_path.append(_InlineBackendFinder(show))
    if "matplotlib" not in sys.modules and not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = "module://" + INLINE_BACKEND


def open_figures() -> List[Any]:
    """pyplot's open figures, if pyplot is in use on the device."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    from matplotlib._pylab_helpers import Gcf  # what plt.get_fignums() reads, without making one current

    return [manager.canvas.figure for manager in Gcf.get_all_fig_managers()]


def figure_bundle(figure: Any) -> Bundle:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return (("image/png", buffer.getvalue()), ("text/plain", _plain(figure)))


def close_figure(figure: Any) -> None:
    sys.modules["matplotlib.pyplot"].close(figure)
