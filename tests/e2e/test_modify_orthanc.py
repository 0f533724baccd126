"""Modify and anonymize against real Orthanc 1.10.1, element by element on the shared test files (generated UIDs,
dates and the version inside DeidentificationMethod aside), plus the de-identification guarantee of the default
profile on every shared file."""

from __future__ import annotations

import io
import json
import pathlib
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.dataset import Dataset

from orthanc_lite.dicom.deid_profiles import PROFILES
from tests.conftest import all_testdata_files, testdata
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc

Key = tuple[tuple[tuple[int, int], ...], int]


def flatten(ds: Dataset, prefix: tuple[tuple[int, int], ...] = ()) -> dict[Key, tuple[str, Any]]:
    """Every element, nested ones included, by (path of (sequence, item), tag) -> (VR, value)."""
    out: dict[Key, tuple[str, Any]] = {}
    for elem in ds:
        tag = int(elem.tag)
        if elem.VR == "SQ":
            out[(prefix, tag)] = ("SQ", len(elem.value or []))
            for index, item in enumerate(elem.value or []):
                out.update(flatten(item, prefix + ((tag, index),)))
        else:
            value = elem.value
            if isinstance(value, bytes):
                value = value.rstrip(b"\0 ")
            elif value is not None and not isinstance(value, (str, int, float)):
                value = str(value)
            out[(prefix, tag)] = (elem.VR, str(value).rstrip("\0 ") if isinstance(value, str) else value)
    return out


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _is_generated(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("1.2.276.0.7230010.3.") or (len(value) == 36 and
                                                                                     value.count("-") == 4))


def compare(source: Dataset, ours: Dataset, theirs: Dataset) -> list[str]:
    """Differences between our output and Orthanc's; an identifier either side generated only has to be
    generated on both sides (or kept on both)."""
    src, a, b = flatten(source), flatten(ours), flatten(theirs)
    problems: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key[1] & 0xFFFF == 0:
            continue  # group lengths: DCMTK recomputes them, pydicom does not write them (both are valid)
        if key not in a or key not in b:
            problems.append(f"{key}: only in {'ours' if key in a else 'Orthanc'}")
            continue
        va, vb = a[key][1], b[key][1]
        if va == vb:
            continue
        if key[1] == 0x00120063 and isinstance(va, str) and isinstance(vb, str):  # DeidentificationMethod
            if va.split(" - ", 1)[-1] == vb.split(" - ", 1)[-1]:
                continue
        original = src.get(key, (None, None))[1]
        if _is_generated(va) and _is_generated(vb) and va != original and vb != original:
            continue
        problems.append(f"{key}: ours {repr(va)[:60]} Orthanc {repr(vb)[:60]}")
    return problems


async def _upload(http: aiohttp.ClientSession, path: pathlib.Path) -> str | None:
    """The instance ID, or None when the server refuses the file (some shared files are invalid on purpose)."""
    try:
        async with http.post("/instances", data=path.read_bytes()) as resp:
            if resp.status != 200:
                return None
            answer = await resp.json()
            return answer["ID"] if isinstance(answer, dict) else None
    except aiohttp.ClientError:
        return None


async def _post_file(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> bytes | None:
    async with http.post(path, json=body) as resp:
        data = await resp.read()
        return data if resp.status == 200 else None


REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("anonymize", {"DicomVersion": "2021b"}),
    ("anonymize", {"DicomVersion": "2017c"}),
    ("anonymize", {"DicomVersion": "2008"}),
    ("anonymize", {"DicomVersion": "2008", "Keep": ["StudyDescription"], "Replace": {"PatientName": "Hello"},
                   "Remove": ["Modality"]}),
    ("modify", {"Replace": {"PatientName": "Modified^Name", "InstitutionName": "Clinic"},
                "Remove": ["SeriesDescription"], "RemovePrivateTags": True}),
    ("modify", {"Replace": {"StudyInstanceUID": "1.2.3.4", "PatientID": "NEW"}, "Force": True,
                "Keep": ["SOPInstanceUID"]}),
    ("modify", {"Replace": {"ReferencedStudySequence[*].ReferencedSOPClassUID": "1.2.3",
                            "0009,0010": "MY CREATOR"},
                "Remove": ["ReferencedImageSequence[0].ReferencedSOPInstanceUID", "ReferringPhysicianName"]}),
]
FILES = [p for p in all_testdata_files() if p.stat().st_size < 600_000]


@pytest.mark.orthanc
@pytest.mark.timeout(240)
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_same_output_as_orthanc(server: Any, tmp_path: pathlib.Path) -> None:
    with start_orthanc(tmp_path / "orthanc") as orthanc:
        # New connections each time: both servers close idle keep-alive connections after a second.
        async with aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(force_close=True)) as ours, \
                aiohttp.ClientSession(base_url=orthanc.url, connector=aiohttp.TCPConnector(force_close=True)) as theirs:
            compared, problems = 0, []
            for path in FILES:
                our_id, their_id = await _upload(ours, path), await _upload(theirs, path)
                if our_id is None or their_id is None or our_id != their_id:
                    continue
                source = read(path.read_bytes())
                for verb, body in REQUESTS:
                    mine = await _post_file(ours, f"/instances/{our_id}/{verb}", body)
                    reference = await _post_file(theirs, f"/instances/{their_id}/{verb}", body)
                    if reference is None:
                        assert mine is None, f"{path.name} {verb} {body}: Orthanc refused, we did not"
                        continue
                    assert mine is not None, f"{path.name} {verb} {body}: we refused, Orthanc did not"
                    compared += 1
                    problems += [f"{path.name} {verb}: {p}" for p in compare(source, read(mine), read(reference))]
    assert compared >= 20
    assert not problems, "\n".join(problems[:40])


async def test_default_profile_leaves_no_original_value(http: aiohttp.ClientSession) -> None:
    """On every shared file, no element listed by the 2023b profile (removals, clearings, UIDs) keeps its
    original non-empty value after /instances/{id}/anonymize, at any depth."""
    profile = PROFILES["2023b"]
    listed = profile.removals | profile.clearings | profile.uids | {0x00100010, 0x00100020, 0x0020000D, 0x0020000E,
                                                                    0x00080018}
    checked = 0
    for path in all_testdata_files():
        instance = await _upload(http, path)
        if instance is None:
            continue
        data = await _post_file(http, f"/instances/{instance}/anonymize", {})
        assert data is not None, path
        before, after = flatten(read(path.read_bytes())), flatten(read(data))
        for key, (vr, value) in after.items():
            if key[1] not in listed or vr == "SQ" or value in (None, "", b""):
                continue
            original = before.get(key, (None, None))[1]
            assert value != original, f"{path.name}: {key} kept {value!r}"
        assert not any(key[1] >> 16 & 1 for key in after), f"{path.name}: a private tag survived"
        checked += 1
    assert checked >= 20


async def test_references_follow_the_new_uids(http: aiohttp.ClientSession) -> None:
    """HierarchicalAnonymization: the RT files reference each other's UIDs; after a study anonymization every
    reference points to the new UID of what it referenced."""
    files = sorted(p for p in testdata("HierarchicalAnonymization").rglob("*") if p.is_file())
    if not files:
        pytest.skip("no HierarchicalAnonymization data")
    studies = set()
    for path in files:
        async with http.post("/instances", data=path.read_bytes()) as resp:
            assert resp.status == 200
            studies.add((await resp.json())["ParentStudy"])
    originals = [read(p.read_bytes()) for p in files]
    sop_uids = {str(ds.SOPInstanceUID) for ds in originals}
    for study in studies:
        async with http.post(f"/studies/{study}/anonymize", json={}) as resp:
            assert resp.status == 200, await resp.text()
            new_study = (await resp.json())["ID"]
        async with http.get(f"/studies/{new_study}/instances") as resp:
            instances = [i["ID"] for i in await resp.json()]
        new_sops, references = set(), set()
        for instance in instances:
            async with http.get(f"/instances/{instance}/file") as resp:
                ds = read(await resp.read())
            new_sops.add(str(ds.SOPInstanceUID))
            for key, (_vr, value) in flatten(ds).items():
                if key[1] == 0x00081155 and key[0]:
                    references.add(value)
        assert not (new_sops & sop_uids)
        assert not (references & sop_uids), "a reference kept an original SOPInstanceUID"


async def _call(http: aiohttp.ClientSession, path: str, body: Any) -> tuple[int, Any]:
    """POST a JSON body (None: an empty body)."""
    async with http.post(path, **({"data": b""} if body is None else {"json": body})) as resp:
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, None


@pytest.mark.orthanc
@pytest.mark.timeout(120)
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_resource_routes_answer_as_orthanc(server: Any, tmp_path: pathlib.Path) -> None:
    """Study/series/patient modify, anonymize, bulk, split, merge and their errors: same HTTP status, same
    OrthancStatus, same answer keys, same metadata names on the new resources, same change types."""
    lena = [testdata("Series", f"Lena-{i}.dcm") for i in (1, 2, 3)]
    other = testdata("PrivateTags.dcm")
    calls: list[tuple[str, Any]] = [
        ("/studies/{study}/modify", {"Replace": {"StudyDescription": "X"}}),
        ("/series/{series}/modify", {"Replace": {"SeriesDescription": "Y"}, "RemovePrivateTags": True}),
        ("/patients/{patient}/modify", {"Replace": {"PatientID": "NEWID"}, "Force": True}),
        ("/studies/{study}/anonymize", {}),
        ("/studies/{study}/anonymize", {"DicomVersion": "2008", "Keep": ["StudyDescription"]}),
        ("/tools/bulk-modify", {"Resources": ["{instance}"], "Replace": {"InstitutionName": "Z"}}),
        ("/tools/bulk-anonymize", {"Resources": ["{series}"]}),
        ("/studies/{study}/modify", {"Replace": {"PatientID": "X"}}),
        ("/patients/{patient}/modify", {"Replace": {"PatientName": "X"}}),
        ("/studies/{study}/modify", {"Remove": ["StudyInstanceUID"], "Force": True}),
        ("/studies/{study}/modify", {"Replace": {"NoSuchTag": "x"}}),
        ("/studies/{study}/modify", {"Replace": {"PatientName": 1}}),
        ("/studies/{study}/anonymize", {"DicomVersion": "1999"}),
        ("/studies/{study}/modify", {"Transcode": "1.2.3"}),
        ("/studies/{study}/modify", {"Remove": "x"}),
        ("/studies/{study}/modify", None),
        ("/instances/{instance}/anonymize", None),
        ("/tools/create-dicom", None),
        ("/studies/{study}/split", None),
        ("/tools/bulk-modify", {"Replace": {"PatientName": "x"}}),
        ("/studies/{study}/split", {}),
        ("/studies/{study}/split", {"Instances": ["{instance}"], "Replace": {"Modality": "x"}}),
        ("/studies/{study}/merge", {}),
        ("/studies/{study}/merge", {"Resources": ["{other_study}"], "KeepSource": True}),
        ("/studies/{study}/split", {"Instances": ["{instance}"], "Replace": {"StudyDescription": "split"}}),
    ]
    with start_orthanc(tmp_path / "orthanc") as orthanc:
        results: dict[str, list[tuple[int, Any, list[str]]]] = {}
        for name, url in (("ours", server.url), ("orthanc", orthanc.url)):
            async with aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(force_close=True)) as http:
                stored = [await (await http.post("/instances", data=p.read_bytes())).json() for p in lena]
                extra = await (await http.post("/instances", data=other.read_bytes())).json()
                ids = {"study": stored[0]["ParentStudy"], "series": stored[0]["ParentSeries"],
                       "patient": stored[0]["ParentPatient"], "instance": stored[0]["ID"],
                       "other_study": extra["ParentStudy"]}
                out = []
                for path, body in calls:
                    text = json.dumps(body)
                    for key, value in ids.items():
                        text = text.replace("{" + key + "}", value)
                    status, answer = await _call(http, path.format(**ids), json.loads(text))
                    meta: list[str] = []
                    if status == 200 and isinstance(answer, dict) and "Path" in answer and "Status" not in answer:
                        async with http.get(answer["Path"] + "/metadata") as resp:
                            meta = sorted(await resp.json())
                    out.append((status, answer, meta))
                results[name] = out
    for (path, body), mine, theirs in zip(calls, results["ours"], results["orthanc"]):
        where = f"{path} {body}"
        assert mine[0] == theirs[0], f"{where}: status {mine[0]} vs Orthanc {theirs[0]}: {mine[1]} / {theirs[1]}"
        if mine[0] != 200:
            assert mine[1]["OrthancStatus"] == theirs[1]["OrthancStatus"], where
            continue
        assert sorted(mine[1]) == sorted(theirs[1]), where
        for key in ("Type", "IsAnonymization", "InstancesCount", "FailedInstancesCount", "Description"):
            assert mine[1].get(key) == theirs[1].get(key), f"{where}: {key}"
        if "Resources" in mine[1]:
            assert [r["Type"] for r in mine[1]["Resources"]] == [r["Type"] for r in theirs[1]["Resources"]], where
        assert set(theirs[2]) <= set(mine[2]) | {"RemoteAET"}, f"{where}: metadata {mine[2]} vs {theirs[2]}"


def _png(mode: str) -> str:
    import base64

    from PIL import Image
    buffer = io.BytesIO()
    Image.new(mode, (6, 4), {"L": 9, "RGB": (1, 2, 3), "RGBA": (4, 5, 6, 7)}[mode]).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pixels(data: bytes) -> bytes | None:
    ds = read(data)
    return bytes(ds.PixelData).rstrip(b"\0") if "PixelData" in ds else None


_GENERATED = {"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AcquisitionDate",
              "AcquisitionTime", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
              "SeriesDate", "SeriesTime", "StudyDate", "StudyTime"}


@pytest.mark.orthanc
@pytest.mark.timeout(120)
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_create_dicom_as_orthanc(server: Any, tmp_path: pathlib.Path) -> None:
    """/tools/create-dicom: the same tags (generated identifiers and dates aside) and pixels as real Orthanc."""
    import base64
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.1\n%%EOF\n").decode()
    bodies: list[dict[str, Any]] = [
        {"Tags": {"PatientName": "Create^Test", "StudyDescription": "S", "Modality": "OT"}},
        {"Tags": {"PatientName": "Gray"}, "Content": _png("L")},
        {"Tags": {"PatientName": "Rgb"}, "Content": _png("RGB")},
        {"Tags": {"PatientName": "Rgba"}, "Content": _png("RGBA")},
        {"Tags": {"PatientName": "Pdf"}, "Content": pdf},
        {"Tags": {"PatientName": "Utf8 é", "SpecificCharacterSet": "ISO_IR 192"}},
        {"Tags": {"SeriesDescription": "child"}, "Parent": "{study}"},
    ]
    with start_orthanc(tmp_path / "orthanc") as orthanc:
        outputs: dict[str, list[tuple[dict[str, Any], bytes | None]]] = {}
        for name, url in (("ours", server.url), ("orthanc", orthanc.url)):
            async with aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(force_close=True)) as http:
                parent = await (await http.post("/instances", data=testdata("PrivateTags.dcm").read_bytes())).json()
                out = []
                for body in bodies:
                    body = json.loads(json.dumps(body).replace("{study}", parent["ParentStudy"]))
                    async with http.post("/tools/create-dicom", json=body) as resp:
                        assert resp.status == 200, (name, body, await resp.text())
                        created = await resp.json()
                    async with http.get(f"/instances/{created['ID']}/tags?simplify") as resp:
                        tags = await resp.json()
                    async with http.get(f"/instances/{created['ID']}/file") as resp:
                        raw = _pixels(await resp.read())
                    out.append(({k: v for k, v in tags.items() if k not in _GENERATED}, raw))
                outputs[name] = out
    for body, (mine, my_raw), (theirs, their_raw) in zip(bodies, outputs["ours"], outputs["orthanc"]):
        mine.pop("PixelData", None), theirs.pop("PixelData", None)
        mine.pop("EncapsulatedDocument", None), theirs.pop("EncapsulatedDocument", None)
        assert mine == theirs, body
        assert my_raw == their_raw, body
