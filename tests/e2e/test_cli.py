"""`python -m orthanc_lite cfg.json` in a subprocess: start-up on free ports, bad configurations, log levels, shutdown.

Readiness is polled (GET /system, 10 s deadline), never slept for; every process is stopped in a `finally`.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import (
    PROJECT_ROOT,
    ServerProcess,
    free_port,
    spawn_orthanc_lite,
)

READY_DEADLINE = 10.0


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post(url: str, data: bytes) -> dict:
    req = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _run_cli(args: list[str], timeout: float = READY_DEADLINE) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (for configurations that must stop it at once)."""
    return subprocess.run([sys.executable, "-m", "orthanc_lite", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, cwd=str(PROJECT_ROOT), stdin=subprocess.DEVNULL)


def _wait_for_log(proc: ServerProcess, needle: str, deadline: float = READY_DEADLINE) -> str:
    """Poll the server's log file until `needle` appears (the server writes one line per stored instance)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        text = proc.log_path.read_text(errors="replace")
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in the log after {deadline} s:\n{proc.log_tail()}")


def test_starts_on_free_ports_and_answers_system(tmp_path: pathlib.Path) -> None:
    proc = None
    try:
        started = time.monotonic()
        proc = spawn_orthanc_lite(tmp_path, {"Name": "CliTest"}, timeout=READY_DEADLINE)
        assert time.monotonic() - started < READY_DEADLINE
        system = _get_json(proc.url + "/system")
        assert isinstance(system, dict)
        assert system["Name"] == "CliTest"
        assert system["HttpPort"] == proc.http_port
        assert system["Version"] == "1.13.0"
        answer = _post(proc.url + "/instances", make_instance("CLI"))
        assert answer["Status"] == "Success"
        assert _get_json(proc.url + "/patients") == [answer["ParentPatient"]]
        # The index lives where the configuration said.
        assert (proc.storage_dir / "index").exists()
    finally:
        if proc is not None:
            code = proc.stop()
    # SIGTERM is a clean shutdown.
    assert code == 0, proc.log_tail()
    assert "orthanc_lite has stopped" in proc.log_path.read_text()


def test_data_survives_a_clean_restart(tmp_path: pathlib.Path) -> None:
    proc = None
    try:
        proc = spawn_orthanc_lite(tmp_path, timeout=READY_DEADLINE)
        answer = _post(proc.url + "/instances", make_instance("RESTART"))
        proc.restart(timeout=READY_DEADLINE)
        assert _get_json(proc.url + "/instances") == [answer["ID"]]
    finally:
        if proc is not None:
            proc.stop()


@pytest.mark.parametrize(("key", "value"), [("HttpPort", "abc"), ("StableAge", "soon"), ("RemoteAccessAllowed", 3),
                                            ("Name", 42)])
def test_wrong_type_exits_2_naming_the_key(tmp_path: pathlib.Path, key: str, value: object) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"HttpPort": free_port(), "DicomPort": free_port(),
                               "StorageDirectory": str(tmp_path / "s"), key: value}))
    result = _run_cli([str(cfg)])
    assert result.returncode == 2, result.stderr
    assert key in result.stderr
    assert not (tmp_path / "s" / "index").exists()  # nothing was started


def test_missing_configuration_file_exits_2(tmp_path: pathlib.Path) -> None:
    result = _run_cli([str(tmp_path / "nope.json")])
    assert result.returncode == 2
    assert "nope.json" in result.stderr


def test_unknown_key_is_a_warning_and_comments_are_accepted(tmp_path: pathlib.Path) -> None:
    # Orthanc files carry comments and plugin sections; spawn writes JSON, so write a commented file by hand.
    http_port, dicom_port = free_port(), free_port()
    storage = tmp_path / "storage"
    cfg = tmp_path / "commented.json"
    cfg.write_text(
        "{\n  // the HTTP port\n"
        f'  "HttpPort": {http_port}, "DicomPort": {dicom_port},\n'
        f'  /* storage */ "StorageDirectory": "{storage}",\n'
        '  "RemoteAccessAllowed": true, "AuthenticationEnabled": false,\n'
        '  "SomePluginSection": {"Enable": true}\n}\n')
    proc = ServerProcess("orthanc_lite", tmp_path, {"HttpPort": http_port, "DicomPort": dicom_port,
                                                    "StorageDirectory": str(storage)},
                         [sys.executable, "-m", "orthanc_lite", str(cfg)], write_config=False)
    try:
        proc.start(timeout=READY_DEADLINE, attempts=1)
        assert isinstance(_get_json(proc.url + "/system"), dict)
        assert "SomePluginSection" in proc.log_path.read_text()
    finally:
        proc.stop()


@pytest.mark.parametrize(("flag", "expect_info"), [(None, False), ("--verbose", True), ("--trace", True)])
def test_log_level_flags(tmp_path: pathlib.Path, flag: str | None, expect_info: bool) -> None:
    proc = None
    try:
        proc = spawn_orthanc_lite(tmp_path, args=[flag] if flag else [], timeout=READY_DEADLINE)
        answer = _post(proc.url + "/instances", make_instance("LOGS"))
        # With --verbose, one INFO line per stored instance names its public ID.
        if expect_info:
            text = _wait_for_log(proc, answer["ID"])
            assert any(line.startswith("I") and answer["ID"] in line for line in text.splitlines())
            if flag == "--trace":
                assert any(line.startswith("D") for line in text.splitlines()), text[-2000:]
        else:
            # The INFO line would be written before the answer: it is not there, and no I/D line is.
            text = proc.log_path.read_text()
            assert answer["ID"] not in text
            assert not any(line[:1] in ("I", "D") for line in text.splitlines())
        level = urllib.request.urlopen(proc.url + "/tools/log-level", timeout=5).read().decode()
        assert level == {None: "default", "--verbose": "verbose", "--trace": "trace"}[flag]
    finally:
        if proc is not None:
            proc.stop()
