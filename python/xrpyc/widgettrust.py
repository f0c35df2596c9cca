"""What an untrusted device's widget messages may carry to the browser.

JupyterLab's widget manager runs no widget module it was not given, but some
stock models put device text into the page as HTML: HTML and HTMLMath values,
descriptions with description_allow_html, and the Output widget's outputs
(rendered as trusted output). Those go through sanitize.py, as a device's
display output does; a model from any other module than the stock ones, and a
change of a model's module, name or view, is refused.
"""

from __future__ import annotations

from typing import Any, Callable

from .sanitize import clean_html, publishable

STOCK_MODULES = frozenset({"@jupyter-widgets/controls", "@jupyter-widgets/base", "@jupyter-widgets/output"})
HTML_MODELS = frozenset({"HTMLModel", "HTMLMathModel"})
# Views that put their model's value into the page as HTML: only for the models whose value is cleaned as HTML.
HTML_VIEWS = frozenset({"HTMLView", "HTMLMathView"})
IDENTITY = frozenset({"_model_module", "_model_name", "_view_module", "_view_name", "_model_module_version",
                      "_view_module_version"})  # fmt: skip


def model_allowed(state: Any) -> bool:
    """Whether a comm_open's state names a stock model and view, and an HTML view only for an HTML model."""
    return (
        isinstance(state, dict)
        and state.get("_model_module") in STOCK_MODULES
        and state.get("_view_module", "@jupyter-widgets/controls") in STOCK_MODULES | {None}
        and (state.get("_view_name") not in HTML_VIEWS or state.get("_model_name") in HTML_MODELS)
    )


def safe_state(
    model_name: str,
    state: dict[str, Any],
    opening: bool,
    removed: list[str],
    view_allowed: Callable[[Any], bool] = lambda model_id: False,
) -> dict[str, Any]:
    """`state` (of a model named `model_name`) without what would run script in the browser; what was
    changed is described in `removed`. `view_allowed(model_id)`: whether an Output widget may show a view
    of that widget (the device's own)."""
    safe = {}
    for name, value in state.items():
        if name in IDENTITY and not opening:
            removed.append(f"a change of {name}")
            continue
        if name == "description_allow_html" and value:
            removed.append("HTML in a widget's description")
            value = False
        elif name == "value" and model_name in HTML_MODELS:
            # Not text: the browser would still show it as HTML (a list's items joined), uncleaned.
            cleaned = clean_html(value) if isinstance(value, str) else ""
            if cleaned != value:
                removed.append(f"active HTML in a {model_name[: -len('Model')]} widget")
            value = cleaned
        elif name == "outputs" and model_name == "OutputModel":
            value = _safe_outputs(value, removed, view_allowed)
        safe[name] = value
    return safe


# What nbformat's outputs hold, less metadata and transient.
OUTPUT_FIELDS = ("output_type", "name", "text", "data", "execution_count", "ename", "evalue", "traceback")


def _safe_outputs(outputs: Any, removed: list[str], view_allowed: Callable[[Any], bool]) -> list[Any]:
    """An Output widget's outputs, with their data as publishable() lets a device's display output through."""
    if not isinstance(outputs, list):
        return []
    safe = []
    for output in outputs:
        if not isinstance(output, dict):
            continue
        # The output's own fields only; metadata and transient steer renderers: never a device's (sanitize.py).
        output = {key: output[key] for key in OUTPUT_FIELDS if key in output}
        if isinstance(output.get("data"), dict):
            output["metadata"] = {}
            bundle = tuple((mime, _as_text(value)) for mime, value in output["data"].items())
            data, dropped = publishable(bundle, False, view_allowed)
            removed.extend(dropped)
            output["data"] = data
        safe.append(output)
    return safe


def _as_text(value: Any) -> Any:
    import json

    return value if isinstance(value, str) else json.dumps(value)
