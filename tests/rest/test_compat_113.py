"""Orthanc 1.13.0 as /system announces it: the version, the capabilities and what they promise (ExtendedChanges,
ExtendedFind), the changes log as Orthanc keeps it, metadata as Orthanc stores them, DICOM JSON of a file and
attachment ranges. Each test mirrors the assertions of an orthanc-tests test (named in its docstring) on the shared
files or on pydicom-built ones, over real HTTP (and DICOM with dcmtk's storescu) against an in-process server.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import aiohttp
import pytest
from pydicom.dataset import Dataset

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import testdata, upload
from tests.data.make_samples import make_instance, make_series

CAPABILITIES_113 = {"HasExtendedChanges": True, "HasExtendedFind": True, "HasKeyValueStores": False,
                    "HasQueues": False, "HasReserveQueueValue": False}


async def get(http: aiohttp.ClientSession, path: str, **kw: Any) -> Any:
    async with http.get(path, **kw) as resp:
        assert resp.status == 200, (path, resp.status, await resp.text())
        return await resp.json(content_type=None)


async def status_of(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> int:
    async with http.request(method, path, **kw) as resp:
        await resp.read()
        return resp.status


async def post_dicom(http: aiohttp.ClientSession, data: bytes) -> dict[str, Any]:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- 1. one version ---------------------------------------------------------------------------------------------

async def test_version_and_capabilities_together(http: aiohttp.ClientSession) -> None:
    """test_system: the version string and the capability list are asserted together, and each capability works."""
    system = await get(http, "/system")
    assert (system["Version"], system["ApiVersion"], system["DatabaseVersion"]) == ("1.13.0", 31, 6)
    assert system["Capabilities"] == CAPABILITIES_113
    assert system["HasLabels"] is True and system["OverwriteInstancesMode"] == "Never"
    assert orthanc_lite.__version__ != system["Version"]  # our own version is reported apart
    # HasExtendedChanges: ?to and ?type are served, not refused.
    await post_dicom(http, make_instance("CAP"))
    assert [c["Seq"] for c in (await get(http, "/changes?to=3&type=NewInstance;NewStudy"))["Changes"]] == [1, 3]
    # HasExtendedFind: OrderBy and ResponseContent are served.
    found = await _find(http, {"Level": "Study", "Query": {}, "ResponseContent": ["Labels"],
                               "OrderBy": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}]})
    assert found[0]["Labels"] == [] and set(found[0]) == {"ID", "Type", "Labels"}


# --- 4. the changes log as Orthanc keeps it ---------------------------------------------------------------------

async def test_changes_of_deleted_resources_go_and_last_stays(http: aiohttp.ClientSession) -> None:
    """test_changes_2 (and real Orthanc 1.10.1): Last is the last seq ever allocated, whatever was deleted."""
    first = await post_dicom(http, make_instance("CH2"))
    assert (await get(http, "/changes"))["Last"] == 4
    async with http.delete(f"/instances/{first['ID']}"):
        pass
    for path in ("/changes", "/changes?last", "/changes?since=1004"):
        body = await get(http, path)
        assert body == {"Changes": [], "Done": True, "Last": 4}, path
    again = await post_dicom(http, make_instance("CH2"))
    body = await get(http, "/changes")
    assert [c["ChangeType"] for c in body["Changes"]] == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
    assert (body["First"], body["Last"], body["Done"]) == (5, 8, True)
    last = await get(http, "/changes?last")
    assert set(last) == {"Changes", "Done", "Last", "First"} and last["Last"] == last["First"] == 8
    assert (await get(http, "/changes?since=1008"))["Last"] == 8
    async with http.put(f"/instances/{again['ID']}/metadata/4000", data="hello") as resp:
        etag = resp.headers["ETag"].strip('"')
    assert (await get(http, "/changes?last"))["Changes"][0]["ChangeType"] == "UpdatedMetadata"
    async with http.delete(f"/instances/{again['ID']}/metadata/4000", headers={"If-Match": etag}):
        pass
    assert (await get(http, "/changes?last"))["Last"] == 10
    async with http.delete(f"/patients/{again['ParentPatient']}"):
        pass
    assert await get(http, "/changes") == {"Changes": [], "Done": True, "Last": 10}
    async with http.delete("/changes"):
        pass
    assert (await get(http, "/changes"))["Last"] == 10  # DELETE /changes keeps the sequence too


async def test_extended_changes_to_and_type(http: aiohttp.ClientSession) -> None:
    """ExtendedChanges: ?to (inclusive) pages backwards with to=First-1, ?type filters, unknown types give 400."""
    for pid in ("X1", "X2", "X3"):
        await post_dicom(http, make_instance(pid))   # 4 changes each: seq 1..12
    body = await get(http, "/changes?type=NewPatient")
    assert [c["Seq"] for c in body["Changes"]] == [4, 8, 12] and body["Last"] == 12
    body = await get(http, "/changes?type=NewStudy;NewPatient&since=4&limit=2")
    assert [c["Seq"] for c in body["Changes"]] == [7, 8] and body["Done"] is False
    body = await get(http, "/changes?since=2&to=5")
    assert [c["Seq"] for c in body["Changes"]] == [3, 4, 5] and (body["First"], body["Last"]) == (3, 5)
    seen: list[int] = []
    to = 12
    while to > 0:  # browsing the log backwards, as the "First" field documents
        page = await get(http, f"/changes?to={to}&limit=5")
        seen = [c["Seq"] for c in page["Changes"]] + seen
        to = page["First"] - 1
    assert seen == list(range(1, 13))
    assert (await get(http, "/changes?type=all"))["Last"] == 12
    assert await status_of(http, "GET", "/changes?type=Nope") == 400


async def _stable_studies(http: aiohttp.ClientSession, study: str, after: int, timeout: float = 10.0) -> list[int]:
    """Seqs of the StableStudy changes of a study, once one newer than `after` has appeared (polls /changes)."""
    deadline = time.monotonic() + timeout
    while True:
        changes = (await get(http, "/changes?type=StableStudy&limit=1000"))["Changes"]
        seqs = [c["Seq"] for c in changes if c["ID"] == study]
        if any(s > after for s in seqs) or time.monotonic() > deadline:
            return seqs
        await asyncio.sleep(0.05)


@pytest.fixture
def overwrite_settings(settings: Settings) -> Settings:
    return settings.replace(OverwriteInstances=True)


async def test_overwrite_generates_stable_study(overwrite_settings: Settings) -> None:
    """test_overwrite_generates_stable_study: re-storing the only instance of a study replaces its StableStudy
    change by a new one (the emptied parents are deleted with their changes); a second instance adds one."""
    async with orthanc_lite.serve(overwrite_settings, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        study_uid, series_uid = "1.2.3.4.113.1", "1.2.3.4.113.2"
        data = make_instance("OVW", study_uid=study_uid, series_uid=series_uid, sop_uid="1.2.3.4.113.3")
        up = await post_dicom(http, data)
        first = await _stable_studies(http, up["ParentStudy"], 0)
        assert len(first) == 1
        async with http.put(f"/series/{up['ParentSeries']}/labels/lost"):
            pass
        assert (await post_dicom(http, data))["Status"] == "Success"
        again = await _stable_studies(http, up["ParentStudy"], first[0])
        assert len(again) == 1 and again[0] != first[0]
        assert (await get(http, f"/series/{up['ParentSeries']}"))["Labels"] == []  # the old series row went away
        other = make_instance("OVW", study_uid=study_uid, series_uid=series_uid, instance_number=2)
        await post_dicom(http, other)
        both = await _stable_studies(http, up["ParentStudy"], again[0])
        assert len(both) == 2 and both[0] == again[0]


# --- 5. metadata and attachments --------------------------------------------------------------------------------

def _with_request_attributes(**kw: Any) -> bytes:
    item = Dataset()
    item.RequestedProcedureID = "A10029316690"
    item.ScheduledProcedureStepDescription = "Pas de schéma"
    return make_instance(RequestAttributesSequence=[item], **kw)


async def test_metadata_lists_over_rest(http: aiohttp.ClientSession) -> None:
    """test_metadata: the metadata Orthanc 1.13 keeps per level for an upload over REST."""
    up = await post_dicom(http, _with_request_attributes(patient_id="META"))
    assert set(await get(http, f"/patients/{up['ParentPatient']}/metadata")) == {"LastUpdate", "MainDicomTagsSignature"}
    assert set(await get(http, f"/studies/{up['ParentStudy']}/metadata")) == {"LastUpdate", "MainDicomTagsSignature"}
    series = await get(http, f"/series/{up['ParentSeries']}/metadata?expand")
    assert set(series) == {"LastUpdate", "MainDicomTagsSignature", "RemoteAET", "MainDicomSequences"}
    assert series["RemoteAET"] == ""
    assert '"A10029316690"' in series["MainDicomSequences"] and "Pas de schéma" in series["MainDicomSequences"]
    async with http.get(f"/series/{up['ParentSeries']}/metadata/RemoteAET") as resp:
        assert resp.status == 200 and await resp.text() == ""
    instance = await get(http, f"/instances/{up['ID']}/metadata?expand")
    assert set(instance) == {"IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax", "SopClassUid",
                             "RemoteIP", "HttpUsername", "PixelDataOffset", "MainDicomTagsSignature"}
    assert (instance["IndexInSeries"], instance["Origin"], instance["RemoteAET"]) == ("1", "RestApi", "")
    assert instance["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.2"
    assert series["LastUpdate"] == instance["ReceptionDate"]
    # Without the sequence, no MainDicomSequences.
    plain = await post_dicom(http, make_instance("META2"))
    assert "MainDicomSequences" not in await get(http, f"/series/{plain['ParentSeries']}/metadata")
    for level in ("studies", "series", "instances"):
        assert await status_of(http, "GET", f"/{level}/{up['ParentPatient']}/metadata") == 404


async def test_index_in_series_and_sop_class_as_stored(http: aiohttp.ClientSession) -> None:
    """IndexInSeries is InstanceNumber's text (else ImageIndex); SopClassUid only from the dataset."""
    up = await post_dicom(http, make_instance("IDX", InstanceNumber="000013"))
    assert (await get(http, f"/instances/{up['ID']}/metadata?expand"))["IndexInSeries"] == "000013"
    assert (await get(http, f"/instances/{up['ID']}"))["IndexInSeries"] == 13
    up = await post_dicom(http, make_instance("IDX2", InstanceNumber="", ImageIndex=7))
    assert (await get(http, f"/instances/{up['ID']}/metadata?expand"))["IndexInSeries"] == ""
    assert (await get(http, f"/instances/{up['ID']}"))["IndexInSeries"] is None
    up = await upload(http, testdata("Issue195-bis.dcm"))  # no SOPClassUID in the dataset, nor InstanceNumber
    listed = await get(http, f"/instances/{up['ID']}/metadata")
    assert "SopClassUid" not in listed and "IndexInSeries" not in listed
    assert await status_of(http, "GET", f"/instances/{up['ID']}/metadata/SopClassUid") == 404


# Orthanc's own values (test_pixel_data_offset), for the files of ../shared/testdata/dicom/TransferSyntaxes.
PIXEL_DATA_OFFSETS = {
    "1.2.840.10008.1.2.1": 0x037C, "1.2.840.10008.1.2.2": 0x03E8, "1.2.840.10008.1.2.4.50": 0x04AC,
    "1.2.840.10008.1.2.4.51": 0x072C, "1.2.840.10008.1.2.4.57": 0x0620, "1.2.840.10008.1.2.4.70": 0x065A,
    "1.2.840.10008.1.2.4.80": 0x0B46, "1.2.840.10008.1.2.4.81": 0x073E, "1.2.840.10008.1.2.4.90": 0x0B66,
    "1.2.840.10008.1.2.4.91": 0x19B8, "1.2.840.10008.1.2.5": 0x0B0A,
}


async def test_pixel_data_offset_on_every_transfer_syntax(http: aiohttp.ClientSession) -> None:
    """test_pixel_data_offset: Orthanc's offsets, none for the file without a preamble."""
    for syntax, offset in PIXEL_DATA_OFFSETS.items():
        up = await upload(http, testdata("TransferSyntaxes", f"{syntax}.dcm"))
        async with http.get(f"/instances/{up['ID']}/metadata/PixelDataOffset") as resp:
            assert await resp.text() == str(offset), syntax
        async with http.get(f"/instances/{up['ID']}/file") as resp:
            raw = await resp.read()
        big = syntax == "1.2.840.10008.1.2.2"
        assert raw[offset:offset + 4] == (b"\x7f\xe0\x00\x10" if big else b"\xe0\x7f\x10\x00"), syntax
    up = await upload(http, testdata("TransferSyntaxes", "1.2.840.10008.1.2.dcm"))
    assert "PixelDataOffset" not in await get(http, f"/instances/{up['ID']}/metadata")
    assert await status_of(http, "GET", f"/instances/{up['ID']}/metadata/PixelDataOffset") == 404


# file -> (PixelDataVR metadata or None, the VR of 7FE00010 in the DICOM JSON or None when absent): test_pixel_data_vr
PIXEL_DATA_VR = {
    "KarstenHilbertRF.dcm": ("OW", "OW"),                         # explicit, 8 bits, written as OW: unexpected
    "ColorTestMalaterre.dcm": (None, "OW"),                       # implicit VR
    "Issue94.dcm": (None, "OW"),                                  # implicit VR, 16 bits
    "TransferSyntaxes/1.2.840.10008.1.2.1.dcm": (None, "OB"),     # explicit little endian, 8 bits
    "TransferSyntaxes/1.2.840.10008.1.2.2.dcm": (None, "OB"),     # explicit big endian, 8 bits
    "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm": (None, None),  # JPEG: no PixelData in DICOM JSON (>= 1.12.6)
    "TransferSyntaxes/1.2.840.10008.1.2.4.90.dcm": (None, None),  # JPEG 2000
    "MarekLatin2.dcm": (None, None),                              # no pixel data at all
}


async def test_pixel_data_vr_and_dicom_json(http: aiohttp.ClientSession) -> None:
    """test_pixel_data_vr: PixelDataVR only when the VR is not the one assumed, and the VR in DICOM JSON."""
    for rel, (metadata_vr, json_vr) in PIXEL_DATA_VR.items():
        up = await upload(http, testdata(*rel.split("/")))
        meta = await get(http, f"/instances/{up['ID']}/metadata?expand")
        assert meta.get("PixelDataVR") == metadata_vr, rel
        assert ("PixelDataOffset" in meta) == (rel != "MarekLatin2.dcm"), rel
        async with http.get(f"/instances/{up['ID']}/file?expand", headers={"Accept": "application/dicom+json"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/dicom+json"), rel
            body = await resp.json(content_type=None)
        assert body.get("7FE00010", {}).get("vr") == json_vr, rel


async def test_dicom_json_of_a_file(http: aiohttp.ClientSession) -> None:
    """test_issue_195: empty values give the VR alone, UN values are InlineBinary; no Accept gives the file."""
    up = await upload(http, testdata("Issue195.dcm"))
    body = await get(http, f"/instances/{up['ID']}/file", headers={"Accept": "application/dicom+json"})
    assert len(body) == 5
    assert body["00080018"] == {"vr": "UI", "Value": ["1.2.276.0.7230010.3.1.4.8323329.13188.1620309604.848735"]}
    assert body["0020000D"]["Value"] == ["1.2.276.0.7230010.3.1.2.8323329.13188.1620309604.848733"]
    assert body["00081030"] == {"vr": "LO"} and body["0008103E"] == {"vr": "LO", "Value": ["Hello1"]}
    up = await upload(http, testdata("Issue195-bis.dcm"))
    body = await get(http, f"/instances/{up['ID']}/file", headers={"Accept": "application/dicom+json"})
    assert len(body) == 5
    assert body["00084567"] == {"vr": "UN", "InlineBinary": "QgA="} and body["00084565"] == {"vr": "UN"}
    async with http.get(f"/instances/{up['ID']}/file") as resp:
        assert resp.headers["Content-Type"] == "application/dicom"
        assert (await resp.read())[128:132] == b"DICM"


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk's storescu is not installed")
async def test_incoming_storescu_metadata(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """test_incoming_storescu: instance and series metadata after a C-STORE from dcmtk's storescu."""
    process = await asyncio.create_subprocess_exec(
        "storescu", "127.0.0.1", str(server.dicom_port), str(testdata("ColorTestImageJ.dcm")),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    instance = (await get(http, "/instances"))[0]
    meta = await get(http, f"/instances/{instance}/metadata?expand")
    assert set(meta) == {"IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax", "SopClassUid",
                         "RemoteIP", "CalledAET", "PixelDataOffset", "MainDicomTagsSignature"}
    assert (meta["IndexInSeries"], meta["Origin"], meta["RemoteAET"]) == ("1", "DicomProtocol", "STORESCU")
    assert (meta["TransferSyntax"], meta["SopClassUid"]) == ("1.2.840.10008.1.2.1", "1.2.840.10008.5.1.4.1.1.7")
    async with http.get(f"/instances/{instance}/file") as resp:
        raw = await resp.read()
    offset = int(meta["PixelDataOffset"])
    assert raw[offset:offset + 4] == b"\xe0\x7f\x10\x00"  # the offset in the file as stored
    series = (await get(http, "/series"))[0]
    smeta = await get(http, f"/series/{series}/metadata?expand")
    assert set(smeta) == {"LastUpdate", "MainDicomTagsSignature", "RemoteAET", "MainDicomSequences"}
    assert smeta["RemoteAET"] == "STORESCU" and smeta["LastUpdate"] == meta["ReceptionDate"]


async def test_attachment_range(http: aiohttp.ClientSession) -> None:
    """test_attachment_range: whole content as application/dicom, any range as application/octet-stream, open
    bounds as Orthanc reads them, on the data and on the compressed data, before and after compression."""
    data = make_instance("RANGE")
    up = await post_dicom(http, data)
    base = f"/instances/{up['ID']}/attachments/dicom"
    n = len(data)

    async def check(route: str, content: bytes, whole_type: str) -> None:
        total = len(content)
        async with http.get(f"{base}/{route}") as resp:
            assert resp.status == 200 and "Content-Range" not in resp.headers
            assert await resp.read() == content and resp.headers["Content-Type"] == whole_type
            assert resp.headers["Content-Length"] == str(total)
        for header, (start, end) in {"bytes=128-131": (128, 131), "bytes=-": (0, total - 1),
                                     "bytes=128-": (128, total - 1), "bytes=-131": (0, 131),
                                     "bytes=10-20": (10, 20), "bytes=-20": (0, 20)}.items():
            async with http.get(f"{base}/{route}", headers={"Range": header}) as resp:
                assert resp.status == 206, (route, header)
                assert await resp.read() == content[start:end + 1], (route, header)
                assert resp.headers["Content-Type"] == "application/octet-stream"
                assert resp.headers["Content-Length"] == str(end - start + 1)
                assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{total}"

    await check("data", data, "application/dicom")
    await check("compressed-data", data, "application/octet-stream")
    assert data[128:132] == b"DICM"
    async with http.post(f"{base}/compress"):
        pass
    await check("data", data, "application/dicom")
    async with http.get(f"{base}/compressed-data") as resp:
        compressed = await resp.read()
    assert len(compressed) < n
    await check("compressed-data", compressed, "application/octet-stream")


# --- 1. version gates: level lists, /tools/find -----------------------------------------------------------------

async def test_resources_since_limit(http: aiohttp.ClientSession) -> None:
    """test_resources_since_limit: limit=0 means no limit (>= 1.12.5), paging walks every resource once."""
    for pid in ("L1", "L2", "L3"):
        for data in make_series(3, pid):
            await post_dicom(http, data)
    assert len(await get(http, "/patients?since=0&limit=0")) == 3
    assert len(await get(http, "/patients?since=1&limit=0")) == 2
    assert len(await get(http, "/patients?since=3&limit=0")) == 0
    assert len(await get(http, "/instances?since=1&limit=100")) == 8
    assert len(await get(http, "/patients?since=0&limit=0&expand")) == 3
    assert await status_of(http, "GET", "/patients&since=10") == 404
    assert await status_of(http, "GET", "/patients?since=1") == 400
    everything = set(await get(http, "/instances"))
    for limit in (1, 2, 4, 9, 10):
        seen: list[str] = []
        while True:
            page = await get(http, f"/instances?since={len(seen)}&limit={limit}")
            if not page:
                break
            seen.extend(page)
        assert len(seen) == 9 and set(seen) == everything, limit


async def _find(http: aiohttp.ClientSession, body: dict[str, Any], route: str = "/tools/find") -> Any:
    async with http.post(route, json=body) as resp:
        assert resp.status == 200, (body, await resp.text())
        return await resp.json()


async def test_find_rejects_what_orthanc_rejects(http: aiohttp.ClientSession) -> None:
    """test_rest_find: Since with a case-sensitive identifier constraint, and CaseSensitive in count-resources."""
    await post_dicom(http, make_instance("CS1", patient_name="KNEE", PatientSex="0000"))
    await post_dicom(http, make_instance("CS2", patient_name="BRAINIX"))
    upper = {"PatientName": "*NE*", "PatientSex": "0000"}
    assert len(await _find(http, {"Level": "Study", "CaseSensitive": True, "Query": upper})) == 1
    for query in (upper, {"PatientName": "*ne*"}, {"StudyInstanceUID": "1.2"}):
        body = {"Level": "Study", "CaseSensitive": True, "Query": query, "Since": 1}
        assert await status_of(http, "POST", "/tools/find", json=body) == 400, query
        assert await status_of(http, "POST", "/tools/count-resources", json=body) == 400, query
    assert await status_of(http, "POST", "/tools/count-resources",
                           json={"Level": "Study", "CaseSensitive": True, "Query": {}}) == 400
    insensitive = {"Level": "Study", "CaseSensitive": False, "Query": {"PatientName": "*ne*"}, "Since": 1}
    assert await _find(http, insensitive) == []
    assert await _find(http, insensitive, "/tools/count-resources") == {"Count": 1}  # Since is ignored there
    # A case-sensitive constraint on a tag that is no identifier pages fine.
    other = {"Level": "Study", "CaseSensitive": True, "Query": {"PatientSex": "0000"}, "Since": 1}
    assert await _find(http, other) == []


async def test_find_labels(http: aiohttp.ClientSession) -> None:
    """test_find_labels, with 1.13's "None" + [] (resources without any label: Orthanc's NEWS after 1.12.10)."""
    up = await post_dicom(http, make_instance("LBL", sop_uid="1.2.3.113.9"))

    async def count(labels: list[str], constraint: str, query: dict[str, str] | None = None,
                    level: str = "Instance") -> int:
        body = {"Level": level, "Query": query or {}, "Labels": labels, "LabelsConstraint": constraint}
        return len(await _find(http, body))

    # (labels of the instance) -> {queried labels: (All, Any, None)}
    table = {
        (): {(): (1, 1, 1), ("a",): (0, 0, 1), ("b",): (0, 0, 1), ("a", "b"): (0, 0, 1)},
        ("a",): {(): (1, 1, 0), ("a",): (1, 1, 0), ("b",): (0, 0, 1), ("a", "b"): (0, 1, 0)},
        ("a", "b"): {(): (1, 1, 0), ("a",): (1, 1, 0), ("b",): (1, 1, 0), ("a", "b"): (1, 1, 0),
                     ("b", "c"): (0, 1, 0), ("c", "d"): (0, 0, 1)},
    }
    for labels_on, cases in table.items():
        for label in labels_on:
            async with http.put(f"/instances/{up['ID']}/labels/{label}"):
                pass
        for queried, expected in cases.items():
            got = tuple([await count(list(queried), constraint) for constraint in ("All", "Any", "None")])
            assert got == expected, (labels_on, queried)
    assert await count(["a"], "All", {"SOPInstanceUID": "1.2.3.113.9", "PatientID": "LBL"}) == 1
    assert await count(["a"], "All", {"SOPInstanceUID": "nope"}) == 0
    assert await count(["c", "c"], "None") == 1
    async with http.put(f"/series/{up['ParentSeries']}/labels/b"):
        pass
    assert await count(["b"], "All", {"PatientID": "LBL"}, "Series") == 1
    assert await count(["a"], "Any", {"PatientID": "LBL"}, "Series") == 0
    assert await count(["a"], "None", {"PatientID": "LBL"}, "Series") == 1


async def test_requested_tags_shapes(http: aiohttp.ClientSession) -> None:
    """test_requested_tags: the keys of each expanded level (IsProtected on patients, >= 1.12.8), RequestedTags
    read from the file at any level, computed tags of another level left out."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "121327", "DCM", "Full fidelity image"
    up = await post_dicom(http, make_instance("RQ", RepetitionTime="2800", DerivationCodeSequence=[item]))
    requested = "PatientID;StudyDescription;SeriesDescription;SOPClassUID;RepetitionTime;DerivationCodeSequence"
    sizes = {"patients": 8, "studies": 9, "series": 10, "instances": 8}
    ids = {"patients": up["ParentPatient"], "studies": up["ParentStudy"], "series": up["ParentSeries"],
           "instances": up["ID"]}
    for level, size in sizes.items():
        plain = (await get(http, f"/{level}?expand"))[0]
        assert len(plain) == size and "RequestedTags" not in plain, level
        for answer in ((await get(http, f"/{level}?expand&requestedTags={requested}"))[0],
                       await get(http, f"/{level}/{ids[level]}?requestedTags={requested}")):
            assert len(answer) == size + 1, level
            tags = answer["RequestedTags"]
            assert len(tags) == 6 and tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2", level
            assert tags["RepetitionTime"] == "2800" and tags["DerivationCodeSequence"][0]["CodeValue"] == "121327"
    assert "IsProtected" in (await get(http, "/patients?expand"))[0]
    series = await _find(http, {"Query": {"PatientID": "*"}, "Level": "Series", "Expand": True,
                                "RequestedTags": ["0008,0020", "0008,0061", "0020,1206", "0020,1208", "0020,1209"]})
    assert set(series[0]["RequestedTags"]) == {"StudyDate", "NumberOfSeriesRelatedInstances"}
    study = await _find(http, {"Query": {"PatientID": "*"}, "Level": "Study", "Expand": True,
                               "RequestedTags": ["SOPClassesInStudy", "NumberOfStudyRelatedInstances"]})
    assert study[0]["RequestedTags"] == {"SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2",
                                         "NumberOfStudyRelatedInstances": "1"}


@pytest.fixture
def user_metadata_settings(settings: Settings) -> Settings:
    return settings.replace(UserMetadata={"my-metadata": 1098})


# name -> (patient name, birth date, study date, series time, series description, BodyPartExamined, metadata base)
ORDER_SERIES = {
    "brainixFlair": ("BRAINIX", "19490301", "20061201", "100000", "sT2W/FLAIR", None, 10.0),
    "brainixEpi": ("BRAINIX", "19490301", "20061201", "110000", "T2W/FE-EPI", None, 20.0),
    "kneeT1": ("KNEE", "20080822", "20080819", "090000", "T1W_aTSE", "KNEE", 30.0),
    "kneeT2": ("KNEE", "20080822", "20080819", "100000", "T2W_TSE", "KNEE", 40.0),
}


async def _order_database(http: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
    """Two patients, four series of three instances, with series and instance user metadata (as the
    Brainix/Knee uploads of test_extended_find_order_by)."""
    out: dict[str, dict[str, Any]] = {}
    studies = {"BRAINIX": "1.2.3.113.50", "KNEE": "1.2.3.113.60"}
    for n, (name, (patient, birth, date, time_, description, body_part, base)) in enumerate(ORDER_SERIES.items()):
        extra = {"BodyPartExamined": body_part} if body_part else {}
        for i in range(3):
            data = make_instance(patient, patient_name=patient, study_uid=studies[patient], series_uid=f"1.2.3.113.{n}",
                                 study_date=date, instance_number=i + 1, PatientBirthDate=birth, SeriesTime=time_,
                                 SeriesDescription=description, **extra)
            up = await post_dicom(http, data)
            async with http.put(f"/instances/{up['ID']}/metadata/1234", data=f"{base + 0.1 * i:f}"):
                pass
        async with http.put(f"/series/{up['ParentSeries']}/metadata/my-metadata", data=name):
            pass
        out[name] = up
    return out


async def test_extended_find_order_by(user_metadata_settings: Settings) -> None:
    """test_extended_find_order_by: tags of the level and of its ancestors, casts, metadata, missing values last."""
    async with orthanc_lite.serve(user_metadata_settings, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        ups = await _order_database(http)
        series = {name: up["ParentSeries"] for name, up in ups.items()}

        def order(*items: tuple[str, str, str]) -> list[dict[str, str]]:
            return [{"Type": t, "Key": k, "Direction": d} for t, k, d in items]

        studies = await _find(http, {"Level": "Study", "Expand": True, "Query": {"PatientName": "*"},
                                     "OrderBy": order(("DicomTag", "PatientName", "DESC"))})
        assert [s["PatientMainDicomTags"]["PatientName"] for s in studies] == ["KNEE", "BRAINIX"]
        found = await _find(http, {"Level": "Series", "Query": {"SeriesDescription": "*"}, "OrderBy": order(
            ("DicomTag", "StudyDate", "ASC"), ("DicomTag", "SeriesTime", "ASC"))})
        assert found == [series[n] for n in ("brainixFlair", "brainixEpi", "kneeT1", "kneeT2")]
        found = await _find(http, {"Level": "Series", "Query": {}, "OrderBy": order(
            ("DicomTag", "PatientBirthDate", "ASC"), ("DicomTag", "SeriesTime", "ASC"))})
        assert found == [series[n] for n in ("brainixFlair", "brainixEpi", "kneeT1", "kneeT2")]
        instances = await _find(http, {"Level": "Instance", "Expand": True, "Query": {}, "OrderBy": order(
            ("DicomTagAsInt", "InstanceNumber", "DESC"), ("DicomTag", "PatientBirthDate", "ASC"),
            ("DicomTag", "SeriesTime", "ASC")), "RequestedTags": ["InstanceNumber", "PatientBirthDate", "SeriesTime"]})
        keys = [(-int(a["RequestedTags"]["InstanceNumber"]), a["RequestedTags"]["PatientBirthDate"],
                 a["RequestedTags"]["SeriesTime"]) for a in instances]
        assert len(keys) == 12 and keys == sorted(keys)
        # BodyPartExamined is missing on the Brainix series: they come last.
        found = await _find(http, {"Level": "Series", "Query": {}, "OrderBy": order(("DicomTag", "BodyPartExamined",
                                                                                      "ASC"))})
        assert set(found[:2]) == {series["kneeT1"], series["kneeT2"]}
        found = await _find(http, {"Level": "Series", "Query": {"SeriesDescription": "*"}, "OrderBy": order(
            ("Metadata", "my-metadata", "DESC"))})
        assert found == [series[n] for n in ("kneeT2", "kneeT1", "brainixFlair", "brainixEpi")]
        found = await _find(http, {"Level": "Series", "Query": {}, "OrderBy": order(
            ("DicomTag", "PatientName", "ASC"), ("Metadata", "my-metadata", "DESC"))})
        assert found == [series[n] for n in ("brainixFlair", "brainixEpi", "kneeT2", "kneeT1")]
        instances = await _find(http, {"Level": "Instance", "Query": {}, "ResponseContent": ["Metadata"],
                                       "RequestedTags": ["SeriesDescription"],
                                       "OrderBy": order(("MetadataAsFloat", "1234", "DESC"))})
        assert [float(a["Metadata"]["1234"]) for a in instances[:3]] == [40.2, 40.1, 40.0]
        assert {a["RequestedTags"]["SeriesDescription"] for a in instances[:3]} == {"T2W_TSE"}
        # test_extended_find_full: metadata filter, parent, two orders and a partial answer together.
        full = await _find(http, {
            "Level": "Series", "Query": {"PatientName": "*"}, "RequestedTags": ["StudyDate"],
            "MetadataQuery": {"my-metadata": "*nee*"}, "ParentPatient": ups["kneeT1"]["ParentPatient"],
            "OrderBy": order(("DicomTag", "SeriesDescription", "ASC"), ("Metadata", "my-metadata", "DESC")),
            "ResponseContent": ["Parent", "Children", "MainDicomTags", "Metadata"]})
        assert [a["ID"] for a in full] == [series["kneeT1"], series["kneeT2"]]
        assert full[0]["ParentStudy"] == ups["kneeT1"]["ParentStudy"] and len(full[0]["Instances"]) == 3
        assert full[0]["Metadata"]["RemoteAET"] == "" and full[0]["Metadata"]["my-metadata"] == "kneeT1"
        assert full[0]["RequestedTags"] == {"StudyDate": "20080819"} and "Labels" not in full[0]
