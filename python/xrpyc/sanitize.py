"""What of a device's rich output may reach the browser.

JupyterLab treats a running kernel's output as trusted: HTML from it is
rendered unsanitized, `<script>` in it runs, and application/javascript is
executed, with the user's access to the Jupyter server. A device is a remote
machine (a shared lab board, anything listening on an address): what it sends
is untrusted input. So unless the user marked the device trusted
(`$connect(..., trusted=True)`, `"trusted": true` in the devices file), a
device's bundle is cut down to what cannot run code:

- kept as sent: text/plain, application/json, text/latex, images (base64);
- text/html: cleaned by nh3 (the Rust ammonia sanitizer) with an allowlist
  close to JupyterLab's own sanitizer (tables, inline styles of layout and
  colour: pandas frames look right; no scripts, event handlers, iframes,
  forms, <style>, javascript: URLs);
- image/svg+xml: rebuilt from its XML tree with only drawing elements and no
  event handlers or outside links (JupyterLab shows SVG in an <img>, where
  scripts do not run, but other frontends put it into the page);
- text/markdown: kept only when it cannot carry HTML or a script URL (the
  frontend renders raw HTML in markdown as HTML), else dropped;
- a widget view (application/vnd.jupyter.widget-view+json): kept only when it
  shows a widget the caller allows (`view_allowed`: the device's own, whose
  messages were checked as they came, widgettrust.py), else dropped;
- everything else (application/javascript, Vega, PDF, unknown types a
  frontend extension might execute): dropped.

text/plain always remains, so something is shown. Metadata is not taken
from devices at all (the kernel publishes none for their bundles), so a
device cannot ask for `isolated` or other frontend behaviour.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any, Callable

# Shown as the device sent them: nothing in them is executed by a frontend.
SAFE_TYPES = frozenset({"text/plain", "application/json", "text/latex"})
# A display of a widget: {"model_id": comm id, ...}; the browser draws that model, whichever device made it.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})

# HTML elements of JupyterLab's sanitizer allowlist, less the interactive ones
# (forms, inputs, buttons) and media that loads outside documents.
HTML_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
        "caption", "center", "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn", "div",
        "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hgroup", "hr", "i", "img", "ins", "kbd", "label", "li", "mark", "meter", "nav", "nobr", "ol", "p", "pre",
        "progress", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span", "strike", "strong", "sub",
        "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var",
        "wbr",
    }
)  # fmt: skip
_TABLE_CELL = {"abbr", "align", "bgcolor", "colspan", "headers", "height", "nowrap", "rowspan", "scope", "valign",
               "width"}  # fmt: skip
HTML_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "dir", "hidden", "lang", "style", "title"},
    "a": {"href", "hreflang"},
    "blockquote": {"cite"},
    "col": {"align", "span", "valign", "width"},
    "colgroup": {"align", "span", "valign", "width"},
    "data": {"value"},
    "del": {"cite", "datetime"},
    "details": {"open"},
    "div": {"align"},
    "font": {"color", "face", "size"},
    "h1": {"align"}, "h2": {"align"}, "h3": {"align"}, "h4": {"align"}, "h5": {"align"}, "h6": {"align"},
    "hr": {"align", "noshade", "size", "width"},
    "img": {"align", "alt", "border", "height", "src", "width"},
    "ins": {"cite", "datetime"},
    "li": {"type", "value"},
    "meter": {"high", "low", "max", "min", "optimum", "value"},
    "ol": {"reversed", "start", "type"},
    "p": {"align"},
    "progress": {"max", "value"},
    "q": {"cite"},
    "table": {"align", "bgcolor", "border", "cellpadding", "cellspacing", "frame", "rules", "summary", "width"},
    "tbody": {"align", "valign"}, "tfoot": {"align", "valign"}, "thead": {"align", "valign"},
    "td": _TABLE_CELL, "th": _TABLE_CELL,
    "time": {"datetime"},
    "tr": {"align", "bgcolor", "valign"},
}  # fmt: skip
# Inline style properties kept: JupyterLab's list, less those that take a url()
# (background, background-image, list-style...) or lift content out of the
# output area over the rest of the page (position, z-index, transform).
HTML_STYLES = frozenset(
    {
        "background-color", "border", "border-bottom", "border-bottom-color", "border-bottom-style",
        "border-bottom-width", "border-collapse", "border-color", "border-left", "border-left-color",
        "border-left-style", "border-left-width", "border-radius", "border-right", "border-right-color",
        "border-right-style", "border-right-width", "border-spacing", "border-style", "border-top",
        "border-top-color", "border-top-style", "border-top-width", "border-width", "box-sizing", "caption-side",
        "color", "display", "empty-cells", "font", "font-family", "font-size", "font-style", "font-variant",
        "font-weight", "height", "letter-spacing", "line-height", "list-style-type", "margin", "margin-bottom",
        "margin-left", "margin-right", "margin-top", "max-height", "max-width", "min-height", "min-width",
        "opacity", "overflow", "overflow-wrap", "overflow-x", "overflow-y", "padding", "padding-bottom",
        "padding-left", "padding-right", "padding-top", "table-layout", "text-align", "text-decoration",
        "text-indent", "text-overflow", "text-transform", "vertical-align", "white-space", "width", "word-break",
        "word-spacing", "word-wrap",
    }
)  # fmt: skip
# Links and images: the web's schemes (no javascript:, vbscript:); data: only for
# images (filtered below), which embed plots as data:image/png in HTML.
URL_SCHEMES = frozenset({"http", "https", "mailto", "ftp", "data"})

# Only for telling the user why something is missing: the sanitizer decides.
_ACTIVE_HTML = re.compile(
    r"<\s*/?\s*(script|iframe|frame|object|embed|applet|form|input|button|meta|base|link|svg|math)\b"
    r"|\son[a-z]+\s*=|(java|vb)script\s*:",
    re.IGNORECASE,
)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
# Characters browsers drop or ignore inside a URL scheme ("java\tscript:"), and markdown's escapes.
_URL_NOISE = re.compile(r"[\x00-\x20\\]")
# A URL that runs script or holds a document, at the start of a URL (not "metadata:"); the
# text is normalized first (_has_script_url). data: stays allowed for raster images.
_SCRIPT_URL = re.compile(r"(?<![a-z0-9+.\-])(javascript:|vbscript:|data:(?!image/(png|jpeg|gif|webp)[;,]))")


def publishable(
    bundle: tuple, trusted: bool, view_allowed: Callable[[Any], bool] = lambda model_id: False
) -> tuple[dict[str, Any], list[str]]:
    """A device's ((mime, data), ...) as a Jupyter data dict that may be published, and what was
    taken out of it (descriptions for a note to the user; empty when nothing was).
    `view_allowed(model_id)`: whether an untrusted device may show a view of that widget.

    Bytes become base64 and JSON text is parsed, for trusted devices too. Malformed entries (a
    type that is not text, data of the wrong kind, JSON that does not parse) are dropped.
    """
    data: dict[str, Any] = {}
    removed: list[str] = []
    for entry in bundle:
        try:
            mime, value = entry
        except (TypeError, ValueError):
            continue
        if not isinstance(mime, str) or not isinstance(value, (str, bytes)):
            removed.append(f"{str(mime)[:60]} (not text or bytes)")
            continue
        encoded = isinstance(value, bytes)
        if encoded:
            value = base64.b64encode(value).decode("ascii")
        kept = value if trusted else _filter(mime, value, encoded, removed)
        if kept is None:
            continue
        if mime == "application/json" or mime.endswith("+json"):
            try:
                kept = json.loads(kept)
            except ValueError:
                removed.append(f"{mime} (not valid JSON)")
                continue
        if mime == WIDGET_VIEW and not trusted and not (isinstance(kept, dict) and view_allowed(kept.get("model_id"))):
            removed.append(WIDGET_VIEW)  # another device's widget, or none
            continue
        data[mime] = kept
    return data, removed


def _filter(mime: str, value: str, encoded: bool, removed: list[str]) -> str | None:
    """`value` as an untrusted device may show it as `mime`, or None (and why, in `removed`).
    `encoded`: the kernel made `value` from bytes (base64)."""
    if mime in SAFE_TYPES or mime == WIDGET_VIEW:  # a widget view: checked once parsed (publishable)
        return value
    if mime in IMAGE_TYPES:
        # Base64, as the kernel makes it from bytes; other text does not belong in a data: URL.
        if encoded or _BASE64.fullmatch(value):
            return value
        removed.append(f"{mime} (not base64)")
        return None
    if mime == "text/html":
        if _ACTIVE_HTML.search(value):
            removed.append("active HTML")
        return clean_html(value)
    if mime == "image/svg+xml":
        svg, active = clean_svg(value)
        if svg is None:
            removed.append("image/svg+xml (not an SVG document)")
        elif active:
            removed.append("active SVG")
        return svg
    if mime == "text/markdown":
        if "<" in value or _has_script_url(value):
            removed.append("markdown with HTML or script links")
            return None
        return value
    removed.append(mime)
    return None


def _has_script_url(text: str) -> bool:
    """Whether `text` may hold a javascript:, vbscript: or (non-image) data: URL, once markdown's
    backslash escapes, HTML character references and what browsers skip in a scheme are taken out."""
    import html

    return _SCRIPT_URL.search(_URL_NOISE.sub("", html.unescape(text)).lower()) is not None


def clean_html(html: str) -> str:
    """`html` without anything active, by the allowlists above (nh3 is imported on first use: most
    kernels never see HTML, and the kernel stays small)."""
    return _html_cleaner()(html)


@functools.lru_cache(maxsize=1)
def _html_cleaner() -> Callable[[str], str]:
    import nh3

    return functools.partial(
        nh3.clean,
        tags=set(HTML_TAGS),
        # script and style go with their content (a <style> block restyles the whole page).
        clean_content_tags={"script", "style"},
        attributes=HTML_ATTRIBUTES,
        attribute_filter=_only_image_data,
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(HTML_STYLES),
    )


def _only_image_data(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: a data: URL only as an image's source, and only of an image type."""
    url = _URL_NOISE.sub("", value).lower()
    if url.startswith("data:") and not (tag == "img" and attribute == "src" and url.startswith("data:image/")):
        return None
    return value


# -- SVG -----------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# Drawing elements. Not: script, foreignObject (HTML inside), a (links), animate/set
# (they can set an href to javascript:), style (a page-wide stylesheet where a frontend
# inlines the SVG), and any element of another namespace (HTML, metadata's RDF).
SVG_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc", "switch", "path", "rect", "circle", "ellipse",
        "line", "polyline", "polygon", "text", "tspan", "textPath", "clipPath", "mask", "pattern", "marker",
        "linearGradient", "radialGradient", "stop", "image", "filter", "feBlend", "feColorMatrix",
        "feComponentTransfer", "feComposite", "feConvolveMatrix", "feDiffuseLighting", "feDisplacementMap",
        "feDistantLight", "feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR",
        "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology", "feOffset", "fePointLight",
        "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
    }
)  # fmt: skip
# Removed without a note: what matplotlib's SVGs carry and the drawing does not need.
_QUIET_SVG = frozenset({f"{{{SVG_NS}}}metadata", f"{{{SVG_NS}}}style"})
_URL_ATTRIBUTES = frozenset({"href", f"{{{XLINK_NS}}}href", "src"})
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif|webp);", re.IGNORECASE)


def clean_svg(svg: str) -> tuple[str | None, bool]:
    """(`svg` rebuilt with only SVG_ELEMENTS, no event handlers and no links but to its own parts
    or to embedded raster images; True if something active was taken out). (None, False) when it
    is not an SVG document.

    The output is serialized from the parsed tree, never the input passed on: what the browser
    parses is then exactly what was checked (no comments, CDATA or doctype that an HTML parser
    would read differently from an XML one).
    """
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(svg)
    except ElementTree.ParseError:
        return None, False
    if root.tag != f"{{{SVG_NS}}}svg":
        return None, False
    active = _prune(root)
    # Default prefixes (ns0:) would do as well for XML, not for a frontend that inlines the SVG in HTML.
    ElementTree.register_namespace("", SVG_NS)
    ElementTree.register_namespace("xlink", XLINK_NS)
    return ElementTree.tostring(root, encoding="unicode"), active


def _prune(element: Any) -> bool:
    active = False
    for name, value in list(element.attrib.items()):
        local = name.rsplit("}", 1)[-1].lower()
        bad_url = name in _URL_ATTRIBUTES and not (
            value.startswith("#") or (element.tag == f"{{{SVG_NS}}}image" and _IMAGE_DATA.match(value))
        )
        if local.startswith("on") or bad_url or _has_script_url(value):
            del element.attrib[name]
            active = True
    for child in list(element):
        namespace, _, local = str(child.tag).partition("}")
        if namespace == "{" + SVG_NS and local in SVG_ELEMENTS:
            active = _prune(child) or active
        else:
            element.remove(child)
            active = active or child.tag not in _QUIET_SVG
    return active


def shown(text: str) -> str:
    """`text` fit to show: control characters (terminal escapes), invisible
    format characters and lone surrogates written as Python escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
