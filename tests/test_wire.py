"""The kernel's ZMQ ports against any local process: malformed, unsigned and replayed messages.

Anyone who can reach the shell, control or stdin port may send anything. Without the
connection file's key a message must be dropped (one stderr line, no content, never
the key) and change nothing; with the key but malformed it must be dropped too; and a
signed message sent again (a replay of captured frames) must be refused. Each attack is
followed by a signed kernel_info_request on the same socket, whose reply proves that the
kernel read the attack and lives on, then by a cell on the device.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from kernel_client import RunningKernel, kernel

DELIMITER = b"<IDS|MSG>"
REPLY_TIMEOUT = 10.0  # s; a reply takes milliseconds
MARKER = "wire-test-content-marker"  # in the attacks' content: must never reach the kernel's log


class Wire:
    """Raw ZMQ access to one running kernel, with its connection file's key."""

    def __init__(self, running: RunningKernel) -> None:
        info = running.km.get_connection_info(session=False)
        self.running = running
        self.key: bytes = info["key"]
        self.digest = info["signature_scheme"].removeprefix("hmac-")
        self.address = f"{info['transport']}://{info['ip']}"
        self.ports = {name: info[f"{name}_port"] for name in ("shell", "control", "stdin")}
        self.session = uuid.uuid4().hex

    @contextlib.contextmanager
    def socket(self, channel: str) -> Iterator[zmq.Socket]:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        # Closing sends what is still queued (an 8 MiB frame takes a while), within bounds.
        sock.linger = int(REPLY_TIMEOUT * 1000)
        sock.connect(f"{self.address}:{self.ports[channel]}")
        try:
            yield sock
        finally:
            sock.close()

    def sign(self, parts: list[bytes], key: bytes | None = None) -> bytes:
        mac = hmac.new(self.key if key is None else key, digestmod=self.digest)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def header(self, msg_type: str) -> dict[str, Any]:
        return {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": self.session, "username": "test",
                "date": "2024-01-01T00:00:00.000000Z", "version": "5.3"}  # fmt: skip

    def parts(self, msg_type: str, content: dict[str, Any]) -> list[bytes]:
        """header, parent_header, metadata, content of a well-formed request."""
        return [json.dumps(p).encode() for p in (self.header(msg_type), {}, {}, content)]

    def signed(self, msg_type: str, content: dict[str, Any]) -> list[bytes]:
        parts = self.parts(msg_type, content)
        return [DELIMITER, self.sign(parts), *parts]

    def signed_parts(self, parts: list[bytes]) -> list[bytes]:
        return [DELIMITER, self.sign(parts), *parts]

    def answers(self, sock: zmq.Socket) -> dict[str, Any]:
        """Sends a signed kernel_info_request on `sock` and returns its reply's content.

        A ROUTER socket hands one peer's messages on in order: the reply comes after
        the kernel has read (and dropped) everything sent on `sock` before.
        """
        request = self.signed("kernel_info_request", {})
        sock.send_multipart(request)
        request_id = json.loads(request[2])["msg_id"]
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline and self.running.km.is_alive():
            if not sock.poll(100):
                continue
            frames = sock.recv_multipart()
            start = frames.index(DELIMITER)
            parent = json.loads(frames[start + 3])
            if isinstance(parent, dict) and parent.get("msg_id") == request_id:
                assert hmac.compare_digest(frames[start + 1], self.sign(frames[start + 2 : start + 6]))
                return json.loads(frames[start + 5])
        raise TimeoutError(f"no kernel_info_reply; kernel {self.state()}")

    def state(self) -> str:
        process = self.running.km.provisioner.process
        code = process.poll()
        return "alive" if code is None else f"exited with {code} (negative: killed by that signal)"


class KernelWithLog:
    """A kernel on the stock device whose stderr goes to a file; started again if an attack killed it."""

    def __init__(self, device_port: int, log: Path) -> None:
        self.device_port = device_port
        self.log = log
        self.stack = contextlib.ExitStack()
        self.running: RunningKernel | None = None

    def get(self) -> RunningKernel:
        if self.running is None or not self.running.km.is_alive():
            self.stack.close()
            stderr = self.stack.enter_context(self.log.open("a"))
            self.running = self.stack.enter_context(kernel(self.device_port, stderr=stderr))
        return self.running


@pytest.fixture(scope="module")
def kernel_with_log(stock_device: int) -> Iterator[KernelWithLog]:
    with tempfile.TemporaryDirectory() as directory:
        holder = KernelWithLog(stock_device, Path(directory) / "kernel.stderr")
        try:
            yield holder
        finally:
            holder.stack.close()


@pytest.fixture
def wire(kernel_with_log: KernelWithLog) -> Wire:
    return Wire(kernel_with_log.get())


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _unsigned_cases() -> dict[str, list[bytes]]:
    """Messages that need no key to send."""
    execute = _json({"code": f"n = n + 1  # {MARKER}", "silent": False})
    header = _json({"msg_id": "1", "msg_type": "execute_request", "session": "s", "username": "u", "version": "5.3"})
    cases = {
        "four frames after the delimiter (issue 13: SIGABRT)": [DELIMITER, b"{}", b"{}", b"{}", b"{}"],
        "two frames after the delimiter (issue 13: SIGSEGV)": [DELIMITER, b"x", b"y"],
        "one empty frame": [b""],
        "no delimiter": [b"{}"] * 5,
        "no delimiter, many frames": [b"x"] * 1000,
        "delimiter only": [DELIMITER],
        "delimiter last": [b"id", DELIMITER],
        "one frame after the delimiter": [DELIMITER, b"{}"],
        "three frames after the delimiter": [DELIMITER, b"{}", b"{}", b"{}"],
        "empty frames": [DELIMITER, b"", b"", b"", b"", b""],
        "two delimiters": [DELIMITER, DELIMITER, DELIMITER, b"{}", b"{}", b"{}", b"{}"],
        "non-JSON": [DELIMITER, b"0" * 64, b"\xff\xfe", b"{", b"[]", b"null"],
        "unsigned execute_request": [DELIMITER, b"", header, b"{}", b"{}", execute],
        "wrong signature": [DELIMITER, b"0" * 64, header, b"{}", b"{}", execute],
        "huge frame": [DELIMITER, b"0" * 64, b"x" * (8 << 20), b"{}", b"{}", b"{}"],
        "many buffers": [DELIMITER, b"0" * 64, header, b"{}", b"{}", execute, *[b"b"] * 1000],
    }
    rng = random.Random(13)
    pool = [DELIMITER, b"", b"{}", b"[]", b"null", b"0" * 64, header, execute]
    for i in range(12):
        frames = [rng.choice(pool) if rng.random() < 0.6 else rng.randbytes(rng.randrange(200))
                  for _ in range(rng.randrange(9))]  # fmt: skip
        cases[f"random frames {i}"] = frames or [b""]
    return cases


UNSIGNED = _unsigned_cases()


def _signed_malformed(wire: Wire) -> dict[str, list[bytes]]:
    """Messages signed with the key, whose frames are still no valid request."""
    h = wire.header("execute_request")
    code = _json({"code": f"n = n + 1  # {MARKER}"})
    without_type = {k: v for k, v in h.items() if k != "msg_type"}
    return {
        "non-JSON header": [b"{", b"{}", b"{}", code],
        "invalid UTF-8": [b'{"msg_type": "\xff"}', b"{}", b"{}", code],
        "header not an object": [b"[]", b"{}", b"{}", code],
        "no msg_type": [_json(without_type), b"{}", b"{}", code],
        "msg_type not a string": [_json({**h, "msg_type": 5}), b"{}", b"{}", code],
        "no msg_id": [_json({k: v for k, v in h.items() if k != "msg_id"}), b"{}", b"{}", code],
        "parent_header not an object": [_json(h), b"1", b"{}", code],
        "metadata not an object": [_json(h), b"{}", b'"m"', code],
        "content not an object": [_json(h), b"{}", b"{}", b"[1, 2]"],
        "empty frames": [b"", b"", b"", b""],
    }


SIGNED_MALFORMED = [
    "non-JSON header", "invalid UTF-8", "header not an object", "no msg_type", "msg_type not a string", "no msg_id",
    "parent_header not an object", "metadata not an object", "content not an object", "empty frames",
]  # fmt: skip


def _device_answers(running: RunningKernel) -> None:
    assert running.run("1 + 1", timeout=30).result == "2"


@pytest.mark.parametrize("channel", ["shell", "control"])
@pytest.mark.parametrize("frames", UNSIGNED.values(), ids=UNSIGNED.keys())
def test_unsigned_or_malformed_message_is_dropped(wire: Wire, channel: str, frames: list[bytes]) -> None:
    with wire.socket(channel) as sock:
        sock.send_multipart(frames)
        assert wire.answers(sock)["implementation"] == "xrpyc", wire.state()
    _device_answers(wire.running)


@pytest.mark.parametrize("channel", ["shell", "control"])
@pytest.mark.parametrize("case", SIGNED_MALFORMED)
def test_signed_but_malformed_message_is_dropped(wire: Wire, channel: str, case: str) -> None:
    wire.running.run("n = 0")
    with wire.socket(channel) as sock:
        sock.send_multipart(wire.signed_parts(_signed_malformed(wire)[case]))
        assert wire.answers(sock)["implementation"] == "xrpyc", wire.state()
    assert wire.running.run("n").result == "0"


def test_forged_requests_change_nothing_and_are_logged_without_content(
    wire: Wire, kernel_with_log: KernelWithLog
) -> None:
    wire.running.run("n = 0")
    parts = wire.parts("execute_request", {"code": f"n = n + 1  # {MARKER}"})
    other = wire.parts("execute_request", {"code": "n = -1"})
    forgeries = {
        "no signature": [DELIMITER, b"", *parts],
        "wrong key": [DELIMITER, wire.sign(parts, key=b"not the key"), *parts],
        "another message's signature": [DELIMITER, wire.sign(other), *parts],
        "upper-case hex": [DELIMITER, wire.sign(parts).upper(), *parts],
        "truncated signature": [DELIMITER, wire.sign(parts)[:-2], *parts],
        "signature with a buffer appended": [DELIMITER, wire.sign(parts) + b"00", *parts],
    }
    for channel in ("shell", "control"):
        with wire.socket(channel) as sock:
            for frames in forgeries.values():
                sock.send_multipart(frames)
            wire.answers(sock)
    assert wire.running.run("n").result == "0"
    log = kernel_with_log.log.read_text(errors="replace")
    assert MARKER not in log and wire.key.decode() not in log
    dropped = [line for line in log.splitlines() if "dropped" in line and "signature" in line]
    assert len(dropped) >= 2 * len(forgeries), log[-2000:]


def test_replayed_request_is_refused(wire: Wire) -> None:
    wire.running.run("n = 0")
    frames = wire.signed("execute_request", {"code": "n = n + 1", "silent": True})
    with wire.socket("shell") as sock:
        sock.send_multipart(frames)
        sock.send_multipart(frames)
        wire.answers(sock)
    # Captured on one channel, replayed on another: the same message.
    with wire.socket("control") as sock:
        sock.send_multipart(frames)
        wire.answers(sock)
    assert wire.running.run("n").result == "1"


def _start_input_cell(running: RunningKernel, code: str) -> str:
    """Runs `code` (which calls input()) and waits for its first input_request; returns the request's msg_id."""
    msg_id = running.kc.execute(code, allow_stdin=True)
    request = running.kc.get_stdin_msg(timeout=30)
    assert request["header"]["msg_type"] == "input_request", request
    return msg_id


def _finish_cell(running: RunningKernel, msg_id: str) -> dict[str, Any]:
    while True:
        reply = running.kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def test_bogus_stdin_frames_are_not_taken_as_the_answer(wire: Wire) -> None:
    running = wire.running
    msg_id = _start_input_cell(running, "answer = input('? ')")
    forged = wire.parts("input_reply", {"status": "ok", "value": f"forged {MARKER}"})
    with wire.socket("stdin") as sock:
        for frames in [*UNSIGNED.values(), *(wire.signed_parts(p) for p in _signed_malformed(wire).values())]:
            sock.send_multipart(frames)
        sock.send_multipart([DELIMITER, b"", *forged])
        sock.send_multipart([DELIMITER, wire.sign(forged, key=b"not the key"), *forged])
        # Signed, but not an input_reply.
        sock.send_multipart(wire.signed("execute_request", {"code": "answer = 'wrong'"}))
        # The kernel is still waiting for its answer. The real one is sent on the same
        # socket: a ROUTER reads one peer's messages in order, so it comes after the rest.
        sock.send_multipart(wire.signed("input_reply", {"status": "ok", "value": "genuine"}))
    assert _finish_cell(running, msg_id)["status"] == "ok", wire.state()
    assert running.run("answer").result == "'genuine'"


def test_replayed_input_reply_is_refused(wire: Wire) -> None:
    running = wire.running
    msg_id = _start_input_cell(running, "first = input('1? ')\nsecond = input('2? ')")
    answer = wire.signed("input_reply", {"status": "ok", "value": "one"})
    with wire.socket("stdin") as sock:
        sock.send_multipart(answer)
        second = running.kc.get_stdin_msg(timeout=30)
        assert second["content"]["prompt"] == "2? "
        sock.send_multipart(answer)  # replayed: must not answer the second prompt
        sock.send_multipart(wire.signed("input_reply", {"status": "ok", "value": "two"}))
    assert _finish_cell(running, msg_id)["status"] == "ok", wire.state()
    assert running.run("(first, second)").result == "('one', 'two')"


def test_abort_queue_drops_bad_messages_and_replays(wire: Wire) -> None:
    # After a failing cell with stop_on_error, the kernel drains the shell queue
    # (abort_queue): what waits there is read by another path than the poll loop.
    wire.running.run("n = 0")
    replayed = wire.signed("execute_request", {"code": "n = n + 1", "silent": True})
    with wire.socket("shell") as sock:
        sock.send_multipart(replayed)
        wire.answers(sock)
        sock.send_multipart(wire.signed("execute_request", {"code": "import time; time.sleep(0.5); 1 / 0",
                                                           "stop_on_error": True}))  # fmt: skip
        for frames in [*UNSIGNED.values(), replayed]:
            sock.send_multipart(frames)
        # What comes while the queue is drained is aborted too (up to 50 ms
        # after the last one): ask until a request is answered.
        while "implementation" not in wire.answers(sock):
            time.sleep(0.2)
    _device_answers(wire.running)
    assert wire.running.run("n").result == "1"
