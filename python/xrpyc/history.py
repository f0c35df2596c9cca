"""The kernel's input history: what history_request (tail, range, search) answers from.

Kept in SQLite with IPython's layout (sessions, history, output_history), one
session per kernel run, so that a restarted kernel still recalls earlier
cells (Up-arrow in a console, %history-like tools). The database is opened on
the first cell, not at kernel start, and a file that cannot be used (read-only
home, a locked or damaged database) leaves history in memory for the session
with a notice, never a failing cell.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# One row in a reply: (session, line, source) or (session, line, (source, output)).
Entry = list


def history_file() -> str:
    """$XRPYC_HISTORY (":memory:" keeps nothing), else xrpyc/history.sqlite in Jupyter's data directory."""
    chosen = os.environ.get("XRPYC_HISTORY")
    if chosen:
        return chosen
    data = os.environ.get("JUPYTER_DATA_DIR")
    if not data:
        if sys.platform == "darwin":
            data = str(Path.home() / "Library" / "Jupyter")
        else:
            data = str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "jupyter")
    return str(Path(data) / "xrpyc" / "history.sqlite")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (session INTEGER PRIMARY KEY AUTOINCREMENT,
    start TIMESTAMP, end TIMESTAMP, num_cmds INTEGER, remark TEXT);
CREATE TABLE IF NOT EXISTS history (session INTEGER, line INTEGER, source TEXT, source_raw TEXT,
    PRIMARY KEY (session, line));
CREATE TABLE IF NOT EXISTS output_history (session INTEGER, line INTEGER, output TEXT,
    PRIMARY KEY (session, line));
"""


class History:
    """This kernel's session in the history database; each public method returns reply content as JSON."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or history_file()
        self._db: Any = None
        self.session = 0  # this kernel's session number, once its first cell is stored
        # The running cell's number and result: xeus stores a cell's input after
        # its reply, and with the wrong number (2.4.1 passes 1 for every cell).
        self._line = 0
        self._output: str | None = None

    # -- writing -------------------------------------------------------------

    def start_cell(self, line: int) -> None:
        """Cell `line` runs: the next store() is its input."""
        self._line, self._output = line, None

    def add_output(self, text: str) -> None:
        """The text/plain result of the running cell, stored with its input."""
        self._output = text

    def store(self, line: int, source: str) -> str:
        db = self._open()
        line, output = self._line or line, self._output
        self._line, self._output = 0, None
        with db:
            db.execute("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)", (self.session, line, source, source))
            if output is not None:
                db.execute("INSERT OR REPLACE INTO output_history VALUES (?, ?, ?)", (self.session, line, output))
            db.execute("UPDATE sessions SET num_cmds = num_cmds + 1 WHERE session = ?", (self.session,))
        return "{}"

    def close(self) -> None:
        if self._db is not None:
            import sqlite3

            try:
                with self._db:
                    self._db.execute("UPDATE sessions SET end = ? WHERE session = ?", (_now(), self.session))
                self._db.close()
            except sqlite3.Error:
                pass  # the session's end time is a nicety
            self._db = None

    # -- history_request ------------------------------------------------------

    def tail(self, n: int, raw: bool, output: bool) -> str:
        """The last `n` cells, of all sessions, oldest first."""
        rows = self._select("", (), output, limit=n)
        return _reply(rows[::-1], output)

    def range(self, session: int, start: int, stop: int, raw: bool, output: bool) -> str:
        """Cells start <= line < stop of `session` (0: this one, -1: the one before, ...)."""
        if session <= 0:
            self._open()
            session += self.session
        where, args = "WHERE h.session = ? AND h.line >= ?", [session, start]
        if stop > 0:
            where += " AND h.line < ?"
            args.append(stop)
        return _reply(self._select(where, tuple(args), output, ascending=True), output)

    def search(self, pattern: str, raw: bool, output: bool, n: int, unique: bool) -> str:
        """The last `n` cells (n <= 0: all) whose source matches the glob `pattern`, oldest first."""
        rows = self._select("WHERE h.source_raw GLOB ?", (pattern,), output)
        if unique:
            seen: set[str] = set()
            rows = [row for row in rows if not (row[2] in seen or seen.add(row[2]))]
        if n > 0:
            rows = rows[:n]
        return _reply(rows[::-1], output)

    # -- storage ---------------------------------------------------------------

    def _select(self, where: str, args: tuple, output: bool, limit: int = 0, ascending: bool = False) -> list[tuple]:
        db = self._open()
        columns = "h.session, h.line, h.source_raw" + (", o.output" if output else "")
        join = " LEFT JOIN output_history o ON o.session = h.session AND o.line = h.line" if output else ""
        order = "ASC" if ascending else "DESC"
        query = f"SELECT {columns} FROM history h{join} {where} ORDER BY h.session {order}, h.line {order}"
        if limit > 0:
            query += f" LIMIT {int(limit)}"
        return db.execute(query, args).fetchall()

    def _open(self) -> Any:
        if self._db is None:
            import sqlite3

            try:
                self._db = _connect(self.path)
            except (sqlite3.Error, OSError) as error:
                print(
                    f"xrpyc: the history file {self.path} cannot be used ({error}); "
                    "this session's history is kept in memory only.",
                    file=sys.stderr,
                )
                self.path = ":memory:"
                self._db = _connect(self.path)
        if not self.session:
            with self._db:
                cursor = self._db.execute("INSERT INTO sessions VALUES (NULL, ?, NULL, 0, '')", (_now(),))
            self.session = cursor.lastrowid
        return self._db


def _connect(path: str) -> Any:
    import sqlite3

    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Several kernels may share the file: wait for each other's writes a little.
    db = sqlite3.connect(path, timeout=2.0, check_same_thread=False)
    try:
        # WAL with synchronous=NORMAL: a commit costs no fsync, so storing a
        # cell adds microseconds to it, not milliseconds.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


def _reply(rows: list[tuple], output: bool) -> str:
    history: list[Entry] = (
        [[session, line, [source, out]] for session, line, source, out in rows]
        if output
        else [list(row) for row in rows]
    )
    return json.dumps({"status": "ok", "history": history})


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
