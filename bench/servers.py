"""The two servers under test, started as subprocesses on free ports with fresh storage (tests/e2e/orthanc_peer.py),
and what the benchmark reads about their process: resident memory and CPU time.
"""

from __future__ import annotations

import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.orthanc_peer import (
    ORTHANC_AVAILABLE,
    ServerProcess,
    spawn_orthanc,
    spawn_orthanc_lite,
)

LITE = "orthanc_lite"
ORTHANC = "orthanc"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str               # LITE or ORTHANC
    process: ServerProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        return _status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        return _status_kib(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) so far."""
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        self.process.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start(name: str, workdir: pathlib.Path, config: dict[str, Any] | None = None) -> Server:
    """Start one server with fresh storage under workdir/name."""
    folder = workdir / name
    if name == LITE:
        return Server(name, spawn_orthanc_lite(folder, config, timeout=60))
    if name == ORTHANC:
        return Server(name, spawn_orthanc(folder, config, timeout=60))
    raise ValueError(name)


def storage_bytes(server: Server) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(server.process.storage_dir):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


__all__ = ["LITE", "ORTHANC", "ORTHANC_AVAILABLE", "Server", "cpu_seconds", "start", "storage_bytes"]
