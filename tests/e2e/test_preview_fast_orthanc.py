"""The benchmark's small grayscale images (bench/pixels.py: 64x64, explicit little endian, JPEG lossless, JPEG-LS,
RLE, 8-bit JPEG baseline), which take the fast decoding path, give real Orthanc's /image-uint16 and /preview
pixels (exactly for the decoded values, within 1 grey level for the preview's stretch, as test_images_orthanc.py).
Skipped when /usr/sbin/Orthanc is absent."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
import requests
from PIL import Image

from bench.pixels import SYNTAXES, make_instance
from orthanc_lite.dicom.transcode import transcode_file
from tests.e2e.orthanc_peer import requires_orthanc, start_orthanc, start_orthanc_lite

pytestmark = [pytest.mark.orthanc, requires_orthanc]


def _pixels(url: str, iid: str, route: str) -> np.ndarray:
    resp = requests.get(f"{url}/instances/{iid}/{route}", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png", (route, resp.status_code)
    return np.asarray(Image.open(io.BytesIO(resp.content)))


def test_small_previews_equal_orthanc(tmp_path: pathlib.Path) -> None:
    files = {syntax: transcode_file(make_instance(64, 8 if syntax.endswith(".50") else 12, seed=n), syntax, 90)
             for n, syntax in enumerate(SYNTAXES)}
    with start_orthanc(tmp_path / "orthanc") as orthanc, start_orthanc_lite(tmp_path / "lite") as lite:
        for syntax, data in files.items():
            ids = [requests.post(server.url + "/instances", data=data, timeout=30).json()["ID"]
                   for server in (orthanc, lite)]
            for route in ("preview", "image-uint16"):
                expected = _pixels(orthanc.url, ids[0], route)
                for _ in range(2):  # parsed, then from the cached dataset
                    got = _pixels(lite.url, ids[1], route)
                    assert got.dtype == expected.dtype and got.shape == expected.shape, (SYNTAXES[syntax], route)
                    # decoded values are exact; the preview's 0..255 stretch rounds a few pixels apart (as in
                    # test_images_orthanc.py, which allows 1 grey level)
                    tolerance = 1 if route == "preview" else 0
                    assert np.abs(got.astype(int) - expected.astype(int)).max() <= tolerance, (SYNTAXES[syntax], route)
