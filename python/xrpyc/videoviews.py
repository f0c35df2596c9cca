"""The kernel's live videos: streams started with `$video(url)`, which run in the
background until stopped, and the device's own live view, shown while a cell runs.
"""

from __future__ import annotations

import html
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .frontend import Frontend, ThreadPublisher

# The live view stays connected between cells, and a device sends a frame only
# when its picture changes: silence is normal, so reads wait long.
LIVE_VIEW_TIMEOUT = 24 * 3600.0


class _CellRouter:
    """A publisher that gives a device's live view to whichever cell is running.

    The first frame during a cell opens a display in that cell's output, the
    next ones update it; frames between cells are dropped, so a cell never
    shows a picture from before it ran. The readout line is for $video only.
    """

    def __init__(self, frontend: Frontend) -> None:
        self._frontend = frontend
        self._lock = threading.Lock()
        self._publisher: ThreadPublisher | None = None
        self._display_id: str | None = None

    def begin_cell(self) -> None:
        with self._lock:
            self._publisher, self._display_id = self._frontend.thread_publisher(), None

    def end_cell(self) -> None:
        with self._lock:
            self._publisher = None

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        if "image/jpeg" not in data:
            return
        with self._lock:
            if self._publisher is None:
                return
            if self._display_id is None:
                self._display_id = os.urandom(16).hex()
                self._publisher.display_data(data, metadata, {"display_id": self._display_id})
            else:
                self._publisher.update_display_data(data, metadata, {"display_id": self._display_id})

    update_display_data = display_data


class SideBySide:
    """One display with the latest frame of several streams in a row, each captioned (several boards' views).

    Each stream publishes through its own pane; every frame republishes the row
    (the others' latest frames included), so it suits a few views, not dozens.
    """

    def __init__(self, frontend: Frontend, captions: list[str]) -> None:
        self._publisher = frontend.thread_publisher()
        self._captions = captions
        self._frames: list[str | None] = [None] * len(captions)
        self._lock = threading.Lock()  # frames come from each stream's thread
        self._display_id: str | None = None

    def pane(self, index: int) -> Any:
        row = self

        class Pane:
            def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
                if isinstance(data.get("image/jpeg"), str):  # not the readout line
                    row._show(index, data["image/jpeg"])

            update_display_data = display_data

        return Pane()

    def _show(self, index: int, jpeg: str) -> None:
        with self._lock:
            self._frames[index] = jpeg
            cells = "".join(
                '<figure style="margin: 0 8px 0 0">'
                + (f'<img src="data:image/jpeg;base64,{html.escape(frame)}">' if frame else "<div>waiting…</div>")
                + f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                for caption, frame in zip(self._captions, self._frames)
            )
            data = {"text/html": f'<div style="display: flex; flex-wrap: wrap">{cells}</div>',
                    "text/plain": "live views: " + ", ".join(self._captions)}  # fmt: skip
            if self._display_id is None:
                self._display_id = os.urandom(16).hex()
                self._publisher.display_data(data, {}, {"display_id": self._display_id})
            else:
                self._publisher.update_display_data(data, {}, {"display_id": self._display_id})


class VideoViews:
    def __init__(self, frontend: Frontend) -> None:
        self._frontend = frontend
        self._streams: list[Any] = []
        self._router = _CellRouter(frontend)
        self._live: Any = None  # the device's live view stream
        # Show the device's MJPEG live view (MaixPy3's display.show) during cells.
        self.live_view = True

    def start(self, url: str, fps: float, width: int, timeout: float, recorder: Any = None) -> Any:
        """Show `url` in the current cell's output, in the background (recording it with `recorder`)."""
        from .video import VideoOptions

        self._streams = [stream for stream in self._streams if stream.running]
        options = VideoOptions(fps=fps, max_width=width, timeout=timeout)
        stream = self._play(url, self._frontend.thread_publisher(), options, None, recorder)
        self._streams.append(stream)
        return stream

    def start_row(self, sources: list[tuple[str, str, float]], fps: float, width: int) -> None:
        """Play several streams side by side in one display: (caption, url, read timeout) each."""
        from .video import VideoOptions

        self._streams = [stream for stream in self._streams if stream.running]
        row = SideBySide(self._frontend, [caption for caption, _, _ in sources])
        for index, (_, url, timeout) in enumerate(sources):
            options = VideoOptions(fps=fps, max_width=width, timeout=timeout)
            self._streams.append(self._play(url, row.pane(index), options, None))

    def stop_all(self) -> int:
        """Stop the streams started with $video; returns how many were running."""
        running = [stream for stream in self._streams if stream.running]
        for stream in running:
            stream.stop()
        self._streams = []
        return len(running)

    def describe(self) -> str:
        running = [stream for stream in self._streams if stream.running]
        lines = [f"live view during cells: {'on' if self.live_view else 'off'}"]
        lines += [
            f"playing: {stream.url}" + (f" · {stream.recorder.status()}" if stream.recorder else "")
            for stream in running
        ] or ["no stream playing"]
        return "\n".join(lines) + "\n"

    def start_cell_view(self, url: str) -> None:
        """The device's live view goes to the cell about to run."""
        if not self.live_view:
            return
        if self._live is None or self._live.url != url or not self._live.running:
            from .video import VideoOptions

            self.stop_live_view()
            options = VideoOptions(timeout=LIVE_VIEW_TIMEOUT)
            self._live = self._play(url, self._router, options, _quiet)
        self._router.begin_cell()

    def stop_cell_view(self) -> None:
        # The stream stays connected for the next cell; its frames go nowhere meanwhile.
        self._router.end_cell()

    def stop_live_view(self) -> None:
        if self._live is not None:
            self._live.stop(timeout=0)
            self._live = None

    @staticmethod
    def _play(url: str, publisher: Any, options: Any, on_end: Any, recorder: Any = None) -> Any:
        from .video import VideoStream

        stream = VideoStream(url, publisher, options, on_end=on_end, recorder=recorder)
        stream.start()
        return stream


def _quiet(message: str) -> None:
    # The live view restarts with the next cell; the kernel's log keeps the reason.
    print(f"xrpyc: live view ended: {message}", file=sys.stderr)
