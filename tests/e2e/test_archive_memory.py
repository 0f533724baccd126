"""A large archive leaves the server's memory flat: orthanc_lite in a subprocess zips ~300 MB of DICOM while
its peak resident memory (VmHWM) grows by far less than the archive (slow: run with `make test-slow`)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import requests
from pydicom.uid import generate_uid

from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import start_orthanc_lite

pytestmark = pytest.mark.slow


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_archive_memory_is_flat(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(3)
    study, series = generate_uid(), generate_uid()
    with start_orthanc_lite(tmp_path / "lite") as lite, requests.Session() as http:
        total = 0
        sides = [3200] * 6 + [1024] * 60  # 6 streamed members of 20 MB, 60 read-ahead ones of 2 MB
        for i, side in enumerate(sides):
            data = make_instance("MEM", study_uid=study, series_uid=series, instance_number=i + 1, size=side,
                                 PixelData=rng.integers(0, 4096, side * side, dtype=np.uint16).tobytes())
            total += len(data)
            answer = http.post(lite.url + "/instances", data=data, timeout=60)
            assert answer.status_code == 200
        study_id = answer.json()["ParentStudy"]
        before = _peak_kib(lite.pid)
        received = 0
        with http.get(f"{lite.url}/studies/{study_id}/archive", stream=True, timeout=300) as resp:
            assert resp.status_code == 200
            for chunk in resp.iter_content(1 << 20):
                received += len(chunk)
        growth_mib = (_peak_kib(lite.pid) - before) / 1024
    assert total > 240e6 and received > 0.5 * total
    assert growth_mib < 100, f"peak RSS grew by {growth_mib:.0f} MiB for a {total / 1e6:.0f} MB archive"
