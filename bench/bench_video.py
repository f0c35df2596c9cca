"""Benchmark xrpyc.video: 640x480@30 H.264 over RTSP into a VideoStream, and the JPEG encoders.

Run from the repository root, after `make all`, `../shared/fixtures/install-media-deps` and
`.venv/bin/python -m pip install av pillow simplejpeg`:

    .venv/bin/python bench/bench_video.py                 # 60 s run
    .venv/bin/python bench/bench_video.py --seconds 20

The fixture's RTSP server (../shared/fixtures/rtsp-test-server, a separate process) sends 640x480@30 H.264.

1. Encoders: 150 decoded frames of that stream are converted (one swscale pass to full range) and encoded
   to JPEG (quality 80): simplejpeg from the 4:2:0 planes (what xrpyc.video does), simplejpeg from RGB,
   Pillow from RGB (xrpyc.video's fallback), and the naive Pillow way (VideoFrame.to_image()); median ms
   per frame.
2. Live: a VideoStream with the fps cap raised to 30 and a publisher that only counts, for --seconds after
   a warm-up (first frame + 2 s). Reported: frames received and decoded (every offered frame must be
   decoded), frames/s delivered, CPU of this process (user+system over wall; the server is not counted),
   the added latency from decoded frame to published message (the stream's own stats: mean over the run,
   p95 over its last 1024 frames), the lag (wall time since the first sample minus stream time since then,
   sampled once a second: a growing lag means frames queue somewhere) and the RSS at start and end.

The report is a Markdown table on stdout, progress on stderr; nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from xrpyc.video import VideoOptions, VideoStream, _encode_pillow, _encode_simplejpeg

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
ENCODER_FRAMES = 150
QUALITY = 80
WARMUP = 2.0  # s after the first frame before measuring
EDGE_SAMPLES = 5  # samples (s) averaged at the start and the end of the run to compare lag and memory
SOURCE_FPS = 30
# Goals from the issue, against which the run is reported.
GOAL_FPS = 25.0
GOAL_CPU = 15.0  # % of one core
GOAL_LATENCY_MS = 1000 / SOURCE_FPS
LAG_GROWTH_MS = 1000 / SOURCE_FPS  # more than one frame of lag growth counts as growing
RSS_GROWTH_MIB = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_server() -> tuple[subprocess.Popen, str]:
    """The fixture RTSP server on a free port; returns it and its base URL."""
    process = subprocess.Popen([str(FIXTURES / "rtsp-test-server"), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY "):
        process.terminate()
        sys.exit(f"rtsp-test-server did not start (run ../shared/fixtures/install-media-deps): {line!r}")
    return process, line.split()[1]


# -- 1. encoders ------------------------------------------------------------------------------------------


def decoded_frames(url: str, count: int) -> list[Any]:
    import av
    from xrpyc.video import LOW_DELAY_OPTIONS, RTSP_OPTIONS

    frames: list[Any] = []
    with av.open(url, options={**LOW_DELAY_OPTIONS, **RTSP_OPTIONS}, timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "SLICE"
        for packet in container.demux(stream):
            frames.extend(packet.decode())
            if len(frames) >= count:
                return frames
    return frames


def compare_encoders(frames: list[Any], rounds: int = 3) -> list[tuple[str, float | None, float, int]]:
    """(encoder, convert ms, convert + encode ms, JPEG bytes) per 640x480 frame, medians over the frames.

    Each frame is converted and encoded back to back, as xrpyc.video does right after decoding; the
    candidates take turns frame by frame so that they share the same machine conditions.
    """
    from av.video.reformatter import VideoReformatter
    from PIL import Image

    def simplejpeg_rgb(frame: Any, quality: int) -> bytes:
        import numpy as np
        import simplejpeg

        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : 3 * plane.width]
        return simplejpeg.encode_jpeg(rows.reshape(plane.height, plane.width, 3), quality, colorsubsampling="420")

    def to_image_and_save(frame: Any, quality: int) -> bytes:
        out = io.BytesIO()
        frame.to_image().save(out, format="JPEG", quality=quality)
        return out.getvalue()

    candidates = [  # name, pixel format to convert to (None: the encoder converts), encode
        ("simplejpeg from YUV 4:2:0 planes (xrpyc.video)", "yuv420p", _encode_simplejpeg),
        ("simplejpeg from RGB", "rgb24", simplejpeg_rgb),
        ("Pillow from RGB (xrpyc.video's fallback)", "rgb24", _encode_pillow),
        ("Pillow via VideoFrame.to_image()", None, to_image_and_save),
    ]
    Image.new("RGB", (8, 8)).save(io.BytesIO(), format="JPEG")  # loads Pillow's JPEG plugin before timing
    reformatters = [VideoReformatter() for _ in candidates]  # one each, as a VideoStream keeps one
    converts: list[list[float]] = [[] for _ in candidates]
    totals: list[list[float]] = [[] for _ in candidates]
    sizes = [0] * len(candidates)
    for _ in range(rounds):
        for frame in frames:
            for i, (_, pixel_format, encode) in enumerate(candidates):
                started = time.perf_counter()
                converted = frame
                if pixel_format:
                    converted = reformatters[i].reformat(
                        frame, format=pixel_format, dst_colorspace="ITU601", dst_color_range="JPEG"
                    )
                converted_at = time.perf_counter()
                sizes[i] = len(encode(converted, QUALITY))
                converts[i].append(converted_at - started)
                totals[i].append(time.perf_counter() - started)
    return [
        (name, 1000 * statistics.median(convert) if pixel_format else None, 1000 * statistics.median(total), size)
        for (name, pixel_format, _), convert, total, size in zip(candidates, converts, totals, sizes)
    ]


# -- 2. live ----------------------------------------------------------------------------------------------


class CountingPublisher:
    """Counts image messages and keeps the time of the last one; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images = 0
        self.last_image = 0.0
        self.readouts: list[str] = []

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self.update_display_data(data, metadata, transient)

    def update_display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        with self.lock:
            if "image/jpeg" in data:
                self.images += 1
                self.last_image = time.monotonic()
            else:
                self.readouts.append(data["text/plain"])


def sample(stream: VideoStream, publisher: CountingPublisher) -> tuple[float, float, dict]:
    """(time of the last image message, stream time of its frame, stats), read between two messages."""
    while True:
        with publisher.lock:
            before = publisher.images
        stats = stream.stats
        with publisher.lock:
            if publisher.images == before and stats["frames_shown"] == before:
                return publisher.last_image, stats["pts"], stats
        time.sleep(0.002)


def live_run(url: str, seconds: float) -> dict[str, Any]:
    process = psutil.Process()
    publisher = CountingPublisher()
    stream = VideoStream(url, publisher, VideoOptions(fps=SOURCE_FPS))
    stream.start()
    deadline = time.monotonic() + 10
    while publisher.images == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if publisher.images == 0:
        stream.stop()
        sys.exit(f"no frame from {url}: {stream.stats}")
    time.sleep(WARMUP)

    cpu_start, wall_start = process.cpu_times(), time.monotonic()
    first_time, first_pts, first = sample(stream, publisher)
    lags, rss = [], []
    while time.monotonic() < wall_start + seconds:
        time.sleep(1.0)
        shown_time, pts, _ = sample(stream, publisher)
        lags.append(1000 * ((shown_time - first_time) - (pts - first_pts)))
        rss.append(process.memory_info().rss / 2**20)
        if len(lags) % 10 == 0:
            log(f"  {len(lags)} s: {stream.stats}")
    cpu_end, wall_end = process.cpu_times(), time.monotonic()
    _, last_pts, last = sample(stream, publisher)
    stream.stop()

    wall = wall_end - wall_start
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    received = last["frames_received"] - first["frames_received"]
    return {
        "seconds": wall,
        "received": received,
        "decoded": last["frames_decoded"] - first["frames_decoded"],
        "expected": round(SOURCE_FPS * (last_pts - first_pts)),
        "fps": (last["frames_shown"] - first["frames_shown"]) / wall,
        "cpu": 100 * cpu / wall,
        "latency": last["latency_ms"],
        "latency_p95": last["latency_ms_p95"],
        "lag_start": statistics.mean(lags[:EDGE_SAMPLES]),
        "lag_end": statistics.mean(lags[-EDGE_SAMPLES:]),
        "rss_start": statistics.mean(rss[:EDGE_SAMPLES]),
        "rss_end": statistics.mean(rss[-EDGE_SAMPLES:]),
        "readout": publisher.readouts[-2] if len(publisher.readouts) > 1 else "",
        "encoder": last["encoder"],
    }


# -- report -----------------------------------------------------------------------------------------------


def versions() -> str:
    import av

    found = []
    for package in ("av", "simplejpeg", "pillow", "numpy"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} missing")
    ffmpeg = av.library_versions.get("libavcodec", ())
    return (
        f"Python {platform.python_version()}, {', '.join(found)}, libavcodec {'.'.join(map(str, ffmpeg))}; "
        f"{psutil.cpu_count()} CPUs ({platform.machine()})"
    )


def report(encoders: list[tuple[str, float | None, float, int]], live: dict[str, Any]) -> str:
    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lag_growth = live["lag_end"] - live["lag_start"]
    rss_growth = live["rss_end"] - live["rss_start"]
    lines = [
        f"### xrpyc.video: 640x480@{SOURCE_FPS} H.264 over RTSP, fps cap {SOURCE_FPS}, {live['seconds']:.0f} s",
        "",
        versions(),
        "",
        "| | result | goal | met |",
        "|---|---|---|---|",
        f"| frames decoded / received / sent | {live['decoded']} / {live['received']} / ~{live['expected']} "
        f"| every offered frame decoded | {met(live['decoded'] >= live['received'] >= live['expected'] - 2)} |",
        f"| frames/s delivered | {live['fps']:.1f} | ≥ {GOAL_FPS:g} | {met(live['fps'] >= GOAL_FPS)} |",
        f"| CPU of the process | {live['cpu']:.1f} % of one core | ≤ {GOAL_CPU:g} % | {met(live['cpu'] <= GOAL_CPU)} |",
        f"| added latency, decoded → message ({live['encoder']}) | mean {live['latency']:.1f} ms, "
        f"p95 {live['latency_p95']:.1f} ms | ≤ {GOAL_LATENCY_MS:.0f} ms "
        f"| {met(live['latency_p95'] <= GOAL_LATENCY_MS)} |",
        f"| lag, first {EDGE_SAMPLES} s → last {EDGE_SAMPLES} s | {live['lag_start']:+.1f} → {live['lag_end']:+.1f} ms "
        f"({lag_growth:+.1f}) | no growth | {met(abs(lag_growth) <= LAG_GROWTH_MS)} |",
        f"| RSS, first {EDGE_SAMPLES} s → last {EDGE_SAMPLES} s | {live['rss_start']:.1f} → {live['rss_end']:.1f} MiB "
        f"({rss_growth:+.1f}) | no growth | {met(rss_growth <= RSS_GROWTH_MIB)} |",
        "",
        f"Last readout: `{live['readout']}`",
        "",
        f"### JPEG encoders: {ENCODER_FRAMES} 640x480 frames of the same stream x 3, quality {QUALITY}, medians",
        "",
        "| encoder | convert (swscale, full range) | encode | total | JPEG size |",
        "|---|---|---|---|---|",
    ]
    for name, convert, total, size in encoders:
        convert_text = "(in encode)" if convert is None else f"{convert:.2f} ms"
        encode = total - (convert or 0.0)
        lines.append(f"| {name} | {convert_text} | {encode:.2f} ms | **{total:.2f} ms** | {size / 1024:.1f} KiB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the live run (default 60)")
    args = parser.parse_args()
    if args.seconds < 2 * EDGE_SAMPLES:
        parser.error(f"--seconds must be at least {2 * EDGE_SAMPLES}")

    server, base = start_server()
    try:
        # Live first: the encoder comparison holds 150 decoded frames, which would inflate the RSS.
        log(f"live: {args.seconds:g} s of {base}/h264")
        live = live_run(f"{base}/h264", args.seconds)
        log(f"encoders: decoding {ENCODER_FRAMES} frames of {base}/h264")
        encoders = compare_encoders(decoded_frames(f"{base}/h264", ENCODER_FRAMES))
    finally:
        server.terminate()
        server.wait(5)
    print(report(encoders, live))


if __name__ == "__main__":
    main()
