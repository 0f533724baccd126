"""Large datasets are received in chunks to disk: the server's memory stays flat while storescu sends them.

The server runs in this process, so the test samples this process's RSS while storescu (a subprocess)
sends. The big files are written in chunks, never built in memory.
"""

from __future__ import annotations

import asyncio
import io
import pathlib
import struct

import pydicom
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import requires_dcmtk, run_tool

pytestmark = requires_dcmtk

MB = 1024 * 1024


def write_big_instance(path: pathlib.Path, side: int, study_uid: str, series_uid: str, number: int) -> int:
    """A CT instance of side x side 16-bit pixels, the pixel data streamed to disk; returns its size."""
    small = pydicom.dcmread(io.BytesIO(make_instance("BIGPAT", study_uid=study_uid, series_uid=series_uid,
                                                     instance_number=number, size=8)))
    del small.PixelData
    small.Rows = side
    small.Columns = side
    head = io.BytesIO()
    small.save_as(head, enforce_file_format=True)
    length = side * side * 2
    with open(path, "wb") as f:
        f.write(head.getvalue())
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        chunk = bytes(range(256)) * (4 * 1024)  # 1 MiB
        left = length
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
    return path.stat().st_size


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _send_and_watch(server: orthanc_lite.Server, files: list[pathlib.Path]) -> tuple[int, int]:
    """(peak RSS growth, number of stored instances) while storescu sends `files`."""
    base = rss()
    peak = base
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            try:
                await asyncio.wait_for(done.wait(), 0.02)
            except TimeoutError:
                pass

    sampler = asyncio.create_task(sample())
    try:
        result = await run_tool("storescu", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port), *files,
                                timeout=600)
    finally:
        done.set()
        await sampler
    assert result.ok, result.output
    stats = await server.context.index.statistics()
    return peak - base, stats["CountInstances"]


async def test_big_instance_memory_stays_flat(server: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    f = tmp_path / "big.dcm"
    size = write_big_instance(f, 8192, generate_uid(), generate_uid(), 1)  # 128 MiB of pixels
    growth, count = await _send_and_watch(server, [f])
    print(f"RSS growth {growth / MB:.1f} MiB for a {size / MB:.0f} MiB instance")
    assert count == 1
    assert growth < 48 * MB, f"RSS grew by {growth / MB:.0f} MiB for a {size / MB:.0f} MiB dataset"


@pytest.mark.slow
async def test_one_gigabyte_study(server: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    study, series = generate_uid(), generate_uid()
    files = []
    for i in range(4):
        f = tmp_path / f"big{i}.dcm"
        write_big_instance(f, 11585, study, series, i + 1)  # ~256 MiB each
        files.append(f)
    growth, count = await _send_and_watch(server, files)
    print(f"RSS growth {growth / MB:.1f} MiB for a 1 GiB study")
    assert count == 4
    assert growth < 64 * MB, f"RSS grew by {growth / MB:.0f} MiB for a 1 GiB study"
