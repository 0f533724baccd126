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

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import testdata
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


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
@pytest.mark.parametrize("fmt", ["", "?simplify", "?short"])
async def test_private_tags_as_real_orthanc(http: aiohttp.ClientSession, tmp_path: pathlib.Path, fmt: str) -> None:
    data = testdata("PrivateTags.dcm").read_bytes()
    with start_orthanc(tmp_path / "orthanc") as peer:
        answer = requests.post(peer.url + "/instances", data=data, timeout=30).json()
        theirs = requests.get(f"{peer.url}/instances/{answer['ID']}/tags{fmt}", timeout=30).json()
    async with http.post("/instances", data=data) as resp:
        assert (await resp.json())["ID"] == answer["ID"]
    async with http.get(f"/instances/{answer['ID']}/tags{fmt}") as resp:
        ours = await resp.json()
    diff = {k: (ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)}
    assert diff == {}


def private_file(explicit: bool) -> bytes:
    """Private tags: two DCMTK private.dic creators (GEMS_IDEN_01, ELSCINT1), one unknown creator whose tags the
    "Dictionary" option of the test names; implicit VR makes the dictionaries decide the VRs too."""
    ds = pydicom.dcmread(io.BytesIO(make_instance("PRIV", sop_uid="1.2.999.1" if explicit else "1.2.999.2")))
    gems = ds.private_block(0x0009, "GEMS_IDEN_01", create=True)
    gems.add_new(0x01, "LO", "FULL")
    gems.add_new(0x04, "SH", "PRODUCT")
    gems.add_new(0x27, "SL", 1234567)
    elscint = ds.private_block(0x00E1, "ELSCINT1", create=True)
    elscint.add_new(0x01, "US", 7)
    mine = ds.private_block(0x4321, "RadioLogic", create=True)
    mine.add_new(0x12, "LO", "jklmopq")
    mine.add_new(0x13, "DS", "1.5")
    unknown = ds.private_block(0x0019, "NOBODY KNOWS", create=True)
    unknown.add_new(0x01, "LO", "what")
    buf = io.BytesIO()
    if explicit:
        ds.save_as(buf)
    else:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(buf, implicit_vr=True)
    return buf.getvalue()


DICTIONARY = {"4321,1012": ["LO", "RadioButton3", 1, 1, "RadioLogic"],
              "4321,1013": ["DS", "RadioFactor", 1, 1, "RadioLogic"]}


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
async def test_private_dictionaries_as_real_orthanc(settings: Settings, tmp_path: pathlib.Path,
                                                    explicit: bool) -> None:
    data = private_file(explicit)
    formats = ("", "?simplify", "?short")
    with start_orthanc(tmp_path / "orthanc", {"Dictionary": DICTIONARY}) as peer:
        answer = requests.post(peer.url + "/instances", data=data, timeout=30).json()
        theirs = [requests.get(f"{peer.url}/instances/{answer['ID']}/tags{f}", timeout=30).json() for f in formats]
    async with orthanc_lite.serve(settings.replace(Dictionary=DICTIONARY), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.post("/instances", data=data) as resp:
            assert (await resp.json())["ID"] == answer["ID"]
        ours = []
        for f in formats:
            async with http.get(f"/instances/{answer['ID']}/tags{f}") as resp:
                ours.append(await resp.json())
    assert theirs[1]["RadioButton3"] == "jklmopq"  # the Dictionary option names it, in both servers
    assert theirs[1]["FullFidelity"] == "FULL" and theirs[1]["DataDictionaryVersion"] == "7"  # DCMTK private.dic
    for mine, orth in zip(ours, theirs):
        diff = {k: (mine.get(k), orth.get(k)) for k in set(mine) | set(orth) if mine.get(k) != orth.get(k)}
        assert diff == {}
