"""The scenarios of Orthanc's Tests/CheckHttpServerSecurity.py (1.13): `python -m orthanc_lite cfg.json` in a
subprocess per configuration; /system's IsHttpServerSecure, or a refusal to start (clear message, non-zero exit).

Readiness is polled (the process exits, or /system answers); every process is stopped in a `finally`.
"""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.orthanc_peer import PROJECT_ROOT, free_port

DEADLINE = 15.0

# (scenario, configuration, credentials used by the client, expected IsHttpServerSecure or None = refuses to start)
SCENARIOS: list[tuple[str, dict[str, Any], tuple[str, str], bool | None]] = [
    ("1", {"RemoteAccessAllowed": False, "RegisteredUsers": {}}, ("orthanc", "orthanc"), True),
    ("2", {"RemoteAccessAllowed": False, "AuthenticationEnabled": False, "RegisteredUsers": {}},
     ("orthanc", "orthanc"), True),
    ("3a", {"RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {"orthanc": "orthanc"}},
     ("orthanc", "orthanc"), False),
    ("3b", {"RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {"alice": "orthanctest"}}, ("alice", "orthanctest"), False),
    ("3c", {"RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {"orthanc": "SECURE"}},
     ("orthanc", "SECURE"), True),
    ("4", {"RemoteAccessAllowed": True}, ("orthanc", "orthanc"), None),
    ("5", {"RemoteAccessAllowed": True, "AuthenticationEnabled": False}, ("orthanc", "orthanc"), False),
    ("6", {"RemoteAccessAllowed": True, "AuthenticationEnabled": True, "RegisteredUsers": {"bob": "s3cret!"}},
     ("bob", "s3cret!"), True),
    ("7", {"RemoteAccessAllowed": True, "AuthenticationEnabled": True}, ("orthanc", "orthanc"), None),
]


def _is_http_server_secure(tmp_path: pathlib.Path, config: dict[str, Any],
                           credentials: tuple[str, str]) -> tuple[bool | None, str]:
    """Start the server; answer (IsHttpServerSecure, "") once /system answers, or (None, stderr) if it exits."""
    port = free_port()
    cfg = {**config, "HttpPort": port, "DicomServerEnabled": False,
           "StorageDirectory": str(tmp_path / "storage")}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    auth = base64.b64encode(":".join(credentials).encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/system", headers={"Authorization": f"Basic {auth}"})
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "orthanc_lite", str(path)], cwd=str(PROJECT_ROOT),
                                   stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if process.poll() is not None:
                assert process.returncode != 0, "a refused start must exit with a non-zero code"
                return None, log.read_text()
            try:
                with urllib.request.urlopen(request, timeout=1) as resp:
                    return bool(json.loads(resp.read())["IsHttpServerSecure"]), ""
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)  # polling interval, not a readiness guess
        raise AssertionError(f"neither answered nor exited within {DEADLINE} s: {log.read_text()}")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


@pytest.mark.parametrize("config,credentials,expected", [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_check_http_server_security(tmp_path: pathlib.Path, config: dict[str, Any], credentials: tuple[str, str],
                                    expected: bool | None) -> None:
    secure, stderr = _is_http_server_secure(tmp_path, config, credentials)
    assert secure is expected
    if expected is None:
        assert "RegisteredUsers" in stderr and "RemoteAccessAllowed" in stderr
