"""Live video through the built kernel: $video streams and the device's live view during cells."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from kernel_client import RunningKernel, kernel
from servers import xrpyc_device
from test_video import mjpeg_server, rtsp_server

pytestmark = pytest.mark.video


def video_messages(running: RunningKernel, parent_id: str, seconds: float) -> list[dict]:
    """display_data/update_display_data replying to `parent_id`, gathered for `seconds`."""
    found: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = running.kc.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
        except Exception:
            continue
        if msg["parent_header"].get("msg_id") == parent_id and msg["msg_type"] in (
            "display_data",
            "update_display_data",
        ):
            found.append(msg)
    return found


def image_ids(messages: list[dict]) -> list[str]:
    return [m["content"]["transient"]["display_id"] for m in messages if "image/jpeg" in m["content"].get("data", {})]


def test_video_command_streams_in_the_background_until_stopped(device: int) -> None:
    pytest.importorskip("av")
    with rtsp_server() as (_, base), kernel(device) as running:
        started = running.run(f'$video("{base}/h264", fps=10)')
        assert started.status == "ok"
        frames = video_messages(running, started.reply["parent_header"]["msg_id"], 4.0)
        ids = image_ids(frames)
        # First a display_data, then updates of the same display, while the kernel is idle.
        assert frames[0]["msg_type"] == "display_data" and len(set(ids)) == 1 and len(ids) >= 10
        assert len(ids) <= 4.0 * 10 + 5  # the rate cap holds
        jpeg = base64.b64decode(frames[-1]["content"]["data"]["image/jpeg"])
        assert jpeg.startswith(b"\xff\xd8")
        assert "1 stream" not in running.run("$video()").stream() and "playing" in running.run("$video()").stream()
        stopped = running.run("$video.stop()")
        assert stopped.stream() == "stopped 1 video stream\n"
        time.sleep(0.5)
        assert len(image_ids(video_messages(running, started.reply["parent_header"]["msg_id"], 1.0))) == 0
        assert running.run("1 + 1").result == "2"


def test_interrupt_while_idle_stops_video(device: int) -> None:
    pytest.importorskip("av")
    with rtsp_server() as (_, base), kernel(device) as running:
        started = running.run(f'$video("{base}/mjpeg")')
        parent = started.reply["parent_header"]["msg_id"]
        assert image_ids(video_messages(running, parent, 3.0))
        running.km.interrupt_kernel()
        time.sleep(1.0)
        video_messages(running, parent, 0.5)  # what was in flight
        assert image_ids(video_messages(running, parent, 1.0)) == []
        assert running.run("'alive'").result == "'alive'"


VIDEO_MODULES = "import sys; print(sorted(m for m in ('av','numpy','simplejpeg','PIL') if m in sys.modules))"


def test_mjpeg_passes_through_without_loading_a_video_library(device: int) -> None:
    with mjpeg_server() as url, kernel(device) as running:
        started = running.run(f'$video("{url}")')
        assert len(image_ids(video_messages(running, started.reply["parent_header"]["msg_id"], 2.0))) >= 20
        assert running.run("$video.stop()").stream() == "stopped 1 video stream\n"
        assert running.run(f'$exec("{VIDEO_MODULES}")').stream() == "[]\n"


def test_video_records_to_a_file_and_refuses_to_overwrite(device: int, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    target = tmp_path / "run1.mkv"
    with mjpeg_server() as url, kernel(device, cwd=str(tmp_path)) as running:
        started = running.run(f'$video("{url}", record="run1.mkv")')
        assert started.stream() == f"recording to {target}\n"
        messages = video_messages(running, started.reply["parent_header"]["msg_id"], 3.0)
        readouts = [m["content"]["data"]["text/plain"] for m in messages if "image/jpeg" not in m["content"]["data"]]
        assert any("recording run1.mkv: " in line for line in readouts)
        assert "recording run1.mkv" in running.run("$video()").stream()
        running.run("$video.stop()")
        refused = running.run(f'$video("{url}", record="run1.mkv")')
        assert refused.error["evalue"] == f"$video: cannot record: {target} exists: pass overwrite=True to replace it"
        size = target.stat().st_size
        assert running.run(f'$video("{url}", record="run1.mkv", overwrite=True)').status == "ok"
        time.sleep(1.0)
    # Shutting the kernel down closed the second recording: a complete file.
    with av.open(str(target)) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
        assert sum(1 for _ in container.decode(video=0)) >= 10
    assert size > 0


def test_bad_video_commands(device: int) -> None:
    with kernel(device) as running:
        assert running.run('$video("ftp://example")').error["ename"] == "CommandError"
        assert running.run('$video("rtsp://127.0.0.1:1/x", fps=0)').error["ename"] == "CommandError"
        dead = running.run('$video("rtsp://127.0.0.1:1/none")')
        assert dead.status == "ok"  # it starts; the readout says why it ended
        messages = video_messages(running, dead.reply["parent_header"]["msg_id"], 6.0)
        texts = [m["content"]["data"].get("text/plain", "") for m in messages]
        assert any("refused" in text or "cannot open" in text for text in texts)


def test_device_live_view_during_a_cell() -> None:
    pytest.importorskip("av")
    with xrpyc_device(0, "--mjpeg-port", "auto") as port, kernel(port) as running:
        assert "live view" in running.run("$device()").stream()
        code = (
            "import time\nfrom PIL import Image\nfrom xrpyc.device import display\n"
            "for i in range(15):\n    display.show(Image.new('RGB', (320, 240), (i * 15, 80, 0)))\n"
            "    time.sleep(0.1)\nprint('done')"
        )
        result = running.run(code)
        time.sleep(0.5)
        frames = [m for m in result.messages if m["msg_type"] in ("display_data", "update_display_data")]
        frames += video_messages(running, result.reply["parent_header"]["msg_id"], 1.0)
        ids = image_ids(frames)
        assert len(ids) >= 5 and len(set(ids)) == 1
        assert result.stream() == "done\n"  # printed text stays; nothing is cleared
        assert all(m["msg_type"] != "clear_output" for m in result.messages)
        # A cell that shows nothing gets no video output.
        quiet = running.run("x = 1")
        assert quiet.messages == [] and video_messages(running, quiet.reply["parent_header"]["msg_id"], 1.0) == []
        running.run("$video(False)")
        off = running.run(code)
        time.sleep(0.5)
        assert image_ids(off.messages + video_messages(running, off.reply["parent_header"]["msg_id"], 0.5)) == []
