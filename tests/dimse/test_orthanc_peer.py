"""Real Orthanc 1.10.1 as a DICOM peer: it stores to us, queries us and moves from us; and the same C-FIND
asked of both servers gets the same answers. Skipped, saying why, when /usr/sbin/Orthanc is absent."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pynetdicom import AE

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import TESTDATA
from tests.dimse.dimse_helpers import free_port, requires_dcmtk, run_tool
from tests.e2e.orthanc_peer import ServerProcess, requires_orthanc, spawn_orthanc

pytestmark = [pytest.mark.orthanc, requires_orthanc, requires_dcmtk,
              pytest.mark.filterwarnings("ignore:Invalid value for VR")]  # odd dates in the sample files

FILES = [TESTDATA / "TransferSyntaxes" / f"{ts}.dcm" for ts in
         ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.5")] + [
    TESTDATA / "Series" / f"Lena-{i}.dcm" for i in range(1, 6)] + [TESTDATA / "SignedCT.dcm"]


@dataclass
class Pair:
    lite: orthanc_lite.Server
    lite_http: aiohttp.ClientSession
    orthanc: ServerProcess
    orthanc_http: aiohttp.ClientSession


@pytest.fixture
async def pair(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Pair]:
    orthanc_dicom = free_port()
    s = settings.replace(DicomAet="LITE", DicomAlwaysAllowFind=True, DicomAlwaysAllowGet=True,
                         DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc_dicom]})
    async with orthanc_lite.serve(s, host="127.0.0.1") as lite:
        config = {"DicomPort": orthanc_dicom, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
                  "DicomAlwaysAllowGet": True,
                  "DicomModalities": {"lite": ["LITE", "127.0.0.1", lite.dicom_port]}}
        orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", config)
        try:
            if orthanc.dicom_port != orthanc_dicom:  # the peer had to pick other ports: tell our registry
                async with aiohttp.ClientSession(base_url=lite.url) as http:
                    await http.put("/modalities/orthanc", json=["ORTHANC", "127.0.0.1", orthanc.dicom_port])
            async with aiohttp.ClientSession(base_url=lite.url) as lite_http, \
                    aiohttp.ClientSession(base_url=orthanc.url) as orthanc_http:
                yield Pair(lite, lite_http, orthanc, orthanc_http)
        finally:
            await asyncio.to_thread(orthanc.stop)


async def _upload(http: aiohttp.ClientSession, data: bytes) -> str:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["ID"])


async def _json(http: aiohttp.ClientSession, method: str, path: str, body: object = None) -> object:
    async with http.request(method, path, json=body) as resp:
        assert resp.status == 200, (path, resp.status, await resp.text())
        return await resp.json()


async def test_orthanc_stores_to_us(pair: Pair) -> None:
    ids = [await _upload(pair.orthanc_http, f.read_bytes()) for f in FILES]
    await _json(pair.orthanc_http, "POST", "/modalities/lite/store", {"Resources": ids, "Synchronous": True})
    ours = await _json(pair.lite_http, "GET", "/instances")
    assert sorted(ours) == sorted(set(ids))  # type: ignore[arg-type]
    meta = await _json(pair.lite_http, "GET", f"/instances/{ids[0]}/metadata?expand")
    assert meta["RemoteAET"] == "ORTHANC" and meta["CalledAET"] == "LITE"  # type: ignore[index]
    assert meta["Origin"] == "DicomProtocol"  # type: ignore[index]


async def test_orthanc_echoes_and_queries_us(pair: Pair) -> None:
    for f in FILES:
        await _upload(pair.lite_http, f.read_bytes())
    await _json(pair.orthanc_http, "POST", "/modalities/lite/echo", {})
    query = await _json(pair.orthanc_http, "POST", "/modalities/lite/query",
                        {"Level": "Series", "Query": {"SeriesInstanceUID": "", "Modality": ""}})
    answers = await _json(pair.orthanc_http, "GET", f"/queries/{query['ID']}/answers?expand&simplify")  # type: ignore[index]
    ours = await _json(pair.lite_http, "GET", "/series?expand")
    assert sorted(a["SeriesInstanceUID"] for a in answers) == sorted(  # type: ignore[union-attr]
        s["MainDicomTags"]["SeriesInstanceUID"] for s in ours)  # type: ignore[union-attr]
    assert all(a["RetrieveAETitle"] == "LITE" for a in answers)  # type: ignore[union-attr]


async def test_orthanc_moves_from_us(pair: Pair) -> None:
    ids = [await _upload(pair.lite_http, f.read_bytes()) for f in FILES[4:9]]  # the Lena series
    study_uid = str(pydicom.dcmread(FILES[4], stop_before_pixels=True).StudyInstanceUID)
    await _json(pair.orthanc_http, "POST", "/modalities/lite/move",
                {"Level": "Study", "Resources": [{"StudyInstanceUID": study_uid}], "TargetAet": "ORTHANC",
                 "Synchronous": True})
    theirs = await _json(pair.orthanc_http, "GET", "/instances")
    assert sorted(theirs) == sorted(ids)  # type: ignore[arg-type]


async def _findscu(port: int, aet: str, keys: list[str], out: pathlib.Path) -> list[pydicom.Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    args = ["-S", "-X", "-od", str(out), "-aet", "FINDSCU", "-aec", aet]
    for k in keys:
        args += ["-k", k]
    result = await run_tool("findscu", *args, "127.0.0.1", str(port))
    assert result.ok, result.output
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _comparable(ds: pydicom.Dataset) -> dict[str, str]:
    return {elem.keyword or str(elem.tag): str(elem.value) for elem in ds
            if elem.keyword not in ("RetrieveAETitle",)}


@pytest.mark.parametrize("keys", [
    ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "AccessionNumber",
     "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "StudyDescription"],
    ["QueryRetrieveLevel=SERIES", "SeriesInstanceUID", "Modality", "SeriesNumber",
     "NumberOfSeriesRelatedInstances", "StudyInstanceUID"],
    ["QueryRetrieveLevel=IMAGE", "SOPInstanceUID", "InstanceNumber", "SOPClassUID", "PatientName=*"],
    ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName=*a*", "StudyDate=19000101-20991231"],
])
async def test_same_cfind_answers_as_orthanc(pair: Pair, tmp_path: pathlib.Path, keys: list[str]) -> None:
    for f in FILES:
        data = f.read_bytes()
        await _upload(pair.lite_http, data)
        await _upload(pair.orthanc_http, data)
    ours = await _findscu(pair.lite.dicom_port, "LITE", keys, tmp_path / "lite")
    # Orthanc allows C-FIND from anyone here (DicomAlwaysAllowFind); ask it the same
    theirs = await _findscu(pair.orthanc.dicom_port, "ORTHANC", keys, tmp_path / "orthanc")

    def key(d: dict[str, str]) -> str:
        return d.get("SOPInstanceUID") or d.get("SeriesInstanceUID") or d.get("StudyInstanceUID") or ""

    mine = sorted((_comparable(d) for d in ours), key=key)
    orth = sorted((_comparable(d) for d in theirs), key=key)
    assert len(orth) >= 1
    assert mine == orth


async def test_same_failure_statuses_as_orthanc(pair: Pair) -> None:
    """A C-FIND without QueryRetrieveLevel: both answer 0xC000 (Failed: UnableToProcess)."""
    outputs = []
    for port, aet in ((pair.lite.dicom_port, "LITE"), (pair.orthanc.dicom_port, "ORTHANC")):
        result = await run_tool("findscu", "-v", "-S", "-aec", aet, "-k", "PatientID=X", "127.0.0.1", str(port))
        outputs.append(result.output)
    for out in outputs:
        assert "Final Find Response (Failed: UnableToProcess)" in out, out


def _store_statuses(port: int, aet: str, datasets: list[pydicom.Dataset]) -> list[int | None]:
    ae = AE(ae_title="STORESCU")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=aet)
    assert assoc.is_established
    try:
        return [int(rsp.Status) if "Status" in (rsp := assoc.send_c_store(ds)) else None for ds in datasets]
    finally:
        assoc.release()


def _dataset(**changes: object) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "REFUSED", generate_uid(), generate_uid()
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


async def test_same_cstore_statuses_as_orthanc(pair: Pair) -> None:
    """A readable dataset that the store refuses (missing or empty StudyInstanceUID) is 0xA700 for both."""
    datasets = [_dataset(StudyInstanceUID=None), _dataset(StudyInstanceUID=""), _dataset()]
    ours = await asyncio.to_thread(_store_statuses, pair.lite.dicom_port, "LITE", datasets)
    theirs = await asyncio.to_thread(_store_statuses, pair.orthanc.dicom_port, "ORTHANC", datasets)
    assert ours == theirs == [0xA700, 0xA700, 0x0000]


async def test_same_cfind_names_as_orthanc_in_latin1(pair: Pair, tmp_path: pathlib.Path) -> None:
    """Answers go out in DefaultEncoding (Latin1): characters it cannot hold are dropped, as Orthanc does."""
    for f in sorted((TESTDATA / "Encodings").glob("*.dcm")):
        await _upload(pair.lite_http, f.read_bytes())
        await _upload(pair.orthanc_http, f.read_bytes())
    keys = ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName=*", "SpecificCharacterSet"]
    ours = await _findscu(pair.lite.dicom_port, "LITE", keys, tmp_path / "lite")
    theirs = await _findscu(pair.orthanc.dicom_port, "ORTHANC", keys, tmp_path / "orthanc")

    def names(answers: list[pydicom.Dataset]) -> dict[str, bytes]:
        return {str(d.StudyInstanceUID): d["PatientName"].value.original_string for d in answers}

    assert len(theirs) >= 10
    assert names(ours) == names(theirs)


async def test_cget_relabels_a_compressed_syntax_without_pixel_data(pair: Pair, tmp_path: pathlib.Path) -> None:
    """JPEG Lossless syntax but no pixel data, asked by a getscu that accepts only uncompressed syntaxes:
    Orthanc sends it, and so do we."""
    f = TESTDATA / "2017-06-27-XSSInjection.dcm"
    await _upload(pair.lite_http, f.read_bytes())
    await _upload(pair.orthanc_http, f.read_bytes())
    study_uid = str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID)
    received = []
    for port, aet in ((pair.lite.dicom_port, "LITE"), (pair.orthanc.dicom_port, "ORTHANC")):
        out = tmp_path / aet
        out.mkdir()
        result = await run_tool("getscu", "-S", "-aet", "GETSCU", "-aec", aet, "-od", out,
                                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                                "127.0.0.1", str(port))
        assert result.ok, result.output
        received.append(len(list(out.iterdir())))
    assert received == [1, 1]
