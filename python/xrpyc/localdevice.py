"""A private `xrpyc-device` process, started when the local default device is not running.

It listens on a free loopback port, lives as long as the kernel (it also dies
with it: PR_SET_PDEATHSIG) and is stopped at kernel shutdown. It requires a
random token that only this kernel knows (handed over in its environment,
which other users cannot read): on a shared host, other users can reach its
port but not run code in it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time

from .address import Address
from .errors import DeviceError
from .security import Credentials

READY_TIMEOUT = 15.0
_PR_SET_PDEATHSIG = 1


def _child_setup(kernel_pid: int) -> None:
    # The kernel blocks SIGINT in all its threads (the C++ side waits for it
    # with sigwait); a child inherits that mask and must not.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: shutdown() still stops it
    if os.getppid() != kernel_pid:  # the kernel died before prctl took effect: nobody would stop us
        os._exit(1)


class PrivateDevice:
    """An `xrpyc-device` subprocess owned by this kernel."""

    def __init__(self, process: subprocess.Popen, address: Address, token: str) -> None:
        self.process = process
        self.address = address
        self.credentials = Credentials(token=token, trusted=True)  # it is the kernel's own

    @classmethod
    def start(cls) -> PrivateDevice:
        token = secrets.token_urlsafe(32)
        process = subprocess.Popen(
            [sys.executable, "-m", "xrpyc.device", "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "auto"],
            env={**os.environ, "XRPYC_TOKEN": token},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: select() below must see every line not yet read
            preexec_fn=functools.partial(_child_setup, os.getpid()),
            # Its own process group: Jupyter interrupts the kernel's group,
            # and that must not stop the device (it is handled on the device).
            start_new_session=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        line = b""
        while not line.startswith(b"READY"):  # other lines (MJPEG ...) come first
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
                break
            line = process.stdout.readline()
            if not line:
                break
        words = line.decode(errors="replace").split()
        if len(words) < 2 or words[0] != "READY" or not words[1].startswith("rpyc://"):
            process.kill()
            process.wait()
            raise DeviceError(f"could not start a private xrpyc-device (it said {line!r})")
        # Keep reading its console so that a chatty device never blocks on a full pipe.
        threading.Thread(target=_forward, args=(process.stdout,), daemon=True).start()
        return cls(process, Address.parse(words[1][len("rpyc://") :]), token)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _forward(pipe) -> None:
    for line in pipe:
        sys.stderr.write(line.decode(errors="replace"))
