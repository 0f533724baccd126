"""Files Orthanc accepts and how it shows their tags (Tests.py test_cp246, test_private_tags): a sequence encoded
as UN of undefined length with implicit-VR items (CP-246), private tags named from the `Dictionary`
configuration and from DCMTK's private dictionary. Compared with real Orthanc where it has the feature."""

from __future__ import annotations

import io
import pathlib
import struct

import aiohttp
import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc


def cp246_file() -> bytes:
    """Explicit VR Little Endian; LanguageCodeSequence (0008,0006) written as UN, undefined length, its item in
    implicit VR (DICOM CP-246), placed before SOPClassUID and the UIDs so that a parser stopping there loses them."""
    ds = pydicom.dcmread(io.BytesIO(make_instance("CP246", study_uid="1.2.246.1", series_uid="1.2.246.2",
                                                  sop_uid="1.2.246.3")))
    ds.add_new(0x00080007, "LO", "PLACEHOLDER!")  # an unknown tag right after 0008,0006, replaced below
    buf = io.BytesIO()
    ds.save_as(buf)
    data = buf.getvalue()
    placeholder = struct.pack("<HH", 0x0008, 0x0007) + b"LO" + struct.pack("<H", 12) + b"PLACEHOLDER!"
    assert data.count(placeholder) == 1
    item = Dataset()
    item.CodeValue = "en"
    item.CodingSchemeDesignator = "RFC5646"
    item.CodeMeaning = "English"
    raw = DicomBytesIO()
    raw.is_little_endian, raw.is_implicit_VR = True, True
    write_dataset(raw, item)
    body = raw.getvalue()
    sequence = (struct.pack("<HH", 0x0008, 0x0006) + b"UN\0\0" + b"\xff\xff\xff\xff"
                + struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return data.replace(placeholder, sequence)


async def test_cp246(http: aiohttp.ClientSession) -> None:
    async with http.post("/instances", data=cp246_file()) as resp:
        assert resp.status == 200, await resp.text()
        instance = (await resp.json())["ID"]
    async with http.get(f"/instances/{instance}/tags?short") as resp:
        tags = await resp.json()
    assert tags["0008,0016"] == "1.2.840.10008.5.1.4.1.1.2"
    assert (tags["0008,0018"], tags["0020,000d"], tags["0020,000e"]) == ("1.2.246.3", "1.2.246.1", "1.2.246.2")
    assert tags["0008,0006"] == [{"0008,0100": "en", "0008,0102": "RFC5646", "0008,0104": "English"}]
    async with http.get(f"/instances/{instance}/study") as resp:
        assert (await resp.json())["MainDicomTags"]["StudyInstanceUID"] == "1.2.246.1"


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_cp246_as_real_orthanc(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    data = cp246_file()
    with start_orthanc(tmp_path / "orthanc") as peer:
        answer = requests.post(peer.url + "/instances", data=data, timeout=30).json()
        theirs = requests.get(f"{peer.url}/instances/{answer['ID']}/tags", timeout=30).json()
    async with http.post("/instances", data=data) as resp:
        assert (await resp.json())["ID"] == answer["ID"]
    async with http.get(f"/instances/{answer['ID']}/tags") as resp:
        ours = await resp.json()
    assert ours == theirs
