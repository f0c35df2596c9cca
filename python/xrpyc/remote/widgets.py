"""The common Jupyter widgets for devices without ipywidgets (MaixPy3 boards: Python 3.8, no pip).

Shipped to the device as source text like agent.py (see __init__.py). Where
ipywidgets cannot be imported, `import ipywidgets` gives these classes:
IntSlider, FloatSlider, Button, Checkbox, Dropdown, Text, Label, HBox, VBox,
with observe(), on_click() and value sync both ways. They speak ipywidgets 8's
protocol (2.1.0; @jupyter-widgets/controls and base 2.0.0 models), so the
stock JupyterLab widget manager draws them; their comms go through comms.py.
"""

import os
import sys
from typing import Any, Callable, Dict, List

from .comms import CONTROL_TARGET, _shared, current_owner

PROTOCOL = "2.1.0"
CONTROLS, BASE = "@jupyter-widgets/controls", "@jupyter-widgets/base"
MODULE_VERSION = "2.0.0"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
REFERENCE = "IPY_MODEL_"


class Change(dict):
    """What an observer gets: change["new"] or change.new, as ipywidgets' Bunch."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Model:
    """A widget model: its synced attributes (`_defaults`) live in the notebook's widget manager too."""

    _model_name = "WidgetModel"
    _model_module = BASE
    _view_name = None  # type: Any
    _view_module = CONTROLS
    _defaults = {}  # type: Dict[str, Any]

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise TypeError("{}() got unexpected arguments: {}".format(type(self).__name__, ", ".join(sorted(unknown))))
        state = dict(self._defaults)
        state.update(kwargs)
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "_observers", [])  # (handler, names or None)
        object.__setattr__(self, "model_id", os.urandom(16).hex())
        object.__setattr__(self, "_owner", current_owner())
        _shared().comm_objects[self.model_id] = self
        self._send("comm_open", {"state": self.get_state(), "buffer_paths": []}, "jupyter.widget")

    def get_state(self) -> Dict[str, Any]:
        state = {
            "_model_name": self._model_name,
            "_model_module": self._model_module,
            "_model_module_version": MODULE_VERSION,
            "_view_name": self._view_name,
            "_view_module": self._view_module,
            "_view_module_version": MODULE_VERSION,
        }
        state.update((name, _to_json(value)) for name, value in self._state.items())
        return state

    def __getattr__(self, name: str) -> Any:
        state = object.__getattribute__(self, "_state")
        if name in state:
            return state[name]
        raise AttributeError("{!r} object has no attribute {!r}".format(type(self).__name__, name))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._state:
            raise AttributeError("{!r} object has no synced attribute {!r}".format(type(self).__name__, name))
        if self._change(name, value):
            self._send("comm_msg", {"method": "update", "state": {name: _to_json(value)}, "buffer_paths": []})

    def _change(self, name: str, value: Any) -> bool:
        old = self._state[name]
        self._state[name] = value
        if old == value:
            return False
        change = Change(name=name, old=old, new=value, owner=self, type="change")
        for handler, names in list(self._observers):
            if names is None or name in names:
                handler(change)
        return True

    def observe(self, handler: Callable[[Change], Any], names: Any = None) -> None:
        """Call handler(change) when an attribute in `names` (a name, a list, or all) changes, here or in
        the browser."""
        chosen = None if names is None else (names,) if isinstance(names, str) else tuple(names)
        self._observers.append((handler, chosen))

    def unobserve(self, handler: Callable[[Change], Any], names: Any = None) -> None:
        self._observers[:] = [entry for entry in self._observers if entry[0] is not handler]

    def receive(self, kind: str, data: Any, metadata: Any, buffers: List[bytes]) -> None:
        """A message from the notebook (comms.py's thread)."""
        if kind != "msg" or not isinstance(data, dict):
            return
        method = data.get("method")
        if method == "update" and isinstance(data.get("state"), dict):
            for name, value in data["state"].items():
                if name in self._state and not name.startswith("_"):
                    self._change(name, self._from_json(name, value))
        elif method == "request_state":
            self._send("comm_msg", {"method": "update", "state": self.get_state(), "buffer_paths": []})
        elif method == "custom":
            self._custom(data.get("content"))

    def _from_json(self, name: str, value: Any) -> Any:
        return value

    def _custom(self, content: Any) -> None:
        pass

    def close(self) -> None:
        if _shared().comm_objects.pop(self.model_id, None) is not None:
            self._send("comm_close", {})

    def _send(self, kind: str, data: Dict[str, Any], target: str = "") -> None:
        if self._owner is not None:
            metadata = {"version": PROTOCOL} if kind == "comm_open" else {}
            self._owner.send(kind, self.model_id, target, data, metadata, ())


def _to_json(value: Any) -> Any:
    if isinstance(value, Model):
        return REFERENCE + value.model_id
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    return value


class Layout(Model):
    _model_name, _view_name, _view_module = "LayoutModel", "LayoutView", BASE
    _defaults = {"width": None, "height": None, "display": None, "visibility": None}


def _style(model: str, **defaults: Any) -> type:
    return type(model[: -len("Model")], (Model,), {"_model_name": model, "_model_module": CONTROLS,
                                                    "_view_name": "StyleView", "_view_module": BASE,
                                                    "_defaults": defaults})  # fmt: skip


DescriptionStyle = _style("DescriptionStyleModel", description_width="")
SliderStyle = _style("SliderStyleModel", description_width="", handle_color=None)
ButtonStyle = _style("ButtonStyleModel", button_color=None, font_weight="")
CheckboxStyle = _style("CheckboxStyleModel", description_width="", background=None)
TextStyle = _style("TextStyleModel", description_width="", background=None)
LabelStyle = _style("LabelStyleModel", description_width="", background=None)


class Widget(Model):
    """A widget the notebook shows: with its layout and style models, and a view to display."""

    _model_module = CONTROLS
    _style = DescriptionStyle

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("layout", Layout())
        kwargs.setdefault("style", self._style())
        Model.__init__(self, **kwargs)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, Any]:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.model_id}
        return {VIEW_MIME: view, "text/plain": repr(self)}

    def __repr__(self) -> str:
        shown = ", ".join("{}={!r}".format(name, self._state[name]) for name in ("value", "description")
                          if name in self._state and self._state[name] not in ("", None))  # fmt: skip
        return "{}({})".format(type(self).__name__, shown)


_COMMON = {"layout": None, "style": None, "description": "", "disabled": False, "tooltip": None}


def _control(name: str, view: str, style: type, **defaults: Any) -> type:
    attributes = dict(_COMMON)
    attributes.update(defaults)
    namespace = {"_model_name": name + "Model", "_view_name": view, "_style": style, "_defaults": attributes,
                 "__doc__": "ipywidgets' {}, without ipywidgets.".format(name)}  # fmt: skip
    return type(name, (Widget,), namespace)


_SLIDER = {"min": 0, "max": 100, "step": 1, "orientation": "horizontal", "readout": True,
           "continuous_update": True, "behavior": "drag-tap"}  # fmt: skip
IntSlider = _control("IntSlider", "IntSliderView", SliderStyle, value=0, readout_format="d", **_SLIDER)
FloatSlider = _control("FloatSlider", "FloatSliderView", SliderStyle, value=0.0, readout_format=".2f",
                       **dict(_SLIDER, max=10.0, step=0.1))  # fmt: skip
Checkbox = _control("Checkbox", "CheckboxView", CheckboxStyle, value=False, indent=True)
Text = _control("Text", "TextView", TextStyle, value="", placeholder="", continuous_update=True)
Label = _control("Label", "LabelView", LabelStyle, value="")


class Button(_control("Button", "ButtonView", ButtonStyle, button_style="", icon="")):  # type: ignore[misc]
    """ipywidgets' Button, without ipywidgets: on_click(handler) calls handler(button) for each click."""

    def on_click(self, handler: Callable[["Button"], Any], remove: bool = False) -> None:
        clicks = self.__dict__.setdefault("_clicks", [])
        if remove:
            clicks[:] = [entry for entry in clicks if entry is not handler]
        else:
            clicks.append(handler)

    def click(self) -> None:
        for handler in list(self.__dict__.get("_clicks", ())):
            handler(self)

    def _custom(self, content: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            self.click()


class Dropdown(_control("Dropdown", "DropdownView", DescriptionStyle, _options_labels=(), index=None)):  # type: ignore[misc]
    """ipywidgets' Dropdown, without ipywidgets: options are values or (label, value) pairs; the browser
    knows the labels and the index, and `value` is the chosen option's."""

    def __init__(self, options: Any = (), value: Any = None, **kwargs: Any) -> None:
        pairs = [option if isinstance(option, tuple) else (str(option), option) for option in options]
        object.__setattr__(self, "_values", [option_value for _, option_value in pairs])
        index = self._values.index(value) if value in self._values else (0 if pairs else None)
        Widget.__init__(self, _options_labels=[label for label, _ in pairs], index=index, **kwargs)

    @property
    def value(self) -> Any:
        index = self._state["index"]
        return self._values[index] if index is not None and 0 <= index < len(self._values) else None

    @value.setter
    def value(self, value: Any) -> None:
        self.index = self._values.index(value)

    @property
    def options(self) -> tuple:
        return tuple(self._values)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "value":
            object.__setattr__(self, name, value)  # the property
        else:
            Widget.__setattr__(self, name, value)


class Box(Widget):
    _model_name, _view_name = "BoxModel", "BoxView"
    _defaults = {"layout": None, "style": None, "children": (), "box_style": ""}

    def __init__(self, children: Any = (), **kwargs: Any) -> None:
        Widget.__init__(self, children=tuple(children), **kwargs)

    def _from_json(self, name: str, value: Any) -> Any:
        if name != "children":
            return value
        objects = _shared().comm_objects
        return tuple(objects.get(str(item)[len(REFERENCE) :]) for item in value)


class HBox(Box):
    _model_name, _view_name = "HBoxModel", "HBoxView"


class VBox(Box):
    _model_name, _view_name = "VBoxModel", "VBoxView"


EXPORTED = ("IntSlider", "FloatSlider", "Button", "Checkbox", "Dropdown", "Text", "Label", "HBox", "VBox",
            "Box", "Layout", "Widget")  # fmt: skip


def install_widgets() -> None:
    """`import ipywidgets` gives these where ipywidgets is not installed (once per process: the finder
    comes last, so an installed ipywidgets is always found first)."""
    if not any(type(finder).__name__ == "_WidgetsFallback" for finder in sys.meta_path):
        sys.meta_path.append(_WidgetsFallback(globals()))


class _WidgetsFallback:
    """The last import finder: `ipywidgets` as this module's classes."""

    def __init__(self, namespace: Dict[str, Any]) -> None:
        self._namespace = namespace

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "ipywidgets":
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(name, self)

    def create_module(self, spec: Any) -> Any:
        return None

    def exec_module(self, module: Any) -> None:
        module.__doc__ = "xrpyc's widgets for devices without ipywidgets: " + ", ".join(EXPORTED[:9]) + "."
        module.__version__ = "8.0.0+xrpyc"
        for name in EXPORTED:
            setattr(module, name, self._namespace[name])
        _shared().comm_targets[CONTROL_TARGET] = _open_control


def _open_control(owner: Any, comm_id: str, data: Any, buffers: Any) -> None:
    _shared().comm_objects[comm_id] = _Control(owner, comm_id)


class _Control:
    """ipywidgets' control comm: the browser asks for every widget's state (a page reloaded)."""

    def __init__(self, owner: Any, comm_id: str) -> None:
        self._owner, self._id = owner, comm_id

    def receive(self, kind: str, data: Any, metadata: Any, buffers: List[bytes]) -> None:
        if kind == "msg" and isinstance(data, dict) and data.get("method") == "request_states":
            states = {model.model_id: _described(model) for model in list(_shared().comm_objects.values())
                      if isinstance(model, Model) and model._owner is self._owner}  # fmt: skip
            reply = {"method": "update_states", "states": states, "buffer_paths": {}}
            self._owner.send("comm_msg", self._id, "", reply, {}, ())


def _described(model: Model) -> Dict[str, Any]:
    """A model as ipywidgets' control comm describes it."""
    return {"model_name": model._model_name, "model_module": model._model_module,
            "model_module_version": MODULE_VERSION, "state": model.get_state()}  # fmt: skip
