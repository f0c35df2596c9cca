"""What $device() shows about a device: runs on the device, as agent.py does.

Shipped to the device as source text (see __init__.py). Everything is read from /proc and /sys, which every
Linux board has, rather than from psutil, which boards rarely have; a fact
that cannot be read is left out, never an error.
"""

import glob
import os
import platform
import shutil
import socket
import sys
from typing import List, Tuple

Facts = List[Tuple[str, str]]


def device_facts() -> tuple:
    """((label, value), ...) describing the device, most telling first."""
    facts = [
        ("host", socket.gethostname()),
        ("platform", platform.platform()),
        ("machine", platform.machine()),
    ]  # type: Facts
    for label, read in (
        ("cpu", _cpu),
        ("memory", _memory),
        ("disk", _disk),
        ("temperature", _temperature),
        ("uptime", _uptime),
        ("cameras", _cameras),
    ):
        try:
            value = read()
        except (OSError, ValueError, IndexError):
            value = None
        if value:
            facts.append((label, value))
    facts.extend(
        (
            ("python", f"{platform.python_implementation()} {platform.python_version()}"),
            ("rpyc", _rpyc_version()),
            ("executable", sys.executable),
            ("cwd", os.getcwd()),
        )
    )
    return tuple(facts)


def byte_size(count: float) -> str:
    """A number of bytes for people: "812 B", "3.4 MiB" (also the kernel's, for $upload and $download)."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} TiB"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _cpu() -> str:
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        # x86: "model name"; ARM boards: "Hardware" or "Processor"/"model name".
        if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
            model = value.strip()
            break
    parts = ["{} cores".format(os.cpu_count() or "?")]
    if model:
        parts.insert(0, model)
    if hasattr(os, "getloadavg"):
        parts.append("load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return ", ".join(parts)


def _memory() -> str:
    info = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        info[key] = int(value.split()[0]) * 1024
    available = info.get("MemAvailable", info.get("MemFree", 0))
    return "{} available of {}".format(byte_size(available), byte_size(info["MemTotal"]))


def _disk() -> str:
    usage = shutil.disk_usage(os.getcwd())
    return f"{byte_size(usage.free)} free of {byte_size(usage.total)} (where the cells run: {os.getcwd()})"


def _temperature() -> str:
    readings = []
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            millidegrees = int(_read(zone + "/temp").strip())
            kind = _read(zone + "/type").strip()
        except (OSError, ValueError):
            continue
        readings.append(f"{kind} {millidegrees / 1000:.1f} °C")
    return ", ".join(readings)


def _uptime() -> str:
    seconds = int(float(_read("/proc/uptime").split()[0]))
    days, rest = divmod(seconds, 86400)
    return (f"{days} d " if days else "") + f"{rest // 3600}:{rest % 3600 // 60:02d}"


def _cameras() -> str:
    return ", ".join(sorted(glob.glob("/dev/video*")))


def _rpyc_version() -> str:
    try:
        import rpyc
    except Exception:
        return "not importable"
    return str(getattr(rpyc, "__version__", "?"))
