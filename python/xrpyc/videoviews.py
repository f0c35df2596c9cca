"""The kernel's live videos: streams started with `$video(url)`, which run in the
background until stopped, and the device's own live view, shown while a cell runs.
"""

from __future__ import annotations

import sys
from typing import Any

from .iopub import ThreadPublisher


class VideoViews:
    def __init__(self, native: Any) -> None:
        self._native = native
        self._streams: list[Any] = []
        self._cell_view: Any = None
        # Show the device's MJPEG live view (MaixPy3's display.show) during cells.
        self.live_view = True

    def start(self, url: str, fps: float, width: int) -> Any:
        """Show `url` in the current cell's output, in the background."""
        self._streams = [stream for stream in self._streams if stream.running]
        stream = self._make(url, fps, width, on_end=None)
        self._streams.append(stream)
        return stream

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
        lines += [f"playing: {stream.url}" for stream in running] or ["no stream playing"]
        return "\n".join(lines) + "\n"

    def start_cell_view(self, url: str) -> None:
        """The device's live view, for the cell about to run; its first frame shows the display."""
        if self.live_view:
            self._cell_view = self._make(url, fps=15.0, width=640, on_end=_quiet)

    def stop_cell_view(self) -> None:
        if self._cell_view is not None:
            # Not waiting: frames still in flight land in the cell's output,
            # and the reply is not held up.
            self._cell_view.stop(timeout=0)
            self._cell_view = None

    def _make(self, url: str, fps: float, width: int, on_end: Any) -> Any:
        from .video import VideoOptions, VideoStream  # PyAV and friends only when video is used

        stream = VideoStream(url, ThreadPublisher(self._native), VideoOptions(fps=fps, max_width=width), on_end=on_end)
        stream.start()
        return stream


def _quiet(message: str) -> None:
    # The live view ends with each cell; that is not news. The kernel's log keeps the reason.
    print(f"xrpyc: live view ended: {message}", file=sys.stderr)
