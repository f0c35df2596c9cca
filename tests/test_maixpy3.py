"""MaixPy3 boards, one stand-in per release (the release's own files, its C parts emulated): the live view
is found the way the board says it, shown by the kernel, and the legacy RTSP/RTP view read by maixrtsp.py.

The releases are fetched from the package index at test time and cached (tests/maixpy3_releases.py);
without the index and a cache the tests skip.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import rpyc
from kernel_client import kernel
from maixpy3_releases import board, legacy_view
from PIL import Image
from test_video_kernel import image_ids, video_messages
from xrpyc.address import Address
from xrpyc.maixrtsp import LegacyRtspSource
from xrpyc.session import Device, live_view_url

# (release, view server) as boards run them: maixpy3_rpycs (maix.mjpg:start) in every release,
# maix.utils.rtsps in the releases that ship it (0.3.4 to 0.4.3).
GENERATIONS = [
    ("0.3.4", "mjpg"),
    ("0.3.5", "mjpg"),
    ("0.4.3", "mjpg"),
    ("0.4.9", "mjpg"),
    ("0.5.3", "mjpg"),
    ("0.3.4", "rtsps"),
    ("0.4.3", "rtsps"),
]
SHOW_CELL = (
    "import time\nfrom PIL import Image\nfrom maix import display\n"
    "for i in range(15):\n    display.show(Image.new('RGB', (240, 240), (i * 15, 80, 0)))\n"
    "    time.sleep(0.1)\nprint('done')"
)


def connect(port: int, key: str = "maixpy3-test") -> Device:
    return Device.connect(Address("127.0.0.1", port), key, lambda chunks: None)


@pytest.mark.parametrize(("version", "view"), GENERATIONS)
def test_the_view_is_found_from_the_boards_own_servers(version: str, view: str) -> None:
    with board(version, view) as (port, view_port):
        device = connect(port)
        try:
            scheme = "http" if view == "mjpg" else "maix-rtsp"
            path = "/" if view == "mjpg" else "/dev/display"
            # Never 18811, MaixPy3's default: the port the board's server really listens on.
            assert device.video_url == f"{scheme}://127.0.0.1:{view_port}{path}"
        finally:
            device.close(forget=True)


def test_a_view_port_taken_by_another_program_is_no_view() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        # maix.mjpg.start() serves rpyc only if its view thread is still alive when it checks: when the
        # thread has already died of the taken port, the board exits. That race is the release's own.
        for _ in range(10):
            with contextlib.suppress(RuntimeError), board("0.5.3", "mjpg", view_port=squatter.getsockname()[1]) as (
                port,
                _,
            ):
                device = connect(port)
                try:
                    assert device.video_url is None
                finally:
                    device.close(forget=True)
                return
        pytest.fail("the board never served rpyc with its view port taken")


def test_view_descriptions_from_a_device_are_checked() -> None:
    assert live_view_url("::1", ("http", 8080, "/")) == "http://[::1]:8080/"
    assert live_view_url("b", ("maix-rtsp", 18811, "/dev/camera")) == "maix-rtsp://b:18811/dev/camera"
    for hostile in [
        ("file", 1, "/"),
        ("http", 0, "/"),
        ("http", 70000, "/"),
        ("http", True, "/"),
        ("http", 80, "/x y"),
        ("http", 80, "@evil/"),
        ("http", 80, "/\r\nHost: x"),
        ("http", 80),
        ["http", 80, "/"],
        None,
        "http://evil/",
    ]:
        assert live_view_url("board", hostile) is None, hostile


@pytest.mark.video
@pytest.mark.parametrize(("version", "view"), [*((v, "mjpg") for v in ("0.3.4", "0.4.3", "0.5.3")),
                                               *((v, "rtsps") for v in ("0.3.4", "0.4.3"))])  # fmt: skip
def test_kernel_shows_the_live_view_while_a_cell_calls_display_show(version: str, view: str) -> None:
    with board(version, view) as (port, _), kernel(port) as running:
        assert "live view" in running.run("$device()").stream()
        result = running.run(SHOW_CELL)
        time.sleep(0.5)
        frames = [m for m in result.messages if m["msg_type"] in ("display_data", "update_display_data")]
        frames += video_messages(running, result.reply["parent_header"]["msg_id"], 1.0)
        ids = image_ids(frames)
        assert result.stream() == "done\n"
        assert len(ids) >= 5 and len(set(ids)) == 1, (version, len(ids))


def test_show_never_blocks_on_a_0_3_4_board_while_nobody_watches() -> None:
    """0.3.4's view is an 8-frame queue that show() blocks on once full: with the live view off (or between cells,
    or from a background thread) the 9th show() would wait forever; the kernel makes the queue keep the newest."""
    with board("0.3.4") as (port, _), kernel(port) as running:
        assert running.run("$video(False)").status == "ok"
        many = SHOW_CELL.replace("range(15)", "range(40)").replace("time.sleep(0.1)", "pass")
        result = running.run(many, timeout=20)
        assert result.status == "ok" and result.stream() == "done\n"
        queued = running.run("__import__('maix.mjpg').mjpg.MjpgQueue.qsize()")
        assert int(queued.result) <= 8


@pytest.mark.parametrize("version", ["0.3.4", "0.5.3"])
def test_the_display_is_put_back_when_the_last_kernel_leaves(version: str) -> None:
    """0.3.4 needs display.jupyter(show=True, debug=False), 0.5.3 a PIL-aware store_mjpg: both undone."""
    with board(version) as (port, _):
        watcher = rpyc.classic.connect("127.0.0.1", port)
        try:
            before = watcher.eval("(getattr(__import__('maix.display').display, '_remote_show', None), "
                                  "id(__import__('maix.mjpg').mjpg.store_mjpg))")  # fmt: skip
            first, second = connect(port, "first"), connect(port, "second")
            during = watcher.eval("(getattr(__import__('maix.display').display, '_remote_show', None), "
                                  "id(__import__('maix.mjpg').mjpg.store_mjpg))")  # fmt: skip
            assert during != before
            first.close(forget=True)
            time.sleep(2.5)
            still = watcher.eval("(getattr(__import__('maix.display').display, '_remote_show', None), "
                                 "id(__import__('maix.mjpg').mjpg.store_mjpg))")  # fmt: skip
            assert still == during  # the second kernel still watches
            second.close(forget=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                after = watcher.eval("(getattr(__import__('maix.display').display, '_remote_show', None), "
                                     "id(__import__('maix.mjpg').mjpg.store_mjpg))")  # fmt: skip
                if after == before:
                    break
                time.sleep(0.2)
            assert after == before
        finally:
            watcher.close()


# -- the legacy RTSP/RTP view, against 0.3.4's own maix.utils.rtsps


@pytest.fixture(scope="module")
def rtsps_board() -> Iterator[tuple[int, str]]:
    """A 0.3.4 board running rtsps, its display showing a picture."""
    with legacy_view("0.3.4") as view:
        yield view


def test_frames_arrive_in_order(rtsps_board: tuple[int, str]) -> None:
    _, url = rtsps_board
    with LegacyRtspSource(url, timeout=5) as source:
        sequence = []
        start = time.monotonic()
        for _ in range(60):
            frame = source.read()
            assert frame is not None
            sequence.append(source._last_seq)
        seconds = time.monotonic() - start
        assert Image.open(io.BytesIO(frame)).size == (240, 240)
        assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
        lost = sequence[-1] - sequence[0] + 1 - len(sequence)
        print(f"\nrtsps 0.3.4: {len(sequence) / seconds:.1f} fps received, {lost} of {sequence[-1] - sequence[0] + 1} "
              f"frames skipped, {source.dropped} datagrams dropped")  # fmt: skip


def test_truncated_and_foreign_datagrams_are_dropped(rtsps_board: tuple[int, str]) -> None:
    _, url = rtsps_board
    with LegacyRtspSource(url, timeout=5) as source:
        frame = source.read()
        assert frame is not None
        seq = source._last_seq
        target = source._udp.getsockname()
        header = bytes((0x80, 26, (seq + 1000) >> 8 & 0xFF, (seq + 1000) & 0xFF)) + bytes(8)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(header + frame[: len(frame) // 2], target)  # truncated, from the board's address
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", 0))
            stranger.sendto(header + frame, target)  # whole, but not from the board
        time.sleep(0.2)
        later = [source.read() for _ in range(5)]
        assert all(f is not None and f.endswith(b"\xff\xd9") for f in later)
        assert source.dropped >= 2
        assert source._last_seq < seq + 1000  # neither forged packet was taken


def test_close_tears_down_and_releases_the_port(rtsps_board: tuple[int, str]) -> None:
    _, url = rtsps_board
    source = LegacyRtspSource(url, timeout=5)
    assert source.read() is not None
    udp_port = source._udp.getsockname()[1]
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.extend(iter(source.read, None)))
    reader.start()
    time.sleep(0.3)
    source.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    source.close()  # idempotent
    assert source.read() is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", udp_port))  # the port is free
    # rtsps serves one viewer at a time: a new one is served at once, so the session was torn down.
    with LegacyRtspSource(url, timeout=3) as next_viewer:
        assert next_viewer.read() is not None


def test_a_second_viewer_waits_for_the_first(rtsps_board: tuple[int, str]) -> None:
    _, url = rtsps_board
    with LegacyRtspSource(url, timeout=5) as first:
        assert first.read() is not None
        with pytest.raises(TimeoutError, match="one viewer at a time"):
            LegacyRtspSource(url, timeout=1.5)
        assert first.read() is not None
    with LegacyRtspSource(url, timeout=5) as second:
        assert second.read() is not None


def test_a_stalled_sender_gets_a_new_session(rtsps_board: tuple[int, str]) -> None:
    """rtsps' 16-bit RTP sequence overflows after 65,536 frames and its sender stops: brought about here."""
    port, url = rtsps_board
    device = rpyc.classic.connect("127.0.0.1", port)
    try:
        with LegacyRtspSource(url, timeout=4) as source:
            assert source.read() is not None
            ours = source._udp.getsockname()[1]
            overflowed = device.eval(
                "[setattr(s._video_stream, 'current_frame_number', 65534) or 1 for s in "
                "__import__('gc').get_objects() if type(s).__name__ == 'RtspServer' and s._video_stream "
                f"and s._client_address[1] == {ours}]"
            )
            assert len(overflowed) == 1
            # Frame 65,535 goes out (and is dropped here: after frame ~30 it looks older), then nothing.
            stalled_at = time.monotonic()
            assert source.read() is not None  # from a new session, after half the timeout
            assert time.monotonic() - stalled_at >= 1.5 and source._udp.getsockname()[1] != ours
            assert [source.read() for _ in range(10)] and source._last_seq < 1000
    finally:
        device.close()


def test_what_is_not_an_rtsps_view_is_refused(rtsps_board: tuple[int, str]) -> None:
    port, _ = rtsps_board
    for bad in ["rtsp://127.0.0.1:1/x", "maix-rtsp:///dev/display", "maix-rtsp://h:99999/x", "maix-rtsp://h:1/a b"]:
        with pytest.raises(ValueError):
            LegacyRtspSource(bad, timeout=1)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            LegacyRtspSource(f"maix-rtsp://127.0.0.1:{closed.getsockname()[1]}/dev/display", timeout=1)
    # The board's rpyc port answers rpyc, not RTSP: refused with a message, quickly.
    with pytest.raises((ValueError, ConnectionError, TimeoutError)):
        LegacyRtspSource(f"maix-rtsp://127.0.0.1:{port}/dev/display", timeout=2)
