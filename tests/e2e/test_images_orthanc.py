"""Same files, same pixels: every shared test file with pixel data uploaded to real Orthanc 1.10.1 and to orthanc_lite,
then /preview, /image-uint8, /image-uint16, /image-int16, /rendered, /numpy (rescaled and not), /matlab and
/frames/0/raw compared: HTTP status, content type and every pixel value (within 1 grey level, where the JPEG
decoders round differently). Where 1.10.1 cannot decode what we decode, or decodes it wrongly, the file is listed
in BETTER_THAN_1_10 with the reason, and that difference is asserted too. Skipped when /usr/sbin/Orthanc is absent.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import TESTDATA
from tests.e2e.orthanc_peer import ServerProcess, requires_orthanc, start_orthanc, start_orthanc_lite

pytestmark = [pytest.mark.orthanc, requires_orthanc]

ALL_FILES = sorted(str(p.relative_to(TESTDATA)) for p in TESTDATA.rglob("*")
                   if p.is_file() and p.suffix != ".md" and p.name != "DICOMDIR")
# the default run: one file per transfer syntax and per kind of image (the slow test takes them all)
QUICK_FILES = sorted({str(p.relative_to(TESTDATA)) for p in (TESTDATA / "TransferSyntaxes").glob("*.dcm")} | {
    "SignedCT.dcm", "ColorTestMalaterre.dcm", "Implicit-vr-us-palette.dcm",
    "LenaTwiceWithFragments.dcm", "Issue19.dcm", "sample-pdf.dcm", "2017-06-27-XSSInjection.dcm",
    "2026-05-26-oob-monochrome-65535.dcm", "Issue94.dcm"})
ROUTES = ("preview", "image-uint8", "image-uint16", "image-int16", "rendered", "numpy", "numpy?rescale=0", "matlab",
          "frames/0/raw", "frames")

# Orthanc 1.10.1 answers 415/500 where we decode (the 1.13 target decodes them too, with its plugins or fixes)
CANNOT_DECODE_IN_1_10 = {
    "TransferSyntaxes/1.2.840.10008.1.2.4.90.dcm": "Debian's Orthanc 1.10.1 has no JPEG 2000 decoder",
    "TransferSyntaxes/1.2.840.10008.1.2.4.91.dcm": "Debian's Orthanc 1.10.1 has no JPEG 2000 decoder",
    "Issue19.dcm": "uncompressed YBR_FULL: 1.10.1 refuses it, we convert to RGB",
}
# Orthanc 1.10.1 decodes these wrongly (planar RLE colour, fixed in later Orthanc): values are not compared
WRONG_IN_1_10 = {
    "2022-11-14-RLEPlanarConfiguration.dcm": "planar RLE colour mis-decoded by 1.10.1",
    "2023-04-21-RLEPlanarConfigurationYBR_FULL.dcm": "planar RLE colour mis-decoded by 1.10.1",
}
BETTER_THAN_1_10 = {**CANNOT_DECODE_IN_1_10, **WRONG_IN_1_10}


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Real Orthanc and orthanc_lite (a subprocess), each on fresh storage."""
    with start_orthanc(tmp_path / "orthanc") as orthanc, start_orthanc_lite(tmp_path / "lite") as lite:
        yield orthanc, lite


def _upload(url: str, name: str) -> str | None:
    resp = requests.post(url + "/instances", data=(TESTDATA / name).read_bytes(), timeout=30)
    return resp.json()["ID"] if resp.status_code == 200 else None


def _values(route: str, body: bytes) -> np.ndarray | list[float]:
    if route == "matlab":
        return np.array(body.split(b"[ ", 1)[1].split(b"]", 1)[0].replace(b";", b" ").split(), dtype=np.float64)
    if route.startswith("numpy"):
        return np.load(io.BytesIO(body))
    image = np.asarray(Image.open(io.BytesIO(body)))
    return image.astype(np.uint16).view(np.int16) if route == "image-int16" else image


def _compare(name: str, route: str, ours: requests.Response, theirs: requests.Response) -> str | None:
    if ours.status_code != theirs.status_code:
        return f"status {ours.status_code} != Orthanc's {theirs.status_code}"
    if ours.status_code != 200:
        return None
    if ours.headers.get("Content-Type", "").split(";")[0] != theirs.headers.get("Content-Type", "").split(";")[0]:
        return f"content type {ours.headers.get('Content-Type')} != {theirs.headers.get('Content-Type')}"
    if route == "frames":
        return None if ours.json() == theirs.json() else f"frames {ours.json()} != {theirs.json()}"
    if route == "frames/0/raw":
        return None if ours.content == theirs.content else "different bytes"
    if name in WRONG_IN_1_10:
        return None
    a, b = _values(route, ours.content), _values(route, theirs.content)
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        return f"shape {a_arr.shape} != {b_arr.shape}"
    if route.startswith("numpy") and np.asarray(a).dtype != np.asarray(b).dtype:
        return f"dtype {np.asarray(a).dtype} != {np.asarray(b).dtype}"
    diff = float(np.abs(a_arr - b_arr).max()) if a_arr.size else 0.0
    return None if diff <= 1.0 + 1e-3 else f"values differ by up to {diff}"


@pytest.mark.timeout(180)
def test_pixels_equal_real_orthanc(servers: tuple[ServerProcess, ServerProcess]) -> None:
    _check_files(*servers, QUICK_FILES)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pixels_equal_real_orthanc_all_files(servers: tuple[ServerProcess, ServerProcess]) -> None:
    _check_files(*servers, ALL_FILES)


def _check_files(orthanc_peer: ServerProcess, orthanc_lite_process: ServerProcess, files: list[str]) -> None:
    differences: list[str] = []
    better: dict[str, set[str]] = {}
    for name in files:
        theirs_id, ours_id = _upload(orthanc_peer.url, name), _upload(orthanc_lite_process.url, name)
        if theirs_id is None or ours_id is None:
            assert theirs_id == ours_id, name
            continue
        for route in ROUTES:
            theirs = requests.get(f"{orthanc_peer.url}/instances/{theirs_id}/{route}", timeout=60)
            ours = requests.get(f"{orthanc_lite_process.url}/instances/{ours_id}/{route}", timeout=60)
            problem = _compare(name, route, ours, theirs)
            if problem is None:
                continue
            if name in CANNOT_DECODE_IN_1_10 and ours.status_code == 200 and theirs.status_code in (415, 500):
                better.setdefault(name, set()).add(route)
                continue
            differences.append(f"{name} {route}: {problem}")
    assert not differences, "\n".join(differences)
    for name in CANNOT_DECODE_IN_1_10:
        if name not in files:
            continue
        assert "preview" in better.get(name, set()), f"{name}: expected to decode where 1.10.1 cannot"
