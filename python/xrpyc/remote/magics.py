"""Device-side IPython habits: the magics and shell escapes of a cell, and IPython.display in cells.

The kernel turns `%time x`, `!ls`, `x = !ls`, `%%writefile f` ... into calls of
a DeviceMagics bound in the kernel's namespace as MAGICS_NAME (the kernel's
magics.py: one line in, one line out, so line numbers stay those of the
cell). This file runs them on the device, shipped there as source text like
agent.py (see __init__.py). No IPython is needed on the device; the
output formats are IPython's.
"""

import ast
import builtins
import os
import shlex
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .richrepr import INLINE_BACKEND, _portable, mime_bundle

# The name of the kernel's DeviceMagics in its namespace; magics.py calls it so.
MAGICS_NAME = "_xrpyc_magics"
# What the kernel accepts after % and %% (magics.py checks names before a cell runs).
LINE_MAGICS = ("cd", "env", "matplotlib", "pip", "pwd", "run", "time", "timeit", "who", "whos")
CELL_MAGICS = ("bash", "html", "markdown", "sh", "time", "timeit", "writefile")


class UsageError(Exception):
    """A magic used wrongly, as IPython's UsageError."""


class SList(list):
    """The lines `x = !cmd` gives, as IPython's SList: .n is them joined by newlines, .s by spaces."""

    @property
    def n(self) -> str:
        return "\n".join(self)

    @property
    def s(self) -> str:
        return " ".join(self)


class DeviceMagics:
    """The magics of one kernel: `namespace` is its namespace, `cells` its cells' sources (agent.py);
    `post` shows a bundle in the running cell (agent._post_bundle)."""

    def __init__(self, namespace: Dict[str, Any], cells: Dict[str, List[str]], post: Callable[..., None]) -> None:
        self._namespace = namespace
        self._cells = cells
        self._post = post
        # What the agent put there (display, ...): %who leaves it out unless rebound.
        self._initial = dict(namespace)
        self._previous_dir = None  # type: Optional[str]

    # -- entry points (magics.py writes calls to these) --------------------------------------

    def line(self, name: str, args: str) -> Any:
        """`%name args`."""
        frame = sys._getframe(1)
        self._show_source(frame, "%{} {}".format(name, args).rstrip())
        if name not in LINE_MAGICS:
            raise UsageError("Line magic function `%{}` not found.".format(name))
        return getattr(self, "_line_" + name)(args, frame)

    def cell(self, name: str, args: str, body: str) -> Any:
        """`%%name args` on the cell's first line, `body` the rest of the cell."""
        frame = sys._getframe(1)
        cell = self._cells.get(frame.f_code.co_filename)
        if cell is not None:  # tracebacks show the cell as written
            cell[frame.f_lineno - 1 :] = ["%%{} {}".format(name, args).rstrip()] + body.split("\n")
        if name not in CELL_MAGICS:
            raise UsageError("Cell magic `%%{}` not found.".format(name))
        return getattr(self, "_cell_" + name)(args, body, frame)

    def system(self, command: str) -> None:
        """`!command`: run by the device's shell, its output streamed into the cell's."""
        frame = sys._getframe(1)
        self._show_source(frame, "!" + command)
        status = _run(_shell_argv(_expand(command, frame)), _write_stdout)
        self._namespace["_exit_code"] = status

    def getoutput(self, command: str) -> SList:
        """`x = !command` (and `!!command`): its output lines, stderr included, as IPython's SList."""
        frame = sys._getframe(1)
        self._show_source(frame, "!" + command)
        parts = []  # type: List[str]
        self._namespace["_exit_code"] = _run(_shell_argv(_expand(command, frame)), parts.append)
        return SList("".join(parts).splitlines())

    def _show_source(self, frame: Any, text: str) -> None:
        """Put the magic as written back in the cell's source, for tracebacks through this line."""
        lines = self._cells.get(frame.f_code.co_filename)
        index = frame.f_lineno - 1
        if lines is not None and 0 <= index < len(lines) and MAGICS_NAME in lines[index]:
            lines[index] = lines[index][: lines[index].index(MAGICS_NAME)] + text

    # -- line magics --------------------------------------------------------------------------

    def _line_time(self, args: str, frame: Any) -> Any:
        return _time(args, frame, frame.f_lineno)

    def _line_timeit(self, args: str, frame: Any) -> Any:
        return _timeit(args, None, frame, frame.f_lineno)

    def _line_cd(self, args: str, frame: Any) -> None:
        words = _split(_expand(args, frame))
        quiet = "-q" in words
        words = [word for word in words if word != "-q"]
        if len(words) > 1:
            raise UsageError("%cd takes one directory")
        here = os.getcwd()
        if not words:
            target = os.path.expanduser("~")
        elif words[0] == "-":
            if self._previous_dir is None:
                raise UsageError("%cd -: No previous directory to change to.")
            target = self._previous_dir
        else:
            target = os.path.expanduser(words[0])
        try:
            os.chdir(target)
        except OSError as error:
            print(error)  # as IPython: a message, not an exception
            return
        self._previous_dir = here
        if not quiet:
            print(os.getcwd())

    def _line_pwd(self, args: str, frame: Any) -> str:
        return os.getcwd()

    def _line_env(self, args: str, frame: Any) -> Any:
        args = _expand(args, frame).strip()
        if not args:
            # Hides likely secrets when the whole environment is shown, as IPython.
            return {
                key: "<hidden>" if any(word in key.lower() for word in ("key", "token", "secret")) else value
                for key, value in os.environ.items()
            }
        separator = "=" if "=" in args else " "
        parts = args.split(separator, 1)
        if len(parts) == 1:
            if args in os.environ:
                return os.environ[args]
            raise UsageError("Environment does not have key: {}".format(args))
        key, value = parts[0].strip(), parts[1].strip()
        if not key or any(char.isspace() for char in key):
            raise UsageError("refusing to set env var with whitespace: '{}'".format(key))
        os.environ[key] = value
        print("env: {}={}".format(key, value))

    def _line_who(self, args: str, frame: Any) -> None:
        names = self._user_names(args)
        if names:
            # IPython's layout, to the character: a tab and a space after each name, nine to a line.
            for count, name in enumerate(names, 1):
                sys.stdout.write(name + "\t " + ("\n" if count % 9 == 0 else ""))
            print()

    def _line_whos(self, args: str, frame: Any) -> None:
        names = self._user_names(args)
        if not names:
            return
        values = [self._namespace[name] for name in names]
        types = [type(value).__name__ for value in values]
        name_width = max(max(map(len, names)), len("Variable")) + 3
        type_width = max(max(map(len, types)), len("Type")) + 3
        print("Variable".ljust(name_width) + "Type".ljust(type_width) + " Data/Info")
        print("-" * (name_width + type_width + len("Data/Info") + 1))
        for name, value, kind in zip(names, values, types):
            print(name.ljust(name_width) + kind.ljust(type_width), _whos_info(value, kind))

    def _user_names(self, args: str) -> List[str]:
        """The kernel's own names as IPython's %who lists them: not `_`-names, not the agent's."""
        names = sorted(
            name
            for name, value in self._namespace.items()
            if not name.startswith("_") and self._initial.get(name, _MISSING) is not value
        )
        wanted = set(args.split())
        if wanted:
            names = [name for name in names if type(self._namespace[name]).__name__ in wanted]
        if not names:
            print("No variables match your requested type." if wanted else "Interactive namespace is empty.")
        return names

    def _line_run(self, args: str, frame: Any) -> None:
        words = _split(_expand(args, frame))
        interactive = False
        while words and words[0].startswith("-"):
            if words[0] != "-i":
                raise UsageError("%run: only -i is supported here, not {}".format(words[0]))
            interactive = True
            words.pop(0)
        if not words:
            raise UsageError("%run: give the path of a Python file on the device")
        path = os.path.expanduser(words[0])
        if not os.path.isfile(path) and os.path.isfile(path + ".py"):
            path += ".py"
        try:
            with open(path, "rb") as script:  # bytes: compile() honours a coding cookie
                code = compile(script.read(), path, "exec")
        except OSError as error:
            raise UsageError("%run: cannot read {}: {}".format(path, error.strerror or error)) from None
        namespace = self._namespace if interactive else {"__name__": "__main__", "__builtins__": builtins}
        saved_file = self._namespace.get("__file__", _MISSING)
        namespace["__file__"] = path
        saved_argv = sys.argv
        sys.argv = [path] + words[1:]
        try:
            exec(code, namespace)
        except SystemExit as exit:
            if exit.code not in (None, 0):
                raise
        finally:
            sys.argv = saved_argv
            if not interactive:
                for name, value in namespace.items():
                    if name not in ("__name__", "__builtins__", "__file__"):
                        self._namespace[name] = value
            if saved_file is _MISSING:
                self._namespace.pop("__file__", None)
            else:
                self._namespace["__file__"] = saved_file

    def _line_pip(self, args: str, frame: Any) -> None:
        if not sys.executable:
            raise UsageError("%pip: the device's Python does not know its own executable (sys.executable is empty)")
        _run([sys.executable, "-m", "pip"] + _split(_expand(args, frame)), _write_stdout)
        print("Note: you may need to restart the kernel to use updated packages.")

    def _line_matplotlib(self, args: str, frame: Any) -> None:
        if args.strip() not in ("", "inline"):
            print("xrpyc: figures show inline here; %matplotlib {} is not available.".format(args.strip()))
            return
        pyplot = sys.modules.get("matplotlib.pyplot")
        backend = "module://" + INLINE_BACKEND
        if pyplot is not None and pyplot.get_backend() != backend:
            pyplot.switch_backend(backend)

    # -- cell magics --------------------------------------------------------------------------

    def _cell_time(self, args: str, body: str, frame: Any) -> Any:
        if args.strip():
            raise UsageError("Can't use statement directly after '%%time'!")
        return _time(body, frame, frame.f_lineno + 1)

    def _cell_timeit(self, args: str, body: str, frame: Any) -> Any:
        return _timeit(args, body, frame, frame.f_lineno)

    def _cell_writefile(self, args: str, body: str, frame: Any) -> None:
        words = _split(_expand(args, frame))
        append = bool(words) and words[0] in ("-a", "--append")
        if append:
            words.pop(0)
        if len(words) != 1:
            raise UsageError("usage: %%writefile [-a] path")
        path = os.path.expanduser(words[0])
        if os.path.exists(path):
            print(("Appending to {}" if append else "Overwriting {}").format(path))
        else:
            print("Writing {}".format(path))
        with open(path, "a" if append else "w", encoding="utf-8") as target:
            target.write(body)

    def _cell_bash(self, args: str, body: str, frame: Any) -> None:
        self._namespace["_exit_code"] = _run(["bash", "-c", body] + _split(args), _write_stdout)

    def _cell_sh(self, args: str, body: str, frame: Any) -> None:
        self._namespace["_exit_code"] = _run(["sh", "-c", body] + _split(args), _write_stdout)

    def _cell_html(self, args: str, body: str, frame: Any) -> None:
        self._post((("text/html", body), ("text/plain", "<IPython.core.display.HTML object>")), None, False)

    def _cell_markdown(self, args: str, body: str, frame: Any) -> None:
        self._post((("text/markdown", body), ("text/plain", "<IPython.core.display.Markdown object>")), None, False)


_MISSING = object()


def _whos_info(value: Any, kind: str) -> str:
    """The Data/Info column of IPython's %whos."""
    if kind in ("dict", "list", "tuple"):
        return "n=" + str(len(value))
    if kind == "ndarray":
        return "{}: {} elems, type `{}`, {} bytes".format(
            str(value.shape).replace(",", "").replace(" ", "x")[1:-1], value.size, value.dtype, value.nbytes
        )
    try:
        text = str(value)
    except Exception:
        text = "<object with id {} (str() failed)>".format(id(value))
    text = text.replace("\n", "\\n")
    return text if len(text) < 50 else text[:25] + "<...>" + text[-25:]


def _split(args: str) -> List[str]:
    try:
        return shlex.split(args)
    except ValueError as error:  # an unclosed quote
        raise UsageError(str(error)) from None


# -- $name and {expression} in shell commands, as IPython expands them ------------------------


def _expand(command: str, frame: Any) -> str:
    """`command` with `{expr}` and `$name` replaced by their values in the cell's scope.

    As in IPython, a command whose expansion fails (`$HOME` where HOME is no
    Python name) is kept as written, and `$$` is a literal `$`.
    """
    import re
    import string

    scope = dict(frame.f_globals)
    scope.update(frame.f_locals)
    dollar = re.compile(r"(.*?)\$(\$?[\w\.]+)(?=([^']*'[^']*')*[^']*$)")
    parts = []  # type: List[str]
    formatter = string.Formatter()
    try:
        for literal, field, spec, conversion in formatter.parse(command):
            done = 0
            text = ""
            for match in dollar.finditer(literal):
                before, name = match.group(1, 2)
                if name.startswith("$"):
                    text += before + name
                else:
                    parts.append(text + before + str(eval(name, scope)))
                    text = ""
                done = match.end()
            parts.append(text + literal[done:])
            if field is not None:
                value = eval(field + (":" + spec if spec else ""), scope)
                parts.append(formatter.format_field(formatter.convert_field(value, conversion), ""))
    except Exception:
        return command
    return "".join(parts)


# -- processes ---------------------------------------------------------------------------------


def _shell_argv(command: str) -> List[str]:
    shell = os.environ.get("SHELL", "")
    return [shell if os.path.isabs(shell) and os.access(shell, os.X_OK) else "/bin/sh", "-c", command]


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)  # the cell's output, through the agent's router


def _run(argv: List[str], write: Callable[[str], Any]) -> int:
    """Run `argv` with stderr merged into stdout (as a terminal shows them), `write` its output
    as it comes; its exit status. An interrupt stops the process (and its children) and goes on."""
    import codecs
    import subprocess

    environment = dict(os.environ)
    environment.update(PAGER="cat", GIT_PAGER="cat")  # nobody can page through a notebook's output
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=os.name == "posix",
        )
    except OSError as error:
        raise UsageError("cannot run {}: {}".format(argv[0], error.strerror or error)) from None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    descriptor = process.stdout.fileno()
    try:
        while True:
            _wait_readable(descriptor)
            data = os.read(descriptor, 65536)
            if not data:
                break
            write(decoder.decode(data))
        write(decoder.decode(b"", True))
        return process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        process.stdout.close()


def _wait_readable(descriptor: int) -> None:
    """Wait in short steps: an interrupt (an asynchronous exception) lands only between them."""
    import select

    try:
        while not select.select([descriptor], [], [], 0.1)[0]:
            pass
    except (OSError, ValueError):  # no select() on pipes (Windows): read blocks instead
        return


def _stop(process: Any) -> None:
    """Ctrl-C for the command's process group, then a kill if it does not end within 2 s."""
    import signal
    import subprocess

    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(2)
                return
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
    except OSError:
        pass  # it ended by itself


# -- %time and %timeit, in IPython's format ---------------------------------------------------


def _cpu_times() -> Tuple[float, float]:
    """(user, system) CPU seconds of the device process, as IPython's clock2."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        return (usage.ru_utime, usage.ru_stime)
    except ImportError:
        return (time.process_time(), 0.0)


def _format_time(seconds: float, precision: int = 3) -> str:
    """IPython's _format_time: '1.23 µs', '2min 3s'."""
    if seconds >= 60.0:
        parts = []
        left = seconds
        for suffix, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
            value = int(left / length)
            if value > 0:
                left = left % length
                parts.append("{}{}".format(value, suffix))
            if left < 1:
                break
        return " ".join(parts)
    import math

    order = min(-int(math.floor(math.log10(seconds)) // 3), 3) if seconds > 0.0 else 3
    return "%.*g %s" % (precision, seconds * (1, 1e3, 1e6, 1e9)[order], ("s", "ms", "\u03bcs", "ns")[order])


def _parse(source: str, lineno: int) -> ast.Module:
    """`source` as an AST whose line numbers are the cell's (it starts on line `lineno`)."""
    return ast.parse("\n" * (lineno - 1) + source)


def _time(source: str, frame: Any, lineno: int) -> Any:
    """%time and %%time: run `source` in the cell's scope, print CPU and wall times, return its value."""
    filename = frame.f_code.co_filename
    compile_start = time.time()
    tree = _parse(source, lineno)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    code = compile(tree, filename, "exec")
    value_code = compile(last, filename, "eval") if last is not None else None
    compile_time = time.time() - compile_start
    value = None
    wall_start, cpu_start = time.time(), _cpu_times()
    try:
        exec(code, frame.f_globals, frame.f_locals)
        if value_code is not None:
            value = eval(value_code, frame.f_globals, frame.f_locals)
    finally:
        cpu_end, wall = _cpu_times(), time.time() - wall_start
        user, system = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
        print("CPU times: user {}, sys: {}, total: {}".format(
            _format_time(user), _format_time(system), _format_time(user + system)))  # fmt: skip
        print("Wall time: {}".format(_format_time(wall)))
        if compile_time > 0.1:
            print("Compiler : {}".format(_format_time(compile_time)))
    return value


class TimeitResult:
    """What `%timeit -o` returns, as IPython's: loops, repeat, best, worst, all_runs, average, stdev."""

    def __init__(self, loops: int, repeat: int, all_runs: List[float], compile_time: float, precision: int) -> None:
        self.loops, self.repeat, self.all_runs = loops, repeat, all_runs
        self.compile_time, self._precision = compile_time, precision
        self.timings = [run / loops for run in all_runs]
        self.best, self.worst = min(self.timings), max(self.timings)

    @property
    def average(self) -> float:
        import math

        return math.fsum(self.timings) / len(self.timings)

    @property
    def stdev(self) -> float:
        import math

        mean = self.average
        return (math.fsum((x - mean) ** 2 for x in self.timings) / len(self.timings)) ** 0.5

    def __str__(self) -> str:
        return "{} \u00b1 {} per loop (mean \u00b1 std. dev. of {} run{}, {:,} loop{} each)".format(
            _format_time(self.average, self._precision),
            _format_time(self.stdev, self._precision),
            self.repeat,
            "" if self.repeat == 1 else "s",
            self.loops,
            "" if self.loops == 1 else "s",
        )

    def __repr__(self) -> str:
        return "<TimeitResult : " + str(self) + ">"


_TIMEIT_OPTIONS = "n:r:tcp:qov:"  # IPython's: a colon after the ones that take a value


def _timeit_options(args: str) -> Tuple[Dict[str, str], str]:
    """IPython's `%timeit -n<N> -r<R> -t -c -p<P> -q -o -v <V> statement`: (options, statement)."""
    options = {}  # type: Dict[str, str]
    rest = args.lstrip()
    while rest.startswith("-") and len(rest) > 1 and rest[1] in _TIMEIT_OPTIONS.replace(":", ""):
        word, _, after = rest.partition(" ")
        letters = word[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            if letter not in _TIMEIT_OPTIONS or letter == ":":
                raise UsageError("%timeit: unknown option -{}".format(letter))
            if _TIMEIT_OPTIONS[_TIMEIT_OPTIONS.index(letter) + 1 :].startswith(":"):
                if not letters:
                    letters, _, after = after.lstrip().partition(" ")
                if not letters:
                    raise UsageError("%timeit: option -{} needs a value".format(letter))
                options[letter], letters = letters, ""
            else:
                options[letter] = ""
        rest = after.lstrip()
    return options, rest


_TIMEIT_TEMPLATE = """def inner(_it, _timer):
    setup
    _t0 = _timer()
    for _i in _it:
        stmt
    _t1 = _timer()
    return _t1 - _t0
"""


def _timeit(args: str, body: Optional[str], frame: Any, lineno: int) -> Any:
    """%timeit statement, %%timeit setup + body: IPython's measurement and report."""
    import timeit

    options, statement = _timeit_options(args)
    if body is None and not statement.strip():
        return None
    try:
        number = int(options.get("n", 0))
        repeat = int(options.get("r", max(timeit.default_repeat, 7)))
        precision = int(options.get("p", 3))
    except ValueError as error:
        raise UsageError("%timeit: {}".format(error)) from None
    if repeat < 1 or number < 0:
        raise UsageError("%timeit: -n and -r take positive numbers")
    clock = time.time if "t" in options else (time.process_time if "c" in options else timeit.default_timer)
    filename = frame.f_code.co_filename
    if body is None:
        setup, timed = ast.parse("pass"), _parse(statement, lineno)
    else:
        setup, timed = _parse(statement, lineno), _parse(body, lineno + 1)
    # The user's code compiled on its own first: inside the loop, a mistake can read differently.
    compile(setup, filename, "exec")
    compile(timed, filename, "exec")
    template = ast.parse(_TIMEIT_TEMPLATE)
    inner = template.body[0]
    inner.body[0:1] = setup.body or [ast.Pass()]
    inner.body[-3].body = timed.body or [ast.Pass()]
    compile_start = time.time()
    code = compile(ast.fix_missing_locations(template), filename, "exec")
    compile_time = time.time() - compile_start
    scope = {}  # type: Dict[str, Any]
    exec(code, frame.f_globals, scope)
    timer = timeit.Timer(timer=clock)
    timer.inner = scope["inner"]
    if number == 0:
        # As IPython: loops enough for the measurement to last at least 0.2 s.
        for power in range(10):
            number = 10**power
            if timer.timeit(number) >= 0.2:
                break
    result = TimeitResult(number, repeat, timer.repeat(repeat, number), compile_time, precision)
    if "q" not in options:
        if result.worst > 4 * result.best and result.best > 0 and result.worst > 1e-6:
            print(
                "The slowest run took %0.2f times longer than the fastest. "
                "This could mean that an intermediate result is being cached." % (result.worst / result.best)
            )
        print(result)
        if compile_time > 0.1:
            print("Compiler time: %.2f s" % compile_time)
    if "v" in options:
        frame.f_globals[options["v"]] = result
    return result if "o" in options else None


# -- IPython.display on the device ------------------------------------------------------------

# The modules that define IPython's display() and clear_output(): display_functions since
# IPython 7.23, core.display before. The others re-export them.
_IPYTHON_DEFINING = ("IPython.core.display_functions", "IPython.core.display")
_IPYTHON_EXPORTING = ("IPython.core.display", "IPython.display", "IPython")


def route_ipython_display(
    post: Callable[..., None], clear: Callable[[bool], None], in_cell: Callable[[], bool]
) -> None:
    """Make IPython's display() and clear_output() reach the notebook from a cell's thread.

    Without an IPython kernel, IPython's display() prints reprs and its
    clear_output() prints '\\x1b[2K\\r'. In the threads that run cells they post
    through the agent (`post`, `clear`) instead; other threads keep IPython's.
    Once per device process, and lazily: IPython's modules are patched when a
    cell imports them (an import hook), never imported here.
    """
    if any(type(finder).__name__ == "_IPythonDisplayHook" for finder in sys.meta_path):
        return
    hook = _IPythonDisplayHook(post, clear, in_cell)
    sys.meta_path.insert(0, hook)
    for name in _IPYTHON_DEFINING:
        if name in sys.modules:
            hook.patch(sys.modules[name])


class _IPythonDisplayHook:
    """An import hook that patches IPython's display functions as their module is loaded."""

    def __init__(self, post: Callable[..., None], clear: Callable[[bool], None], in_cell: Callable[[], bool]) -> None:
        self._post, self._clear, self._in_cell = post, clear, in_cell

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _IPYTHON_DEFINING:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, self.patch)
        return spec

    def patch(self, module: Any) -> None:
        for name, make in (("display", self._display), ("clear_output", self._clear_output)):
            original = module.__dict__.get(name)
            if callable(original) and getattr(original, "__module__", None) == module.__name__:
                routed = make(module, original)
                for holder in (module.__name__,) + _IPYTHON_EXPORTING:
                    holding = sys.modules.get(holder)
                    if holding is not None and getattr(holding, name, None) is original:
                        setattr(holding, name, routed)

    def _display(self, module: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        def display(*objs: Any, **kwargs: Any) -> Any:
            if not self._in_cell():
                return original(*objs, **kwargs)
            display_id = kwargs.get("display_id")
            if display_id is True:
                import uuid

                display_id = uuid.uuid4().hex
            if kwargs.get("clear"):
                self._clear(True)
            include = kwargs.get("include")
            if not objs and display_id:
                objs, kwargs["raw"] = ({"text/plain": ""},), True  # an empty output to update later
            for obj in objs:
                if kwargs.get("raw"):
                    bundle = tuple((mime, _portable(data)) for mime, data in dict(obj).items())
                else:
                    bundle = mime_bundle(obj)
                if include:
                    bundle = tuple(item for item in bundle if item[0] in include or item[0] == "text/plain")
                self._post(bundle, display_id or None, bool(kwargs.get("update")))
            handle = getattr(module, "DisplayHandle", None)
            return handle(display_id) if display_id and handle is not None else None

        return display

    def _clear_output(self, module: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        def clear_output(wait: bool = False) -> None:
            if not self._in_cell():
                return original(wait)
            self._clear(bool(wait))

        return clear_output


class _PatchingLoader:
    """`loader`, and `patch` on the module it has loaded."""

    def __init__(self, loader: Any, patch: Callable[[Any], None]) -> None:
        self._loader, self._patch = loader, patch

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)  # get_source, get_filename ...: the real loader's
