"""Start a DICOM server as a child process on free ports, wait until it answers, stop it: real Orthanc or orthanc_lite.

Reusable by any test or script (stdlib only, no pytest import at module level beyond the fixtures at the end):

    from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, start_orthanc, start_orthanc_lite

    with start_orthanc(tmp_path / "orthanc") as peer:          # real /usr/sbin/Orthanc, fresh storage
        requests.get(peer.url + "/system")                     # peer.http_port, peer.dicom_port, peer.aet
    with start_orthanc_lite(tmp_path / "lite", {"StableAge": 1}) as lite:
        ...                                                    # python -m orthanc_lite cfg.json
        lite.kill()                                            # SIGKILL (crash tests); lite.restart() starts it again

`start_*` are context managers that always stop the process (SIGTERM, then SIGKILL after a grace period). Use
`spawn_orthanc` / `spawn_orthanc_lite` for a handle you stop yourself (`handle.stop()`). `config` entries override the
defaults written to `<workdir>/config.json`: storage and index under `<workdir>/storage`, remote access on, no
authentication, no plugins (pass `plugins=True` to real Orthanc to load Debian's DICOMweb/worklist plugins). The
process's stdout+stderr go to `<workdir>/server.log`; a start-up failure raises `ServerStartError` with its tail.

Pytest fixtures (import them into a test module, e.g. `from tests.e2e.orthanc_peer import orthanc_peer`):
`orthanc_peer` (a real Orthanc per test; the test is skipped, saying why, when /usr/sbin/Orthanc is absent) and
`orthanc_lite_process` (orthanc_lite in a subprocess per test). `requires_orthanc` is a ready-made skipif marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ORTHANC_BIN = os.environ.get("ORTHANC_BIN", "/usr/sbin/Orthanc")
ORTHANC_AVAILABLE = os.path.exists(ORTHANC_BIN) and os.access(ORTHANC_BIN, os.X_OK)
ORTHANC_PLUGINS_DIR = "/usr/share/orthanc/plugins"
SKIP_REASON = f"real Orthanc not installed at {ORTHANC_BIN} (apt install orthanc, or set ORTHANC_BIN)"
PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]

START_TIMEOUT = 20.0   # seconds for /system to answer
STOP_TIMEOUT = 10.0    # seconds between SIGTERM and SIGKILL


class ServerStartError(RuntimeError):
    """The child process exited or did not answer /system in time."""


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ready(url: str, timeout: float = 1.0) -> bool:
    """True when GET {url}/system answers 200."""
    try:
        with urllib.request.urlopen(url + "/system", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ServerProcess:
    """A running server child process. `kind` is "orthanc" or "orthanc_lite"."""

    kind: str
    workdir: pathlib.Path
    config: dict[str, Any]
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    write_config: bool = True   # False: argv already names a configuration written by the caller

    @property
    def http_port(self) -> int:
        return int(self.config["HttpPort"])

    @property
    def dicom_port(self) -> int:
        return int(self.config["DicomPort"])

    @property
    def aet(self) -> str:
        return str(self.config.get("DicomAet", "ORTHANC"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def storage_dir(self) -> pathlib.Path:
        return pathlib.Path(self.config["StorageDirectory"])

    @property
    def config_path(self) -> pathlib.Path:
        return self.workdir / "config.json"

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / "server.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT, attempts: int = 3) -> ServerProcess:
        """Write the configuration, spawn the process and wait for /system. Free ports are re-picked
        when a start fails (another process may have grabbed a port between free_port() and bind)."""
        last: ServerStartError | None = None
        for _ in range(attempts):
            try:
                self._start_once(timeout)
                return self
            except ServerStartError as exc:
                last = exc
                if self.process is not None and self.process.poll() is None:
                    self.kill()
                self.config["HttpPort"], self.config["DicomPort"] = free_port(), free_port()
        assert last is not None
        raise last

    def _start_once(self, timeout: float) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.write_config:
            self.config_path.write_text(json.dumps(self.config, indent=2))
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            env = {**os.environ, **self.extra_env}
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=str(PROJECT_ROOT), env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"{self.kind} exited with code {self.process.returncode} while starting:\n"
                                       f"{self.log_tail()}")
            if http_ready(self.url, timeout=0.5):
                return
            time.sleep(0.05)  # polling interval, not a readiness guess
        raise ServerStartError(f"{self.kind} did not answer {self.url}/system within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait, SIGKILL if needed. Idempotent; returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would (no clean-up runs in the server)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Stop if running, then start again on the same storage (ports are kept if still free)."""
        self.stop()
        return self.start(timeout)

    def rss_kib(self) -> int:
        """Resident set size of the server process (VmRSS from /proc/<pid>/status), in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def _base_config(workdir: pathlib.Path, name: str) -> dict[str, Any]:
    storage = workdir / "storage"
    return {
        "Name": name,
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": free_port(),
        "DicomPort": free_port(),
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": False,
        "StableAge": 60,
    }


def spawn_orthanc(workdir: str | os.PathLike[str], config: Mapping[str, Any] | None = None, plugins: bool = False,
                  verbose: bool = False, timeout: float = START_TIMEOUT) -> ServerProcess:
    """Start real Orthanc with a fresh config in workdir; the caller must call .stop()."""
    if not ORTHANC_AVAILABLE:
        raise ServerStartError(SKIP_REASON)
    wd = pathlib.Path(workdir)
    cfg = _base_config(wd, "RealOrthanc")
    cfg["Plugins"] = [ORTHANC_PLUGINS_DIR] if plugins else []
    cfg.update(config or {})
    argv = [ORTHANC_BIN, str(wd / "config.json")] + (["--verbose"] if verbose else [])
    return ServerProcess("orthanc", wd, cfg, argv).start(timeout)


def spawn_orthanc_lite(workdir: str | os.PathLike[str], config: Mapping[str, Any] | None = None,
                       verbose: bool = False, timeout: float = START_TIMEOUT,
                       python: str = sys.executable, args: Sequence[str] = ()) -> ServerProcess:
    """Start `python -m orthanc_lite config.json [args]` in workdir; the caller must call .stop()."""
    wd = pathlib.Path(workdir)
    cfg = _base_config(wd, "OrthancLite")
    cfg.update(config or {})
    argv = [python, "-m", "orthanc_lite", str(wd / "config.json"), *args] + (["--verbose"] if verbose else [])
    return ServerProcess("orthanc_lite", wd, cfg, argv, extra_env={"PYTHONUNBUFFERED": "1"}).start(timeout)


@contextlib.contextmanager
def start_orthanc(workdir: str | os.PathLike[str], config: Mapping[str, Any] | None = None, plugins: bool = False,
                  verbose: bool = False) -> Iterator[ServerProcess]:
    """Real Orthanc for the duration of the block."""
    proc = spawn_orthanc(workdir, config, plugins=plugins, verbose=verbose)
    try:
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def start_orthanc_lite(workdir: str | os.PathLike[str], config: Mapping[str, Any] | None = None,
                       verbose: bool = False) -> Iterator[ServerProcess]:
    """orthanc_lite in a subprocess for the duration of the block."""
    proc = spawn_orthanc_lite(workdir, config, verbose=verbose)
    try:
        yield proc
    finally:
        proc.stop()


# --- pytest fixtures (pytest is imported lazily so that scripts such as bench/ can use this module without it) ---
try:
    import pytest
except ImportError:  # pragma: no cover - outside the test environment
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    requires_orthanc = pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)

    @pytest.fixture
    def orthanc_peer(tmp_path: pathlib.Path) -> Iterator[ServerProcess]:
        """A real Orthanc with fresh storage under tmp_path; skipped (with the reason) when it is not installed."""
        if not ORTHANC_AVAILABLE:
            pytest.skip(SKIP_REASON)
        with start_orthanc(tmp_path / "orthanc") as proc:
            yield proc

    @pytest.fixture
    def orthanc_lite_process(tmp_path: pathlib.Path) -> Iterator[ServerProcess]:
        """orthanc_lite started with `python -m orthanc_lite` under tmp_path."""
        with start_orthanc_lite(tmp_path / "lite") as proc:
            yield proc


__all__ = [
    "ORTHANC_AVAILABLE", "ORTHANC_BIN", "SKIP_REASON", "ServerProcess", "ServerStartError", "free_port", "http_ready",
    "spawn_orthanc", "spawn_orthanc_lite", "start_orthanc", "start_orthanc_lite",
]
