"""Completion and inspection on the device, in one kernel's live namespace.

Shipped to the device as source text like agent.py (see __init__.py).

Completion uses jedi when the device has it (boards rarely do), after a
lighter completer of its own: names, attributes, modules in imports, dict
keys, paths in strings and keyword arguments. Inspection describes the live
object (signature, docstring, source) and asks jedi only about what cannot be
found at run time.

Each request runs in a thread of its own, and the answer is whatever is ready
when its time budget ends: a `__dir__` that sleeps, a huge directory or
jedi's first run (about a second) delays nobody, and the connection's thread
is free for the next cell at once. Nothing is evaluated but names,
attributes, literals and subscripts of builtin containers by literals; what
runs of the user's code is `__dir__`, properties along an attribute chain,
`keys()` of mappings and `__signature__`.
"""

import ast
import builtins
import inspect
import io
import itertools
import keyword
import os
import re
import sys
import threading
import time
import tokenize
import types
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Tuple

from .richrepr import wire_text

MAX_MATCHES = 1000
MAX_KEYS = 10000  # keys of a mapping looked at
MAX_ENTRIES = 5000  # directory entries looked at
MAX_WORKERS = 4  # requests still running on the device (a __dir__ that sleeps); more get nothing
MODULES_TTL = 60.0  # s before the list of importable modules is read again
STRING_FORM = 200  # characters of str(obj) shown
PRIMARY_SCAN = 300  # characters before a "." searched for the expression it follows
NOTHING = object()

# A completion being built: [start, text, type, signature thunk or None, signature].
Entry = List[Any]
# What complete() answers: (cursor_start, cursor_end, ((text, type, signature), ...)).
Answer = Tuple[int, int, Tuple[Tuple[str, str, str], ...]]

IMPORT = re.compile(r"\s*import\s+(.*)$", re.S)
FROM = re.compile(r"\s*from\s+([\w.]*)$")
FROM_IMPORT = re.compile(r"\s*from\s+([\w.]+)\s+import\s+(.*)$", re.S)
DEFINITION = re.compile(r"\s*(async\s+def|def|class)\s")
# A run of characters that cannot start a string, a comment, a bracket or a line: skipped at once.
PLAIN = re.compile(r"[^'\"#()\[\]{}\\\n]+")
# Node types the expression before a "." can be; an unparenthesised tuple ("a, b.") cannot.
PRIMARY_NODES = tuple(
    getattr(ast, name)
    for name in ("Name", "Attribute", "Subscript", "Call", "List", "Tuple", "Dict", "Set", "Constant")
    + (("Str", "Bytes", "Num", "NameConstant") if sys.version_info < (3, 8) else ())
)


class Introspector:
    """Completion and inspection for one agent: its namespace and its cells' sources."""

    def __init__(self, namespace: Dict[str, Any], cells: Dict[str, List[str]]) -> None:
        self.namespace = namespace
        self._cells = cells
        self._lock = threading.Lock()  # guards _workers
        self._workers = 0
        self._jedi = None  # type: Any  # the module, False when the device has none
        self._modules = None  # type: Optional[Tuple[tuple, float, List[str]]]

    def complete(self, code: str, cursor_pos: int, budget: float) -> Answer:
        """Completions at `cursor_pos`, as ready after at most `budget` seconds."""
        code, cursor = _clamp(code, cursor_pos)
        return self._bounded(budget, (cursor, cursor, ()), self._complete, code, cursor)

    def inspect(self, code: str, cursor_pos: int, detail_level: int, budget: float) -> tuple:
        """((mime, text), ...) describing the object at `cursor_pos`; () when nothing is known."""
        code, cursor = _clamp(code, cursor_pos)
        return self._bounded(budget, (), self._inspect, code, cursor, detail_level)

    def _bounded(self, budget: float, default: Any, work: Callable[..., None], *args: Any) -> Any:
        """What `work(publish, deadline, *args)` published last when it ended or `budget` ran out."""
        box = [default]
        done = threading.Event()
        deadline = time.monotonic() + budget

        def publish(answer: Any) -> None:
            box[0] = answer

        def run() -> None:
            try:
                work(publish, deadline, *args)
            except BaseException:  # the user's __dir__ or property failed, even with SystemExit
                pass  # what was published stands
            finally:
                with self._lock:
                    self._workers -= 1
                done.set()

        with self._lock:
            if self._workers >= MAX_WORKERS:
                return default
            self._workers += 1
        threading.Thread(target=run, name="xrpyc-introspect", daemon=True).start()
        done.wait(budget)
        return box[0]

    def _jedi_module(self) -> Any:
        if self._jedi is None:
            try:
                import jedi

                # jedi is not thread-safe, and all kernels on the device share its process:
                # one lock for all, and a request that finds it taken does without jedi.
                vars(jedi).setdefault("_xrpyc_lock", threading.Lock())
                self._jedi = jedi
            except Exception:  # not installed, or broken: the light completer does
                self._jedi = False
        return self._jedi or None

    # -- completion ----------------------------------------------------------

    def _complete(self, publish: Callable[[Answer], None], deadline: float, code: str, cursor: int) -> None:
        entries = self._light(code, cursor)
        if entries is None:  # in a comment
            return
        publish(_answer(code, cursor, entries))
        _signatures(code, cursor, entries, deadline, publish)
        # jedi knows more (what calls return, what the cell defines before the
        # cursor) but takes longer: its answer replaces this one if in time.
        jedi = self._jedi_module()
        if jedi is not None and jedi._xrpyc_lock.acquire(False):
            try:
                found = _jedi_complete(jedi, self.namespace, code, cursor)
                if found:
                    publish(_answer(code, cursor, found))
                    _signatures(code, cursor, found, deadline, publish)
            finally:
                jedi._xrpyc_lock.release()

    def _light(self, code: str, cursor: int) -> Optional[List[Entry]]:
        """Completions without jedi; None in a comment."""
        line_start, brackets, string_at, quote, comment = _scan(code[:cursor])
        if comment:
            return None
        before = code[line_start:cursor]
        if string_at is not None:
            return self._in_string(code, cursor, line_start, brackets, string_at, quote)
        found = self._imports(before, cursor)
        if found is not None:
            return found
        prefix = re.search(r"\w*$", before).group()
        if prefix[:1].isdigit():
            return []
        start = cursor - len(prefix)
        head = before[: len(before) - len(prefix)]
        if head.endswith("."):
            text = _primary(head[:-1])
            if not text or re.match(r"\d[\d_]*$", text):  # "1." is a number being typed
                return []
            obj = _evaluate(text, self.namespace)
            return [] if obj is NOTHING else _attributes(obj, prefix, start)
        entries = []  # type: List[Entry]
        if brackets:
            opener, at = brackets[-1]
            between = code[at + 1 : start].rstrip()
            if opener == "(" and (not between or between.endswith(",")) and not DEFINITION.match(before):
                entries.extend(_keywords(self._callee(code, line_start, at), prefix, start))
            elif opener == "[" and not between:
                entries.extend(_key_reprs(self._callee(code, line_start, at), prefix, start))
        entries.extend(_names(self.namespace, prefix, start))
        return entries

    def _callee(self, code: str, line_start: int, bracket: int) -> Any:
        """The object before the bracket at `bracket` (a function called, a mapping subscripted)."""
        text = _primary(code[line_start:bracket])
        return _evaluate(text, self.namespace) if text else NOTHING

    def _in_string(
        self, code: str, cursor: int, line_start: int, brackets: list, string_at: int, quote: str
    ) -> List[Entry]:
        """Keys of a mapping after `d["`, else paths (relative to the device's directory)."""
        letters = re.search(r"[A-Za-z]*$", code[line_start:string_at]).group().lower()
        content = code[string_at + len(quote) : cursor]
        closed = code.startswith(quote, cursor)  # the editor closed the string already
        if brackets and brackets[-1][0] == "[" and not code[brackets[-1][1] + 1 : string_at - len(letters)].strip():
            keys = _keys(self._callee(code, line_start, brackets[-1][1]))
            if keys is not None:
                if "b" in letters or "f" in letters:
                    return []
                end = "" if closed else quote
                return [
                    [string_at, quote + key + end, "dict key", None, ""]
                    for key in keys
                    if isinstance(key, str) and key.startswith(content) and quote not in key and "\\" not in key
                ]
        return _paths(content, quote, closed, cursor)

    def _imports(self, before: str, cursor: int) -> Optional[List[Entry]]:
        """Modules after `import` and `from`, and a module's names after `from x import`; None elsewhere."""
        match = FROM_IMPORT.match(before)
        if match:
            item = match.group(2).replace("(", " ").split(",")[-1].strip()
            if match.group(1).startswith(".") or not re.match(r"\w*$", item):
                return []
            return self._module_members(match.group(1), item, cursor - len(item))
        match = FROM.match(before) or IMPORT.match(before)
        if match is None:
            return None
        item = match.group(1).split(",")[-1].strip()
        if item.startswith(".") or not re.match(r"[\w.]*$", item):
            return []  # relative imports, "import x as y"
        package, _, prefix = item.rpartition(".")
        start = cursor - len(prefix)
        if package:
            return self._module_members(package, prefix, start, modules_only=True)
        return [[start, name, "module", None, ""] for name in self._module_names() if _shown(name, prefix)]

    def _module_members(self, name: str, prefix: str, start: int, modules_only: bool = False) -> List[Entry]:
        """Submodules of package `name`, and its other names unless `modules_only`; imports it, as IPython does."""
        import importlib
        import pkgutil

        try:
            module = importlib.import_module(name)
        except BaseException:  # anything an import can raise, SystemExit included
            return []
        kinds = {}  # type: Dict[str, Tuple[str, Any]]
        for info in pkgutil.iter_modules(getattr(module, "__path__", None) or []):
            kinds[info[1]] = ("module", NOTHING)
        for attr, value in list(vars(module).items()):
            if not modules_only or isinstance(value, types.ModuleType):
                kinds.setdefault(attr, (_kind(value), value))
        return _entries(kinds, prefix, start)

    def _module_names(self) -> List[str]:
        """Top-level modules importable on the device (cached: reading sys.path takes a while)."""
        key = tuple(sys.path)
        cached = self._modules
        if cached is not None and cached[0] == key and time.monotonic() - cached[1] < MODULES_TTL:
            return cached[2]
        import pkgutil

        names = set(sys.builtin_module_names)
        names.update(info[1] for info in pkgutil.iter_modules())
        self._modules = (key, time.monotonic(), sorted(names))
        return self._modules[2]

    # -- inspection ----------------------------------------------------------

    def _inspect(self, publish: Callable[[tuple], None], deadline: float, code: str, cursor: int, detail: int) -> None:
        name, end = _token_at(code, cursor)
        if not name:
            return
        obj = _evaluate(name, self.namespace)
        if obj is not NOTHING:
            text = _describe(obj, name, detail, self._cell_origin)  # type: Optional[str]
        else:
            # Not found at run time (an expression, a name the cell has not defined yet): what jedi infers.
            text = None
            jedi = self._jedi_module()
            if jedi is not None and jedi._xrpyc_lock.acquire(False):
                try:
                    text = _jedi_describe(jedi, self.namespace, code, end)
                finally:
                    jedi._xrpyc_lock.release()
        if text:
            publish((("text/plain", wire_text(text)),))

    def _cell_origin(self, obj: Any) -> Optional[Tuple[str, str]]:
        """(cell, source) of a function, method or class defined in one of this kernel's cells.

        Cells are not in the device's linecache (agent.py keeps them apart), so
        inspect.getsource cannot find them.
        """
        if isinstance(obj, type):
            for member in vars(obj).values():
                found = self._cell_block(getattr(member, "__func__", member), "class " + obj.__name__)
                if found:
                    return found
            return None
        return self._cell_block(inspect.unwrap(getattr(obj, "__func__", obj)), None)

    def _cell_block(self, function: Any, header: Optional[str]) -> Optional[Tuple[str, str]]:
        """(cell, the block that defines `function` there, or the `header` block enclosing it)."""
        code = getattr(function, "__code__", None)
        if code is None or code.co_filename not in self._cells:
            return None
        lines = [line + "\n" for line in self._cells[code.co_filename]]
        first = code.co_firstlineno - 1
        if header is not None:
            pattern = re.compile(r"\s*" + re.escape(header) + r"\b")
            first = next((i for i in range(first, -1, -1) if pattern.match(lines[i])), -1)
            if first < 0:
                return None
        return (code.co_filename, "".join(inspect.getblock(lines[first:])))


# -- the code around the cursor ------------------------------------------------


def _clamp(code: Any, cursor_pos: Any) -> Tuple[str, int]:
    code = code if isinstance(code, str) else ""
    cursor = cursor_pos if isinstance(cursor_pos, int) else len(code)
    return code, max(0, min(cursor, len(code)))


def _scan(code: str) -> Tuple[int, List[Tuple[str, int]], Optional[int], Optional[str], bool]:
    """Where `code` (the text before the cursor) leaves off.

    Returns (start of the current logical line, the brackets open there as
    (char, index), index of the quote of the string the cursor is in or None,
    that quote, True when the cursor is in a comment).
    """
    i, n = 0, len(code)
    line_start = 0
    brackets = []  # type: List[Tuple[str, int]]
    while i < n:
        plain = PLAIN.match(code, i)
        if plain:
            i = plain.end()
            continue
        c = code[i]
        if c == "#":
            end = code.find("\n", i)
            if end < 0:
                return line_start, brackets, None, None, True
            i = end
            continue
        if c in "'\"":
            quote = code[i : i + 3] if code[i : i + 3] in ('"""', "'''") else c
            j = i + len(quote)
            while j < n and not code.startswith(quote, j) and (len(quote) == 3 or code[j] != "\n"):
                j += 2 if code[j] == "\\" else 1
            if j >= n:
                return line_start, brackets, i, quote, False
            i = j if code[j] == "\n" else j + len(quote)  # an unterminated string ends with its line
            continue
        if c in "([{":
            brackets.append((c, i))
        elif c in ")]}":
            if brackets:
                brackets.pop()
        elif c == "\\" and code.startswith("\n", i + 1):
            i += 2
            continue
        elif c == "\n" and not brackets:
            line_start = i + 1
        i += 1
    return line_start, brackets, None, None, False


def _primary(text: str) -> str:
    """The longest end of `text` that is an expression an attribute or call could follow."""
    text = text[-PRIMARY_SCAN:]
    for i in range(len(text)):
        if text[i].isspace() or (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            continue  # an expression starts at a token, not inside a name or a number
        candidate = text[i:]
        try:
            node = ast.parse(candidate, mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if isinstance(node, PRIMARY_NODES) and not (isinstance(node, ast.Tuple) and candidate[0] != "("):
            return candidate
    return ""


def _evaluate(text: str, namespace: Dict[str, Any]) -> Any:
    """The value of `text` (names, attributes, literals, literal subscripts of builtin containers), or NOTHING.

    Nothing is called: a subscript of a user's class could run anything.
    """
    try:
        return _value(ast.parse(text, mode="eval").body, namespace)
    except Exception:
        return NOTHING


def _value(node: ast.AST, namespace: Dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return _builtins(namespace)[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(_value(node.value, namespace), node.attr)
    if isinstance(node, ast.Subscript):
        container = _value(node.value, namespace)
        index = node.slice
        if type(index).__name__ == "Index":  # Python < 3.9 wraps the key
            index = index.value  # type: ignore[attr-defined]
        if type(container) not in (dict, list, tuple, str, bytes):
            raise TypeError("not a builtin container")
        return container[ast.literal_eval(index)]
    if isinstance(node, ast.Call):
        raise TypeError("calls are not evaluated")
    return ast.literal_eval(node)


def _builtins(namespace: Dict[str, Any]) -> Dict[str, Any]:
    found = namespace.get("__builtins__", builtins)
    return found if isinstance(found, dict) else vars(found)


def _token_at(code: str, cursor: int) -> Tuple[str, int]:
    """(dotted name, where it ends) to inspect at `cursor`, as IPython's token_at_cursor.

    Inside a call's parentheses that is the function called (its signature is
    what one wants while typing arguments), else the name at the cursor.
    """
    offsets = [0]
    lines = io.StringIO(code)

    def readline() -> str:
        line = lines.readline()
        offsets.append(offsets[-1] + len(line))
        return line

    names = []  # type: List[Tuple[str, int]]
    calls = []  # type: List[Tuple[str, int]]
    previous = None  # type: Any
    previous_is_name = False
    try:
        for token in tokenize.generate_tokens(readline):
            end = offsets[token.end[0] - 1] + token.end[1]
            is_name = token.type == tokenize.NAME and not keyword.iskeyword(token.string)
            if is_name:
                if names and previous is not None and previous.string == "." and previous.type == tokenize.OP:
                    names[-1] = (names[-1][0] + "." + token.string, end)
                else:
                    names.append((token.string, end))
            elif token.type == tokenize.OP:
                if token.string == "=" and names:
                    names.pop()  # not the left-hand side of an assignment
                elif token.string == "(" and names and previous_is_name:
                    calls.append(names[-1])
                elif token.string == ")" and calls:
                    calls.pop()
            previous, previous_is_name = token, is_name
            if end > cursor:
                break
    except Exception:  # incomplete code (TokenError), bad indentation, NUL: what was read so far
        pass
    if calls:
        return calls[-1]
    return names[-1] if names else ("", 0)


# -- completions -----------------------------------------------------------------


def _answer(code: str, cursor: int, entries: List[Entry]) -> Answer:
    """Entries as the kernel's answer: one start for all (texts padded with what they replace), no repeats."""
    if not entries:
        return (cursor, cursor, ())
    start = min(entry[0] for entry in entries)
    seen = set()
    items = []
    for entry in entries:
        text = wire_text(code[start : entry[0]] + entry[1])
        if text not in seen:
            seen.add(text)
            items.append((text, entry[2], entry[4]))
    return (start, cursor, tuple(items))


def _signatures(
    code: str, cursor: int, entries: List[Entry], deadline: float, publish: Callable[[Answer], None]
) -> None:
    """Fill in the functions' signatures while the time budget lasts, then publish again."""
    changed = False
    for entry in entries:
        if entry[3] is None:
            continue
        if time.monotonic() > deadline:
            break
        try:
            entry[4] = wire_text(entry[3]())
            changed = True
        except Exception:  # no signature (many builtins on old Pythons), or the user's __signature__ failed
            pass
    if changed:
        publish(_answer(code, cursor, entries))


def _shown(name: str, prefix: str) -> bool:
    """Completes `prefix`; private names only when asked for with a leading underscore."""
    return name.startswith(prefix) and (prefix.startswith("_") or not name.startswith("_"))


def _sort_key(name: str) -> Tuple[bool, str, str]:
    return (name.startswith("_"), name.lower(), name)


def _kind(value: Any) -> str:
    """The type of a completion, in jedi's words."""
    if isinstance(value, type):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, property):
        return "property"
    if inspect.isroutine(value) or isinstance(value, (staticmethod, classmethod)):
        return "function"
    return "instance"


def _signature_of(value: Any) -> Callable[[], str]:
    return lambda: str(inspect.signature(value))


def _entries(kinds: Dict[str, Tuple[str, Any]], prefix: str, start: int) -> List[Entry]:
    """Entries for the names in `kinds` ({name: (type, value)}) that complete `prefix`, sorted."""
    names = sorted((name for name in kinds if _shown(name, prefix)), key=_sort_key)
    entries = []
    for name in names[:MAX_MATCHES]:
        kind, value = kinds[name]
        thunk = _signature_of(value) if kind == "function" and value is not NOTHING else None
        entries.append([start, name, kind, thunk, ""])
    return entries


def _names(namespace: Dict[str, Any], prefix: str, start: int) -> List[Entry]:
    """The namespace's names, builtins and keywords."""
    kinds = {}  # type: Dict[str, Tuple[str, Any]]
    for word in keyword.kwlist:
        kinds[word] = ("keyword", NOTHING)
    for scope in (_builtins(namespace), namespace):
        for name, value in dict(scope).items():  # dict(): a copy made at once, whatever other threads do
            kinds[name] = (_kind(value), value)
    return _entries(kinds, prefix, start)


def _attributes(obj: Any, prefix: str, start: int) -> List[Entry]:
    """The attributes of `obj`, typed without running descriptors (getattr_static)."""
    kinds = {}  # type: Dict[str, Tuple[str, Any]]
    for name in dir(obj):
        if not isinstance(name, str) or not _shown(name, prefix):
            continue
        try:
            static = inspect.getattr_static(obj, name)
        except AttributeError:  # listed by __dir__, not there
            static = NOTHING
        kind = _kind(static)
        # A function's signature is that of the bound method: getattr only runs a routine's own __get__.
        kinds[name] = (kind, NOTHING) if kind != "function" else (kind, _bound(obj, name))
    return _entries(kinds, prefix, start)


def _bound(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:
        return NOTHING


def _keywords(function: Any, prefix: str, start: int) -> List[Entry]:
    """`name=` for the keyword arguments of the function being called."""
    if function is NOTHING or not callable(function):
        return []
    try:
        parameters = inspect.signature(function).parameters.values()
    except Exception:
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        [start, p.name + "=", "param", None, ""] for p in parameters if p.kind in kinds and _shown(p.name, prefix)
    ]


def _keys(container: Any) -> Optional[list]:
    """The keys of a mapping (or what its _ipython_key_completions_ offers, as IPython); None for others."""
    if container is NOTHING:
        return None
    if hasattr(type(container), "_ipython_key_completions_"):
        keys = container._ipython_key_completions_()
    elif isinstance(container, (dict, Mapping)):
        keys = container.keys()
    else:
        return None
    return list(itertools.islice(keys, MAX_KEYS))


def _key_reprs(container: Any, prefix: str, start: int) -> List[Entry]:
    """Keys as literals after `d[`: strings quoted, numbers as they are."""
    keys = _keys(container) or []
    literals = sorted(repr(key) for key in keys if type(key) in (str, bytes, int, float))
    return [[start, text, "dict key", None, ""] for text in literals if text.startswith(prefix)]


def _paths(content: str, quote: str, closed: bool, cursor: int) -> List[Entry]:
    """Files and directories completing the path typed so far in a string, relative to the device's directory.

    Only the last component is replaced, as jedi does; a directory gets its
    "/", a file the closing quote unless the editor closed the string already.
    """
    if "\n" in content:
        return []
    head, sep, base = content.rpartition("/")
    directory = os.path.expanduser(head + sep) if sep else "."
    entries = []  # type: List[Entry]
    try:
        with os.scandir(directory) as listing:
            for entry in itertools.islice(listing, MAX_ENTRIES):
                name = entry.name
                if not name.startswith(base) or (name.startswith(".") and not base.startswith(".")):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                text = name + "/" if is_dir else name + ("" if closed else quote)
                entries.append([cursor - len(base), text, "path", None, ""])
    except OSError:
        return []
    entries.sort(key=lambda entry: entry[1])
    return entries


def _jedi_complete(jedi: Any, namespace: Dict[str, Any], code: str, cursor: int) -> List[Entry]:
    """jedi's completions, as entries (signatures computed later, while time lasts)."""
    line = code.count("\n", 0, cursor) + 1
    column = cursor - (code.rfind("\n", 0, cursor) + 1)
    try:
        completions = jedi.Interpreter(code, [namespace]).complete(line, column)
    except Exception:  # jedi's own failures (old versions, odd code): the light completer's answer stands
        return []
    entries = []  # type: List[Entry]
    for completion in completions:
        text = completion.name_with_symbols
        typed = len(text) - len(completion.complete or "")
        if text.startswith("_") and not text[:typed].startswith("_"):
            continue  # private names only when asked for, as in the light completer
        kind = completion.type
        thunk = _jedi_signature(completion) if kind == "function" else None
        entries.append([cursor - typed, text, kind, thunk, ""])
        if len(entries) >= MAX_MATCHES:
            break
    return entries


def _jedi_signature(completion: Any) -> Callable[[], str]:
    """The parameters part of jedi's first signature, as ipykernel shows it: "(a, b=1)"."""

    def signature() -> str:
        found = completion.get_signatures()
        text = found[0].to_string() if found else ""
        return text[text.index("(") :] if "(" in text else ""

    return signature


# -- descriptions ------------------------------------------------------------------


def _describe(obj: Any, name: str, detail: int, cell_origin: Callable[[Any], Optional[Tuple[str, str]]]) -> str:
    """What IPython's `obj?` (detail 0) or `obj??` (detail 1, with the source) says about a live object.

    `cell_origin` finds what the cells defined: for those, the device's own
    `__main__` (the rpyc server's script) would give a wrong file or source.
    """
    fields = []  # type: List[Tuple[str, str]]
    is_class = isinstance(obj, type)
    plain = not (is_class or callable(obj) or isinstance(obj, types.ModuleType))
    if plain:
        fields.append(("Type", type(obj).__name__))
        form = _try(str, obj)
        if form is not None:
            if len(form) > STRING_FORM:
                form = form[: STRING_FORM // 2] + " <...> " + form[-STRING_FORM // 2 :]
            fields.append(("String form", form))
        if isinstance(obj, (str, bytes, list, tuple, dict, set, frozenset)):
            fields.append(("Length", str(len(obj))))
    else:
        signature = _try(inspect.signature, obj)
        if signature is not None:
            fields.append(("Init signature" if is_class else "Signature", name.rpartition(".")[2] + str(signature)))
    origin = None if plain else _try(cell_origin, obj)
    elsewhere = not plain and origin is None and getattr(obj, "__module__", None) != "__main__"
    source = None
    if detail > 0:
        source = origin[1] if origin else _try(inspect.getsource, obj) if elsewhere else None
    if source:
        fields.append(("Source", source.rstrip("\n")))
    else:
        fields.append(("Docstring", _try(inspect.getdoc, obj) or "<no docstring>"))
    where = origin[0] if origin else None
    if elsewhere:
        where = _try(inspect.getsourcefile, obj) or _try(inspect.getfile, obj)
    if where:
        fields.append(("File", where))
    if not plain:
        fields.append(("Type", type(obj).__name__))
    return _format(fields)


def _try(function: Callable[[Any], Any], obj: Any) -> Any:
    """function(obj), or None when it fails: the object may fight introspection."""
    try:
        return function(obj)
    except Exception:
        return None


def _format(fields: List[Tuple[str, str]]) -> str:
    """IPython's layout: aligned labels, multi-line values below theirs."""
    width = max(len(label) for label, _ in fields) + 2
    lines = []
    for label, text in fields:
        if "\n" in text:
            lines.append(label + ":\n" + text)
        else:
            lines.append((label + ":").ljust(width) + text)
    return "\n".join(lines)


def _jedi_describe(jedi: Any, namespace: Dict[str, Any], code: str, end: int) -> Optional[str]:
    """jedi's signature and docstring for the name ending at `end`, for what is not found at run time."""
    line = code.count("\n", 0, end) + 1
    column = end - (code.rfind("\n", 0, end) + 1)
    try:
        found = jedi.Interpreter(code, [namespace]).infer(line, column)
        if not found:
            return None
        definition = found[0]
        fields = [("Signature", signature.to_string()) for signature in definition.get_signatures()]
        fields.append(("Docstring", definition.docstring(raw=True) or "<no docstring>"))
        fields.append(("Type", definition.type))
    except Exception:
        return None
    return _format(fields)
