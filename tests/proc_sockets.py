"""The sockets some processes have bound, as Linux lists them in /proc.

A socket a process holds is a link `socket:[INODE]` among its file descriptors
(`/proc/<pid>/fd`); `/proc/net/{tcp,tcp6,udp,udp6}` list each socket of the network
namespace with its inode, local address and state. Joining the two gives the addresses a
process listens on, whatever bound them (Ray's C++ servers, nfcpy's UDP transport).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

# /proc/net/tcp's state column: 0A is LISTEN; UDP sockets have no listen state (07 is
# "closed", which a bound UDP socket reports), so every bound UDP socket counts.
TCP_LISTEN = "0A"


def _inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, PermissionError):
        return inodes  # The process has gone.
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> str:
    """`0100007F` (IPv4) or 32 hex digits (IPv6), both in host order per 32-bit word; an
    IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`) is given as IPv4."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def bound_sockets(pids: list[int], protocol: str) -> list[tuple[str, int, int]]:
    """(address, port, pid) of each socket of `pids` that listens: TCP sockets in LISTEN,
    bound UDP sockets. `protocol` is "tcp" or "udp"; IPv4 and IPv6 both."""
    owner = {inode: pid for pid in pids for inode in _inodes(pid)}
    found: list[tuple[str, int, int]] = []
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue  # A kernel without IPv6.
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in owner or (protocol == "tcp" and state != TCP_LISTEN):
                continue
            hex_address, hex_port = local.split(":")
            port = int(hex_port, 16)
            if protocol == "udp" and port == 0:
                continue  # Not bound yet.
            found.append((_address(hex_address), port, owner[inode]))
    return found


def process_tree(root_pid: int) -> list[int]:
    """`root_pid`, every process descended from it, and every process of its session
    (Ray starts some of its helpers detached from their parent)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The name in parentheses may hold spaces; the parent pid is the second field after.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
        if _session(int(entry)) == root_pid:
            children.setdefault(root_pid, []).append(int(entry))
    tree: set[int] = set()
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        if pid not in tree:
            tree.add(pid)
            pending.extend(children.get(pid, []))
    return sorted(tree)


def _session(pid: int) -> int:
    try:
        return os.getsid(pid)
    except OSError:
        return -1
