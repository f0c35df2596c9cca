"""Loopback addresses, and who owns the process listening on one (Linux's /proc/net/tcp and tcp6).

On a shared host (a JupyterHub, a classroom server) any user can listen on
127.0.0.1:18812 before the real default device does and so receive the cells of
every kernel that goes there without asking. A kernel uses a loopback device it
did not authenticate only when the listener belongs to its own user (or root).
"""

from __future__ import annotations

import ipaddress

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp's hex address: 32-bit words in the host's byte order (little-endian here)."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _serves(listening: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> bool:
    """True when a socket listening on `listening` accepts connections to `host` (a loopback name or address)."""
    if listening.is_unspecified:  # 0.0.0.0 or ::, every address
        return True
    if isinstance(listening, ipaddress.IPv6Address) and listening.ipv4_mapped is not None:
        listening = listening.ipv4_mapped
    targets = {"127.0.0.1", "::1"} if host == "localhost" else {host}
    return any(listening == ipaddress.ip_address(target) for target in targets)


def listener_uids(host: str, port: int) -> set[int] | None:
    """The user ids of the sockets listening where a connection to loopback `host`:`port` goes.

    None when this cannot be known (no /proc/net: not Linux, or a restricted sandbox).
    """
    found: set[int] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines)  # the column names
                readable = True
                for line in lines:
                    fields = line.split()
                    local, state, uid = fields[1], fields[3], fields[7]
                    hex_address, _, hex_port = local.partition(":")
                    if state == _LISTEN and int(hex_port, 16) == port and _serves(_address(hex_address), host):
                        found.add(int(uid))
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return found if readable else None


def owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1), by name or number."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
