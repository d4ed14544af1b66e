"""CPU seconds used by processes of this machine (Linux /proc): per request, where a
server's work goes. Zero for a process that is gone or cannot be read (PostgreSQL on
another machine, say)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def seconds(pid: int) -> float:
    """User and system time of one process so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else 0.0


def tree_seconds(pid: int) -> float:
    """The process and its children (a gunicorn master and its workers)."""
    return seconds(pid) + sum(seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, …"""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()
